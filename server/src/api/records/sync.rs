//! `POST /api/v1/records/sync`: an offline phone's backlog (up to 1000 records, any batches) in one request.
//! Each item answers for itself: created, existing (a resend) or rejected with the code a single capture
//! would give; one bad item never loses the others.

use actix_web::{web, HttpResponse};
use suyuan_core::model::SyncItem;
use suyuan_core::store::records::{self, SyncOutcome};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(post, path = "/records/sync", tag = "records", request_body = Vec<SyncItem>, responses(
    (status = 200, body = Vec<SyncOutcome>),
    (status = 413, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "more than 1000 items"),
), security(("bearer" = [])))]
/// Registered in `routes` with its own, larger body limit.
pub async fn sync(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<Vec<SyncItem>>,
) -> ApiResult<HttpResponse> {
    let items = body.into_inner();
    let out = blocking(&state, move |db| records::sync(db, &actor, &items)).await?;
    Ok(HttpResponse::Ok().json(out))
}
