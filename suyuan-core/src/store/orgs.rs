//! Organisations.

use diesel::prelude::*;

use super::rows::{models, OrgRow};
use super::{DbConnection, Page, Paged};
use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{NewOrganisation, Organisation};
use crate::on_backend;
use crate::schema::organisations::dsl as o;
use crate::time::now_millis;
use crate::OrgId;

/// Creates an organisation (the caller has checked that the actor is an operator).
pub fn create(conn: &mut DbConnection, new: &NewOrganisation) -> CoreResult<Organisation> {
    new.validate()?;
    let inserted = on_backend!(conn, c => diesel::insert_into(o::organisations)
        .values((
            o::name.eq(&new.name),
            o::kind.eq(new.kind.as_str()),
            o::credit_code.eq(&new.credit_code),
            o::division_code.eq(&new.division_code),
            o::address.eq(&new.address),
            o::public_contact.eq(&new.public_contact),
            o::created_at.eq(now_millis()),
        ))
        .returning(OrgRow::as_returning())
        .get_result(c));
    match inserted {
        Ok(row) => row.into_model(),
        Err(e) if super::is_unique_violation(&e) => Err(CoreError::conflict(
            "duplicate_credit_code",
            "an organisation with this credit code exists",
        )),
        Err(e) => Err(e.into()),
    }
}

/// One organisation.
pub fn get(conn: &mut DbConnection, id: OrgId) -> CoreResult<Organisation> {
    on_backend!(conn, c => o::organisations.find(id.0).select(OrgRow::as_select()).first(c))
        .or_not_found("organisation")?
        .into_model()
}

/// All organisations, a page at a time.
pub fn list(conn: &mut DbConnection, page: Page) -> CoreResult<Paged<Organisation>> {
    let limit = page.limit()?;
    let rows = on_backend!(conn, c => o::organisations
        .filter(o::id.gt(page.after()))
        .order(o::id)
        .limit(limit + 1)
        .select(OrgRow::as_select())
        .load(c))?;
    Ok(Paged::from_fetched(
        models(rows, OrgRow::into_model)?,
        limit,
        |x| x.id.0,
    ))
}
