//! Every route of the application.

use actix_web::http::StatusCode;
use actix_web::web;

use crate::api::*;
use crate::error::{form_error, json_error, path_error, query_error, ApiError};
use crate::pages;

/// Registers the API under `/api/v1`, the pages and the static assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let json = |limit| {
        web::JsonConfig::default()
            .limit(limit)
            .error_handler(json_error)
    };
    cfg.app_data(json(crate::JSON_LIMIT))
        .app_data(
            web::FormConfig::default()
                .limit(16 * 1024)
                .error_handler(form_error),
        )
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .service(
            web::scope("/api/v1")
                .service(meta::health::health)
                .service(meta::openapi::openapi)
                .service(auth::login::login)
                .service(auth::logout::logout)
                .service(auth::me::me)
                .service(auth::tokens::create_token)
                .service(organisations::create::create)
                .service(organisations::list::list)
                .service(organisations::get::get)
                .service(organisations::label_quota::get)
                .service(organisations::label_quota::set)
                .service(users::create::create)
                .service(users::list::list)
                .service(sites::create::create)
                .service(sites::list::list)
                .service(products::create::create)
                .service(products::list::list)
                .service(batches::create::create)
                .service(batches::list::list)
                .service(batches::get::get)
                .service(batches::records::list)
                .service(batches::capture::capture)
                .service(batches::trace::trace)
                .service(batches::recall::recall)
                .service(batches::inspection_request::request_inspection)
                .service(
                    web::resource("/records/sync")
                        .app_data(json(crate::SYNC_LIMIT))
                        .route(web::post().to(records::sync::sync)),
                )
                .service(records::get::get)
                .service(transformations::create::create)
                .service(alerts::list::list)
                .service(public::story::story)
                .service(labels::verify::verify)
                .service(labels::activate::activate)
                .service(labels::void::void)
                .service(label_runs::create::create)
                .service(label_runs::list::list)
                .service(label_runs::get::get)
                .service(label_runs::file::file)
                .service(devices::create::create)
                .service(devices::list::list)
                .service(devices::get::get)
                .service(devices::disable::disable)
                .service(devices::enable::enable)
                .service(devices::credentials::rotate)
                .service(sites::readings::readings)
                .service(sites::images::images)
                .service(images::get::original)
                .service(images::get::thumbnail)
                .service(rules::create::create)
                .service(rules::list::list)
                .service(gateway::refusals::refusals)
                .service(scans::location::location)
                .service(scans::regions::regions)
                .service(scans::sms::inbound)
                .service(public::recall_status::recall_status)
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::request(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "no such API endpoint",
                    ))
                })),
        )
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
