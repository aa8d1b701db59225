//! Camera images: recorded once per (device, capture time, hash); the files are in the media folder.

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{Actor, DeviceImage};
use crate::on_backend;
use crate::policy;
use crate::schema::device_images::dsl as di;
use crate::store::{DbConnection, Page, Paged};
use crate::time::to_datetime;
use crate::SiteId;

/// An image to record (the files are already in the media folder).
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = crate::schema::device_images)]
pub struct NewDeviceImage {
    pub device_id: i64,
    pub site_id: i64,
    pub taken_at: i64,
    pub sha256: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub path: String,
    pub thumb_path: String,
    pub received_at: i64,
}

/// Records an image; `false` when the same device already sent the same image for the same time.
pub fn insert_image(conn: &mut DbConnection, image: &NewDeviceImage) -> CoreResult<bool> {
    let n = on_backend!(conn, c => diesel::insert_into(di::device_images)
        .values(image)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::device_images)]
struct ImageRow {
    id: i64,
    device_id: i64,
    site_id: i64,
    taken_at: i64,
    sha256: String,
    bytes: i64,
    width: i64,
    height: i64,
    path: String,
    thumb_path: String,
}

impl ImageRow {
    fn into_model(self) -> DeviceImage {
        DeviceImage {
            id: self.id,
            device_id: self.device_id,
            site_id: SiteId(self.site_id),
            taken_at: to_datetime(self.taken_at),
            sha256: self.sha256,
            bytes: self.bytes,
            width: self.width,
            height: self.height,
            path: self.path,
            thumb_path: self.thumb_path,
        }
    }
}

/// A site's images taken in `[from, to)`, oldest first, keyset-paged by id.
pub fn site_images(
    conn: &mut DbConnection,
    actor: &Actor,
    site: SiteId,
    from: i64,
    to: i64,
    page: Page,
) -> CoreResult<Paged<DeviceImage>> {
    let s = crate::store::sites::get_site(conn, site)?;
    policy::ensure_read_site_data(actor, s.org_id)?;
    let limit = page.limit()?;
    let rows: Vec<ImageRow> = on_backend!(conn, c => di::device_images
        .filter(di::site_id.eq(site.0))
        .filter(di::taken_at.ge(from))
        .filter(di::taken_at.lt(to))
        .filter(di::id.gt(page.after()))
        .order(di::id)
        .limit(limit + 1)
        .select(ImageRow::as_select())
        .load(c))?;
    Ok(Paged::from_fetched(
        rows.into_iter().map(ImageRow::into_model).collect(),
        limit,
        |x| x.id,
    ))
}

/// Images taken at these sites over `[from, to)`, at most `max` spread evenly over the period, oldest
/// first. Unchecked: for the public story of a batch, whose plot photos a consumer may see.
pub fn images_at(
    conn: &mut DbConnection,
    sites: &[SiteId],
    from: i64,
    to: i64,
    max: usize,
) -> CoreResult<Vec<DeviceImage>> {
    let ids: Vec<i64> = sites.iter().map(|s| s.0).collect();
    let all: Vec<(i64, i64)> = on_backend!(conn, c => di::device_images
        .filter(di::site_id.eq_any(&ids))
        .filter(di::taken_at.ge(from))
        .filter(di::taken_at.lt(to))
        .order((di::taken_at, di::id))
        .select((di::id, di::taken_at))
        .load(c))?;
    if all.is_empty() || max == 0 {
        return Ok(Vec::new());
    }
    // Evenly spaced picks across the growing period, the first and the last included.
    let picks: Vec<i64> = if all.len() <= max {
        all.iter().map(|x| x.0).collect()
    } else {
        let step = (all.len() - 1) as f64 / (max - 1).max(1) as f64;
        let mut v: Vec<i64> = (0..max)
            .map(|i| all[((i as f64 * step).round() as usize).min(all.len() - 1)].0)
            .collect();
        v.dedup();
        v
    };
    let rows: Vec<ImageRow> = on_backend!(conn, c => di::device_images
        .filter(di::id.eq_any(&picks))
        .order((di::taken_at, di::id))
        .select(ImageRow::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(ImageRow::into_model).collect())
}

/// One image, unchecked (the caller has established it belongs to a public story).
pub fn image_unchecked(conn: &mut DbConnection, id: i64) -> CoreResult<DeviceImage> {
    let row: ImageRow = on_backend!(conn, c => di::device_images
        .find(id)
        .select(ImageRow::as_select())
        .first(c))
    .or_not_found("image")?;
    Ok(row.into_model())
}

/// One image, if the actor may see its site.
pub fn get_image(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<DeviceImage> {
    let row: ImageRow = on_backend!(conn, c => di::device_images
        .find(id)
        .select(ImageRow::as_select())
        .first(c))
    .or_not_found("image")?;
    let site = crate::store::sites::get_site(conn, SiteId(row.site_id))?;
    policy::ensure_read_site_data(actor, site.org_id)
        .map_err(|_| CoreError::NotFound { what: "image" })?;
    Ok(row.into_model())
}
