//! GS1 Digital Link: `GET /01/{gtin}/10/{lot}` opens the batch's page for a product with a GTIN.
//!
//! A barcode or a retailer's system knows the product and lot, not the individual package: the page says
//! so ("not individually verified") and shows the batch's status (recall included) and story. With
//! `Accept: application/linkset+json` it answers the GS1 resolver's linkset (RFC 9264) instead, with the
//! traceability and recall-status links.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;
use suyuan_core::model::{BatchStatus, NewScan, ScanEvent, ScanMethod, ScanVerdict};
use suyuan_core::store::{batches, public};
use suyuan_core::{BatchId, CoreError};

use super::scan::{html, page, verdict_view, Mode};
use super::texts;
use super::Lang;
use crate::error::ApiResult;
use crate::extract::blocking;
use crate::scans::client;
use crate::scans::lookup::{CodeKind, ScanFacts};
use crate::state::AppState;

#[get("/01/{gtin:[0-9]{8,14}}/10/{lot}")]
pub async fn batch_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (gtin, lot) = path.into_inner();
    if !suyuan_core::model::gtin_is_valid(&gtin) {
        return Err(CoreError::NotFound { what: "product" }.into());
    }
    let scanning = state.scanning.clone();
    let (g, l) = (gtin.clone(), lot.clone());
    let (batch, story) = blocking(&state, move |db| {
        db.read(|c| {
            let id = public::batch_by_gtin_lot(c, &g, &l)?
                .ok_or(CoreError::NotFound { what: "batch" })?;
            let batch = batches::get(c, id)?;
            let story = scanning.stories.get(c, id)?;
            Ok((batch, story))
        })
    })
    .await?;
    let wants_linkset = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/linkset+json"));
    if wants_linkset {
        return Ok(HttpResponse::Ok()
            .content_type("application/linkset+json")
            .json(linkset(&state.public_base(), &gtin, &lot, batch.id)));
    }
    let verdict = match batch.status {
        BatchStatus::Recalled => ScanVerdict::Recalled,
        BatchStatus::Blocked => ScanVerdict::OnHold,
        BatchStatus::Open => ScanVerdict::Batch,
    };
    let scanning = &state.scanning;
    let ip = client::client_ip(&req, &scanning.settings.trusted_proxies);
    scanning
        .log
        .log(ScanEvent::Scan(NewScan {
            scanned_at: Utc::now(),
            method: ScanMethod::DigitalLink,
            verdict: ScanVerdict::Batch,
            label: None,
            short_code: None,
            batch_id: Some(batch.id),
            org_id: Some(batch.org_id),
            product_id: Some(batch.product_id),
            region: client::ip_region(scanning.ip_regions.as_ref(), ip),
            client_hash: client::request_hash(&scanning.salt, ip),
        }))
        .await;
    let lang = Lang::of(&req);
    let t = texts::texts(lang);
    let facts = ScanFacts {
        verdict,
        kind: CodeKind::Short,
        serial: None,
        lookup: None,
        batch_status: Some(batch.status),
        batch_reason: batch.status_reason.clone(),
        // Not a label: no scan history, no "first lookup" line.
        stats: None,
    };
    let mut banner = verdict_view(&facts, lang);
    if verdict == ScanVerdict::Batch {
        banner.tone = "warn";
        banner.heading = if lang == Lang::Zh {
            "批次信息（未验证单个标签）".into()
        } else {
            "Batch information (label not verified)".into()
        };
        banner.lines = vec![t.not_individual.to_owned()];
    } else {
        banner.lines.retain(|l| l != t.first_scan_now);
        banner.lines.push(t.not_individual.to_owned());
    }
    let body = page(t, lang, Mode::Phone, &req, banner, None, Some(&story), None)?;
    Ok(html(&req, body))
}

/// The linkset of a batch (RFC 9264, GS1 link types), on the configured public host: the request's
/// `Host` header is the client's to write, and a linkset cached by a resolver must not point elsewhere.
fn linkset(base: &str, gtin: &str, lot: &str, batch: BatchId) -> serde_json::Value {
    let anchor = format!("{base}/01/{}/10/{lot}", public::gtin14(gtin));
    json!({
        "linkset": [{
            "anchor": anchor,
            "https://gs1.org/voc/defaultLink": [
                {"href": anchor, "type": "text/html", "hreflang": ["zh", "en"], "title": "追溯信息 Traceability"}
            ],
            "https://gs1.org/voc/traceability": [
                {"href": format!("{base}/api/v1/public/batches/{}", batch.0), "type": "application/json", "title": "批次追溯记录 Batch trace"}
            ],
            "https://gs1.org/voc/recallStatus": [
                {"href": format!("{base}/api/v1/public/batches/{}/recall-status", batch.0), "type": "application/json", "title": "召回状态 Recall status"}
            ]
        }]
    })
}
