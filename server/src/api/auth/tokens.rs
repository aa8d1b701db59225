//! `POST /api/v1/auth/tokens`: a long-lived bearer token for an integration, shown once.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use suyuan_core::auth::TokenKind;
use suyuan_core::store::users;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// What the token is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub label: String,
}

/// The token; store it now, it is never shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub label: String,
}

#[utoipa::path(tag = "auth", request_body = NewToken, responses((status = 201, body = IssuedToken)), security(("bearer" = [])))]
#[post("/auth/tokens")]
pub async fn create_token(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewToken>,
) -> ApiResult<HttpResponse> {
    let label = body.into_inner().label;
    suyuan_core::model::org::non_empty("label", &label, 100)?;
    let l = label.clone();
    let token = blocking(&state, move |db| {
        db.write(|c| users::issue_token(c, actor.user_id, TokenKind::Api, Some(&l)))
    })
    .await?;
    Ok(super::super::created(&IssuedToken { token, label }))
}
