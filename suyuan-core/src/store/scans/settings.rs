//! Deployment-wide settings, created by whichever replica asks first: the salts that hash the addresses
//! of scanning clients and of login attempts, so every replica counts the same client as one.

use diesel::prelude::*;

use crate::error::CoreResult;
use crate::on_backend;
use crate::schema::settings::dsl as se;
use crate::store::DbConnection;

/// A deployment-wide setting, created with `make()` by whichever replica asks first.
pub fn setting_or_create(
    conn: &mut DbConnection,
    name: &str,
    make: impl FnOnce() -> String,
) -> CoreResult<String> {
    let value = make();
    on_backend!(conn, c => diesel::insert_into(se::settings)
        .values((se::name.eq(name), se::value.eq(&value)))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(on_backend!(conn, c => se::settings.find(name).select(se::value).first(c))?)
}
