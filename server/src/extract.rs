//! Who is calling: a bearer token (`Authorization: Bearer …`) for integrations or the session cookie for
//! pages. Every handler that needs a caller takes [`Caller`]; access itself is decided in
//! `suyuan_core::policy`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use suyuan_core::model::Actor;
use suyuan_core::store::users;
use suyuan_core::CoreError;

use crate::error::ApiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "suyuan_session";

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Actor);

fn token_of(req: &HttpRequest) -> Option<String> {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let h = h.to_str().ok()?;
        let (scheme, token) = h.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let token = token_of(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
                ApiError::Core(CoreError::Unauthenticated(
                    "log in, or send an API token as Authorization: Bearer".into(),
                ))
            })?;
            let state = state.ok_or_else(|| {
                ApiError::Core(CoreError::Internal("no application state".into()))
            })?;
            let actor =
                web::block(move || state.db.read(|c| users::actor_for_token(c, &token))).await??;
            Ok(Caller(actor))
        })
    }
}

/// Runs blocking database work off the async threads.
pub async fn blocking<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&suyuan_core::Database) -> suyuan_core::CoreResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    let db = state.db.clone();
    Ok(web::block(move || f(&db)).await??)
}
