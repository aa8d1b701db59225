//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the model's
//! `ToSchema` derives; served at `/api/v1/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::*;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Suyuan 溯源 API", description = "Field-to-table traceability for a county's agricultural products."),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    paths(
        meta::health::health,
        auth::login::login,
        auth::logout::logout,
        auth::me::me,
        auth::tokens::create_token,
        organisations::create::create,
        organisations::list::list,
        organisations::get::get,
        users::create::create,
        users::list::list,
        sites::create::create,
        sites::list::list,
        products::create::create,
        products::list::list,
        batches::create::create,
        batches::list::list,
        batches::get::get,
        batches::records::list,
        batches::capture::capture,
        batches::trace::trace,
        batches::recall::recall,
        batches::inspection_request::request_inspection,
        records::sync::sync,
        records::get::get,
        transformations::create::create,
        alerts::list::list,
        public::story::story,
        labels::verify::verify,
        labels::activate::activate,
        labels::void::void,
        label_runs::create::create,
        label_runs::list::list,
        label_runs::get::get,
        label_runs::file::file,
        devices::create::create,
        devices::list::list,
        devices::get::get,
        devices::disable::disable,
        devices::enable::enable,
        devices::credentials::rotate,
        sites::readings::readings,
        sites::images::images,
        images::get::original,
        images::get::thumbnail,
        rules::create::create,
        rules::list::list,
        gateway::refusals::refusals,
        public::recall_status::recall_status,
        scans::location::location,
        scans::regions::regions,
        scans::sms::inbound,
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
