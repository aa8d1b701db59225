//! The Suyuan server: the JSON API under `/api/v1`, the web pages and the `suyuan` command line.
//!
//! Layout:
//! - [`routes`]: every route of the application, in one place;
//! - [`api`]: the handlers, one folder per resource and one file per endpoint; they validate, call
//!   `suyuan-core` and shape the response, and hold no SQL;
//! - [`extract`]: who is calling (session cookie or bearer token);
//! - [`error`]: how domain errors become HTTP answers;
//! - [`pages`]: the server-rendered pages (home, the scan page, kiosk, GS1 Digital Link);
//! - [`media`]: camera images answered from the media folder (API images and a story's photos);
//! - [`openapi`]: the OpenAPI document generated from the handlers' annotations;
//! - [`commands`]: the subcommands of the `suyuan` binary;
//! - [`demo`]: the demo county seeded by `suyuan serve --demo`, through the store functions the API uses;
//! - [`exporting`]: period (and large trace) exports written in the background, their files under `DATA/exports`;
//! - [`minting`]: label runs written in the background (API) or in the foreground (command line);
//! - [`scans`]: what a consumer's scan does: verdict, story, client hash and region, the scan log.
//!
//! [`run`] takes its listener from the caller, so tests bind `127.0.0.1:0` and get a free port.

pub mod api;
pub mod commands;
pub mod demo;
pub mod error;
pub mod exporting;
pub mod extract;
pub mod iot;
pub mod media;
pub mod minting;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod scans;
pub mod state;

use std::net::TcpListener;

use actix_web::{middleware, web, App, HttpServer};

pub use state::AppState;

/// Largest JSON body of an ordinary request.
pub const JSON_LIMIT: usize = 256 * 1024;
/// Largest JSON body of a sync (a phone's backlog of up to 1000 records).
pub const SYNC_LIMIT: usize = 4 * 1024 * 1024;

/// Builds the HTTP server on `listener`; the caller awaits it (or hands its handle to a test).
pub fn run(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(middleware::Compress::default())
            .wrap(pages::security_headers())
            .configure(routes::configure)
    })
    .listen(listener)?
    .run();
    Ok(server)
}
