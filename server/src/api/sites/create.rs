//! `POST /api/v1/sites`: a site of the caller's organisation.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewSite, Site};
use suyuan_core::{policy, store::sites};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "sites", request_body = NewSite, responses(
    (status = 201, body = Site),
    (status = 403, body = ErrorBody),
    (status = 422, body = ErrorBody),
), security(("bearer" = [])))]
#[post("/sites")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewSite>,
) -> ApiResult<HttpResponse> {
    policy::ensure_member_of(&actor, actor.org_id)?;
    let new = body.into_inner();
    let site = blocking(&state, move |db| {
        db.write(|c| sites::create_site(c, actor.org_id, &new))
    })
    .await?;
    Ok(crate::api::created(&site))
}
