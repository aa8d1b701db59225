//! `GET /api/v1/exports/{id}/file`: a finished export's file, streamed from the data folder. Only for the
//! person who asked for it; 409 `export_not_ready` while it is queued or running, 409 `export_failed` when it
//! failed (with the reason).

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use suyuan_core::model::{ExportId, ExportStatus};
use suyuan_core::store::exports::jobs;
use suyuan_core::CoreError;
use tokio::sync::mpsc;

use super::attachment;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Bytes read from the file per chunk of the answer.
const CHUNK: usize = 256 * 1024;

#[utoipa::path(tag = "exports", params(("id" = i64, Path)), responses(
    (status = 200, description = "the file", content(
        (String = "text/csv"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (Object = "application/ld+json"),
    )),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "no such export, or its file is not on this server (`export_file_missing`)"),
    (status = 409, body = ErrorBody, description = "`export_not_ready` or `export_failed`"),
), security(("bearer" = [])))]
#[get("/exports/{id}/file")]
pub async fn file(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = ExportId(id.into_inner());
    let job = blocking(&state, move |db| db.read(|c| jobs::get_for(c, &actor, id))).await?;
    match job.status {
        ExportStatus::Finished => {}
        ExportStatus::Failed => {
            return Err(CoreError::conflict(
                "export_failed",
                format!(
                    "export {id} failed: {}",
                    job.error.as_deref().unwrap_or("no reason recorded")
                ),
            )
            .into())
        }
        status => {
            return Err(CoreError::conflict(
                "export_not_ready",
                format!(
                    "export {id} is {status} ({} of {} events written); download it once finished",
                    job.rows_done,
                    job.rows_total.unwrap_or(0)
                ),
            )
            .into())
        }
    }
    let missing = || {
        ApiError::request(
            StatusCode::NOT_FOUND,
            "export_file_missing",
            "the export's file is not on this server (written by another replica, or removed)",
        )
    };
    let path = state
        .exporter
        .as_ref()
        .and_then(|e| e.settings().file(&job))
        .ok_or_else(missing)?;
    let opened = web::block(move || {
        let f = std::fs::File::open(&path)?;
        let len = f.metadata()?.len();
        Ok::<_, std::io::Error>((f, len))
    })
    .await?;
    let (mut f, len) = opened.map_err(|_| missing())?;
    // Read on a blocking thread, chunk by chunk, as the client takes them (the channel holds two).
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    actix_web::rt::task::spawn_blocking(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let name = job.file_name.clone().unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type(job.format.content_type())
        .insert_header(attachment(&name))
        .no_chunking(len)
        .streaming(FileChunks(rx)))
}

/// The chunks the reading thread sends, as a body stream.
struct FileChunks(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for FileChunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
