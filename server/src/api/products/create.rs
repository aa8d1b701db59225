//! `POST /api/v1/products`: a product of the caller's organisation.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewProduct, Product};
use suyuan_core::{policy, store::sites};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "products", request_body = NewProduct, responses(
    (status = 201, body = Product),
    (status = 403, body = ErrorBody),
    (status = 422, body = ErrorBody),
), security(("bearer" = [])))]
#[post("/products")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewProduct>,
) -> ApiResult<HttpResponse> {
    policy::ensure_member_of(&actor, actor.org_id)?;
    let new = body.into_inner();
    let product = blocking(&state, move |db| {
        db.write(|c| sites::create_product(c, actor.org_id, &new))
    })
    .await?;
    Ok(crate::api::created(&product))
}
