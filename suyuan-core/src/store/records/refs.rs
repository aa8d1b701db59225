//! The sites and images a record names, and whether its writer may name them: a record refers only to
//! its own organisation's sites and photos (a shipment's destination aside, which the rules check).

use std::collections::HashMap;

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::store::DbConnection;
use crate::OrgId;

/// What the sites and images that records name belong to: site id → organisation, image id → the
/// organisation of the site it was taken at. Ids that do not exist are absent.
#[derive(Debug, Default)]
pub(crate) struct References {
    pub sites: HashMap<i64, i64>,
    pub images: HashMap<i64, i64>,
}

impl References {
    /// Reads what the records' sites and attachments belong to (a query per thousand ids, none for none).
    pub(crate) fn load(conn: &mut DbConnection, records: &[NewRecord]) -> CoreResult<References> {
        let sites: Vec<i64> = records
            .iter()
            .filter_map(|r| r.site_id.map(|s| s.0))
            .collect();
        let images: Vec<i64> = records
            .iter()
            .flat_map(|r| r.attachments.iter().filter_map(|a| attachment_image_id(a)))
            .collect();
        Self::of(conn, sites, images)
    }

    /// Reads what these sites and images belong to.
    pub(crate) fn of(
        conn: &mut DbConnection,
        mut site_ids: Vec<i64>,
        mut image_ids: Vec<i64>,
    ) -> CoreResult<References> {
        use crate::schema::{device_images::dsl as di, sites::dsl as s};
        image_ids.sort_unstable();
        image_ids.dedup();
        let mut images = HashMap::new();
        let mut image_sites = HashMap::new();
        for chunk in image_ids.chunks(1000) {
            let found: Vec<(i64, i64)> = on_backend!(conn, c => di::device_images
                .filter(di::id.eq_any(chunk))
                .select((di::id, di::site_id))
                .load(c))?;
            site_ids.extend(found.iter().map(|(_, site)| *site));
            image_sites.extend(found);
        }
        site_ids.sort_unstable();
        site_ids.dedup();
        let mut sites = HashMap::new();
        for chunk in site_ids.chunks(1000) {
            let found: Vec<(i64, i64)> = on_backend!(conn, c => s::sites
                .filter(s::id.eq_any(chunk))
                .select((s::id, s::org_id))
                .load(c))?;
            sites.extend(found);
        }
        for (image, site) in image_sites {
            if let Some(&org) = sites.get(&site) {
                images.insert(image, org);
            }
        }
        Ok(References { sites, images })
    }

    /// A record may name only its writer's sites and images. The one reference to another organisation a
    /// record makes is a shipment's destination (`to_org_id`, `to_site_id`): that is the custody hand-over
    /// itself, checked by the rules; the receiver then records at a site of its own.
    ///
    /// A site or image that does not exist answers 404, like any id that names nothing; one of another
    /// organisation answers 422 `foreign_site` / `foreign_attachment`, as a batch's foreign origin site
    /// does: the request is understood, what it names exists, but the writer may not use it. (Which site
    /// ids exist is no secret: scan pages show the sites of their records.)
    pub(crate) fn check(
        &self,
        writer: OrgId,
        site: Option<crate::SiteId>,
        attachments: &[String],
    ) -> CoreResult<()> {
        self.check_site(writer, site)?;
        for a in attachments {
            let Some(image) = attachment_image_id(a) else {
                return Err(CoreError::invalid(
                    "invalid_attachment",
                    "attachments name stored images as image:<id>",
                ));
            };
            match self.images.get(&image) {
                None => return Err(CoreError::NotFound { what: "image" }),
                Some(&org) if org != writer.0 => {
                    return Err(CoreError::invalid(
                        "foreign_attachment",
                        format!(
                            "attachments: image {image} was taken at a site of another organisation"
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The site part of [`References::check`], for transformations and loads too.
    pub(crate) fn check_site(&self, writer: OrgId, site: Option<crate::SiteId>) -> CoreResult<()> {
        let Some(site) = site else { return Ok(()) };
        match self.sites.get(&site.0) {
            None => Err(CoreError::NotFound { what: "site" }),
            Some(&org) if org != writer.0 => Err(CoreError::invalid(
                "foreign_site",
                format!("site_id: site {} is a site of another organisation", site.0),
            )),
            Some(_) => Ok(()),
        }
    }
}
