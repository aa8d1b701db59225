//! Sites and products of an organisation.

use diesel::prelude::*;

use super::rows::{models, ProductRow, SiteRow};
use super::{DbConnection, Page, Paged};
use crate::error::{CoreResult, OptionalExt};
use crate::model::{NewProduct, NewSite, Product, Site};
use crate::on_backend;
use crate::schema::{products::dsl as p, sites::dsl as s};
use crate::time::now_millis;
use crate::{OrgId, ProductId, SiteId};

/// Creates a site of `org`.
pub fn create_site(conn: &mut DbConnection, org: OrgId, new: &NewSite) -> CoreResult<Site> {
    new.validate()?;
    on_backend!(conn, c => diesel::insert_into(s::sites)
        .values((
            s::org_id.eq(org.0),
            s::name.eq(&new.name),
            s::kind.eq(new.kind.as_str()),
            s::division_code.eq(&new.division_code),
            s::address.eq(&new.address),
            s::latitude.eq(new.latitude),
            s::longitude.eq(new.longitude),
            s::area_mu.eq(new.area_mu),
            s::created_at.eq(now_millis()),
        ))
        .returning(SiteRow::as_returning())
        .get_result(c))?
    .into_model()
}

/// One site.
pub fn get_site(conn: &mut DbConnection, id: SiteId) -> CoreResult<Site> {
    on_backend!(conn, c => s::sites.find(id.0).select(SiteRow::as_select()).first(c))
        .or_not_found("site")?
        .into_model()
}

/// The sites of an organisation, or of all.
pub fn list_sites(
    conn: &mut DbConnection,
    org: Option<OrgId>,
    page: Page,
) -> CoreResult<Paged<Site>> {
    let limit = page.limit()?;
    let rows = on_backend!(conn, c => {
        let mut q = s::sites.filter(s::id.gt(page.after())).into_boxed();
        if let Some(org) = org {
            q = q.filter(s::org_id.eq(org.0));
        }
        q.order(s::id).limit(limit + 1).select(SiteRow::as_select()).load(c)
    })?;
    Ok(Paged::from_fetched(
        models(rows, SiteRow::into_model)?,
        limit,
        |x| x.id.0,
    ))
}

/// Creates a product of `org`.
pub fn create_product(
    conn: &mut DbConnection,
    org: OrgId,
    new: &NewProduct,
) -> CoreResult<Product> {
    new.validate()?;
    let fields = serde_json::to_string(&new.label_fields)
        .map_err(|e| crate::CoreError::Internal(e.to_string()))?;
    let area = serde_json::to_string(&new.distribution_area)
        .map_err(|e| crate::CoreError::Internal(e.to_string()))?;
    let certs = serde_json::to_string(&new.certifications)
        .map_err(|e| crate::CoreError::Internal(e.to_string()))?;
    on_backend!(conn, c => diesel::insert_into(p::products)
        .values((
            p::org_id.eq(org.0),
            p::name.eq(&new.name),
            p::category.eq(&new.category),
            p::brand.eq(&new.brand),
            p::certifications.eq(&certs),
            p::gtin.eq(&new.gtin),
            p::label_fields.eq(&fields),
            p::distribution_area.eq(&area),
            p::created_at.eq(now_millis()),
        ))
        .returning(ProductRow::as_returning())
        .get_result(c))?
    .into_model()
}

/// One product.
pub fn get_product(conn: &mut DbConnection, id: ProductId) -> CoreResult<Product> {
    on_backend!(conn, c => p::products.find(id.0).select(ProductRow::as_select()).first(c))
        .or_not_found("product")?
        .into_model()
}

/// The products of an organisation, or of all.
pub fn list_products(
    conn: &mut DbConnection,
    org: Option<OrgId>,
    page: Page,
) -> CoreResult<Paged<Product>> {
    let limit = page.limit()?;
    let rows = on_backend!(conn, c => {
        let mut q = p::products.filter(p::id.gt(page.after())).into_boxed();
        if let Some(org) = org {
            q = q.filter(p::org_id.eq(org.0));
        }
        q.order(p::id).limit(limit + 1).select(ProductRow::as_select()).load(c)
    })?;
    Ok(Paged::from_fetched(
        models(rows, ProductRow::into_model)?,
        limit,
        |x| x.id.0,
    ))
}
