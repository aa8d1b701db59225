//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the model's
//! `ToSchema` derives; served at `/api/v1/openapi.json`.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api::*;

/// Declares [`ApiDoc`] over the handlers `routes.rs` lists (see `routes::documented_api`).
macro_rules! api_doc {
    (; $($($segment:ident)::+),+ $(,)?) => {
        /// The API description.
        #[derive(OpenApi)]
        #[openapi(
            info(title = "Suyuan 溯源 API", description = "Field-to-table traceability for a county's agricultural products."),
            servers((url = "/api/v1")),
            modifiers(&BearerAuth, &ErrorAnswers),
            paths(records::sync::sync, $($($segment)::+),+)
        )]
        pub struct ApiDoc;
    };
}

crate::routes::documented_api!(api_doc);

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

/// The error answers every operation can give by its shape, added where its own annotation does not
/// name them: the extractors and the error policy (`error.rs`) answer them the same way everywhere, so
/// writing them on each handler would only let the document drift from the server.
///
/// - an operation that needs a caller: 401 (no or expired credentials) and 403 (not allowed);
/// - one with a JSON body: 400 (not JSON), 413 (over the body limit), 415 (not `application/json`) and
///   422 (well-formed but invalid);
/// - one with query parameters: 400 (unreadable query) and 422 (a value out of range);
/// - one with path parameters or a body: 404 (what the path or the body names is unknown, not visible to
///   the caller, or not a number);
/// - every one: 500 (an internal error; the cause is logged, the message is generic).
struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_error_answers(operation);
            }
        }
    }
}

fn add_error_answers(operation: &mut Operation) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let has_body = operation.request_body.is_some();
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_query = parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let has_path = parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let mut answers: Vec<(&str, &str)> = Vec::new();
    if has_body || has_query {
        answers.push((
            "400",
            "The body or query could not be read (`malformed_json`, `invalid_query`, …).",
        ));
    }
    if secured {
        answers.push(("401", "No valid credentials (`unauthenticated`)."));
        answers.push(("403", "The caller may not do this (`forbidden`)."));
    }
    if has_path || has_body {
        answers.push((
            "404",
            "What the path or the body names is unknown or not visible to the caller (`not_found`).",
        ));
    }
    if has_body {
        answers.push(("413", "The body is over the limit (`payload_too_large`)."));
        answers.push((
            "415",
            "The body is not `application/json` (`unsupported_media_type`).",
        ));
    }
    if has_body || has_query {
        answers.push((
            "422",
            "Well-formed but invalid (`invalid_body` or a specific code).",
        ));
    }
    answers.push((
        "500",
        "An internal error; the cause is logged, the message is generic.",
    ));
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_answer(description));
    }
}

fn error_answer(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}
