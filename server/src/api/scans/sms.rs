//! `POST /api/v1/sms/inbound`: the webhook an SMS provider calls with a message a consumer sent to the
//! county's number; the answer (plain text) is the reply the provider sends back.
//!
//! The message is expected to hold the 13-digit short code (spaces and dashes allowed). The provider
//! proves itself with the shared secret in `X-Suyuan-Sms-Token` (`SUYUAN_SMS_TOKEN`); without a
//! configured secret the webhook is off (404). The body is JSON or a form with `from` and `text`
//! (`mobile`/`content` are accepted too, as several Chinese SMS gateways name them). The sender's number
//! is only hashed, like a web client's address.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use suyuan_core::model::{ScanEvent, ScanMethod, ScanVerdict};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::blocking;
use crate::pages::scan::scan_of;
use crate::scans::client;
use crate::scans::lookup::{resolve, CodeKind};
pub use crate::scans::sms::InboundSms;
use crate::scans::sms::SmsQuery;
use crate::state::AppState;

#[utoipa::path(tag = "scans", request_body(content = InboundSms, description = "JSON or form"), responses(
    (status = 200, content_type = "text/plain", description = "the reply text"),
    (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "the SMS webhook is not configured"),
))]
#[post("/sms/inbound")]
pub async fn inbound(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Either<web::Json<InboundSms>, web::Form<InboundSms>>,
) -> ApiResult<HttpResponse> {
    let Some(expected) = state.scanning.settings.sms_token.clone() else {
        return Err(ApiError::request(
            StatusCode::NOT_FOUND,
            "not_found",
            "the SMS webhook is not configured (SUYUAN_SMS_TOKEN)",
        ));
    };
    let given = req
        .headers()
        .get("x-suyuan-sms-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::request(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "missing or wrong X-Suyuan-Sms-Token",
        ));
    }
    let sms = match body {
        web::Either::Left(json) => json.into_inner(),
        web::Either::Right(form) => form.into_inner(),
    };
    let SmsQuery { code, lang_en } = SmsQuery::read(&sms.text);
    let Some(code) = code else {
        return Ok(text(if lang_en {
            "[Suyuan] Send the 13-digit code printed under the QR code on the package, e.g. 1234 5678 90123."
                .into()
        } else {
            "【溯源】请发送包装标签二维码下方的13位追溯码，例如 1234 5678 90123。".into()
        }));
    };
    let scanning = state.scanning.clone();
    let (facts, story) = blocking(&state, move |db| {
        db.read(|c| {
            let facts = resolve(c, &scanning.keys, &code, CodeKind::Short)?;
            let story = match facts.lookup.as_ref().and_then(|l| l.batch_id) {
                Some(b) => Some(scanning.stories.get(c, b)?),
                None => None,
            };
            Ok((facts, story))
        })
    })
    .await?;
    let hash = client::client_hash(&state.scanning.salt, &format!("sms:{}", sms.from));
    state
        .scanning
        .log
        .log(ScanEvent::Scan(scan_of(
            &facts,
            ScanMethod::Sms,
            None,
            hash,
        )))
        .await;
    let code = facts.short_code().unwrap_or_default();
    let what = story.as_ref().map(|s| {
        (
            s.story.batch.product.clone(),
            s.story.batch.lot_code.clone(),
            s.story.batch.producer.name.clone(),
        )
    });
    let reason = facts.batch_reason.clone().unwrap_or_default();
    let count = facts.stats.as_ref().map_or(1, |s| s.scans + 1);
    let reply = match (facts.verdict, what, lang_en) {
        (ScanVerdict::Recalled, Some((p, lot, _)), false) => {
            format!("【溯源】{code}：{p} 批次{lot} 已召回（{reason}），请勿食用，可退回购买处。")
        }
        (ScanVerdict::Recalled, Some((p, lot, _)), true) => {
            format!("[Suyuan] {code}: {p} lot {lot} is RECALLED ({reason}). Do not eat; return it.")
        }
        (ScanVerdict::OnHold, Some((p, lot, _)), false) => {
            format!("【溯源】{code}：正品，{p} 批次{lot} 正在核查，暂停销售。")
        }
        (ScanVerdict::OnHold, Some((p, lot, _)), true) => {
            format!("[Suyuan] {code}: genuine, {p} lot {lot} is on hold pending checks.")
        }
        (ScanVerdict::Active, Some((p, lot, producer)), false) => {
            format!("【溯源】{code}：正品。{p}，批次{lot}，{producer}。第{count}次查询。")
        }
        (ScanVerdict::Active, Some((p, lot, producer)), true) => {
            format!("[Suyuan] {code}: genuine. {p}, lot {lot}, {producer}. Lookup #{count}.")
        }
        (ScanVerdict::NotActivated, _, false) => {
            format!("【溯源】{code}：标签尚未激活。若商品已在销售，请向商家或监管部门反映。")
        }
        (ScanVerdict::NotActivated, _, true) => format!(
            "[Suyuan] {code}: label not activated. If on sale, tell the seller or regulator."
        ),
        (ScanVerdict::Void, _, false) => {
            format!("【溯源】{code}：标签已作废，不应出现在销售的商品上。")
        }
        (ScanVerdict::Void, _, true) => {
            format!("[Suyuan] {code}: this label is VOID and should not be on sale.")
        }
        (_, _, false) => format!(
            "【溯源】没有追溯码 {}，请核对后重发。",
            if code.is_empty() {
                "此号码".into()
            } else {
                code
            }
        ),
        (_, _, true) => "[Suyuan] No such code; check the 13 digits and send again.".into(),
    };
    Ok(text(reply))
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// Compares secrets without an early exit that would leak how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
