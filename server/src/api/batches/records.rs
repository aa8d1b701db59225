//! `GET /api/v1/batches/{id}/records`: the corrected view, or with `?history=true` every record as stored, a
//! page at a time in chain order (`limit` 1–200, default 50; `after` the previous page's `next_after`, which
//! is the `seq` of its last record).

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::{CorrectedRecord, Record};
use suyuan_core::store::{Page, Paged};
use suyuan_core::{store::batches, store::records, BatchId};
use utoipa::IntoParams;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Which view, and which page of it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Every record in chain order, corrections included, exactly as stored.
    #[serde(default)]
    pub history: bool,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_after` of the previous page: the `seq` of its last record.
    pub after: Option<i64>,
}

/// The answer's schema: a page of the corrected view or of the history, whichever `history` asked for.
/// Written out because the two differ only in the corrected view's extra fields, so `anyOf` (not the
/// `oneOf` a derived enum gives, which a corrected page would match twice) is what describes them.
pub struct RecordPage;

impl utoipa::PartialSchema for RecordPage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(<Paged<CorrectedRecord> as utoipa::PartialSchema>::schema())
            .item(<Paged<Record> as utoipa::PartialSchema>::schema())
            .into()
    }
}

impl utoipa::ToSchema for RecordPage {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Paged<CorrectedRecord> as utoipa::ToSchema>::schemas(schemas);
        <Paged<Record> as utoipa::ToSchema>::schemas(schemas);
        for (name, schema) in [
            (
                CorrectedRecord::name(),
                <CorrectedRecord as utoipa::PartialSchema>::schema(),
            ),
            (Record::name(), <Record as utoipa::PartialSchema>::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
    }
}

#[utoipa::path(tag = "records", params(("id" = i64, Path), RecordsQuery), responses(
    (status = 200, body = RecordPage, description = "a page of the corrected view (history=false: \
      records other than corrections, each with its corrections applied) or, with history=true, of every \
      record as stored; in chain order (`seq`), `next_after` absent on the last page"),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "limit outside 1–200 (invalid_page)"),
), security(("bearer" = [])))]
#[get("/batches/{id}/records")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    q: web::Query<RecordsQuery>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let q = q.into_inner();
    let page = Page {
        limit: q.limit,
        after: q.after,
    };
    if q.history {
        let out: Paged<Record> = blocking(&state, move |db| {
            db.read(|c| {
                batches::get_for(c, &actor, id)?;
                records::history_page(c, id, page)
            })
        })
        .await?;
        Ok(HttpResponse::Ok().json(out))
    } else {
        let out: Paged<CorrectedRecord> = blocking(&state, move |db| {
            db.read(|c| {
                batches::get_for(c, &actor, id)?;
                records::corrected_page(c, id, page)
            })
        })
        .await?;
        Ok(HttpResponse::Ok().json(out))
    }
}
