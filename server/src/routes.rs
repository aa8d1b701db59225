//! Every route of the application.

use actix_web::http::StatusCode;
use actix_web::web;

use crate::api::*;
use crate::error::{form_error, json_error, path_error, query_error, ApiError};
use crate::pages;

/// The API operations registered as they are annotated (`#[get(...)]` and `#[utoipa::path]` on the
/// handler): [`configure`] routes each under `/api/v1` and [`crate::openapi::ApiDoc`] documents each, from
/// this one list, so an operation cannot be routed without being documented or the reverse.
/// `documented_api!(then, args...)` expands to `then! { args...; handler, handler, ... }`.
///
/// `records::sync::sync` is documented too but routed by hand in [`configure`] (its own body limit).
macro_rules! documented_api {
    ($then:ident $(, $arg:tt)*) => {
        $then! { $($arg)*;
            meta::health::health,
            auth::login::login,
            auth::logout::logout,
            auth::me::me,
            auth::tokens::create_token,
            organisations::create::create,
            organisations::list::list,
            organisations::get::get,
            organisations::label_quota::get,
            organisations::label_quota::set,
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
            scans::location::location,
            scans::regions::regions,
            scans::sms::inbound,
            public::recall_status::recall_status,
            exports::trace::trace,
            exports::create::create,
            exports::get::get,
            exports::file::file,
        }
    };
}
pub(crate) use documented_api;

/// `scope` with every handler of the list registered on it, in the list's order.
macro_rules! service_each {
    ($scope:ident; $($($segment:ident)::+),+ $(,)?) => {
        $scope$(.service($($segment)::+))+
    };
}

/// Registers the API under `/api/v1`, the pages and the static assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let json = |limit| {
        web::JsonConfig::default()
            .limit(limit)
            .error_handler(json_error)
    };
    let api = web::scope("/api/v1")
        // The document itself, which does not list itself.
        .service(meta::openapi::openapi)
        // A phone's backlog: a bigger body limit than any other JSON body. Before `/records/{id}`.
        .service(
            web::resource("/records/sync")
                .app_data(json(crate::SYNC_LIMIT))
                .route(web::post().to(records::sync::sync)),
        );
    let api = documented_api!(service_each, api).default_service(web::to(|| async {
        Err::<actix_web::HttpResponse, _>(ApiError::request(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such API endpoint",
        ))
    }));
    cfg.app_data(json(crate::JSON_LIMIT))
        .app_data(
            web::FormConfig::default()
                .limit(16 * 1024)
                .error_handler(form_error),
        )
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .service(api)
        // Outside the API and its document: keys and anchors at fixed well-known addresses for
        // verifiers, and the pages.
        .service(labels::keys::keys)
        .service(labels::anchors::latest)
        .service(labels::anchors::one)
        .service(labels::anchors::list)
        .service(pages::home::home)
        .service(pages::assets::stylesheet)
        .service(pages::scan::short_code)
        .service(pages::kiosk::kiosk)
        .service(pages::digital_link::batch_page)
        .service(pages::photos::original)
        .service(pages::photos::thumbnail)
        .service(pages::scan::label);
}
