//! The consumer scan page: what a phone opens when it scans a label (`GET /<169 digits>`), and what a
//! typed short code (`GET /c?code=`), the kiosk and a GS1 Digital Link show.
//!
//! One server-rendered page, no JavaScript needed to read it, styles inlined: on a cheap phone over a
//! weak network it is one small response. In order of importance it shows the verdict, the product and
//! its producer, the farming timeline of the batch and of the batches it came from (pre-harvest
//! intervals checked), inspections, plot photos and cold-store temperatures, and the journey. Only
//! public fields reach it (see `suyuan_core::store::public`).
//!
//! Every view is logged as a scan ([`crate::scans::log`]) without waiting for the database.
//!
//! The parts: `verdict` (the banner: which verdict says what), `story` (the batch's story, rendered
//! once per language and cached), `chart` (the cold-store temperatures as inline SVG) and `dates`
//! (dates as a consumer in China reads them).

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};

use askama::Template;
use chrono::Utc;
use suyuan_core::model::{NewScan, ScanEvent, ScanMethod, ScanRegion, ScanVerdict};

use super::texts::{self, Texts};
use super::Lang;
use crate::error::{ApiError, ApiResult};
use crate::extract::blocking;
use crate::scans::client;
use crate::scans::lookup::{resolve, CodeKind, ScanFacts};
use crate::scans::story::StoryData;
use crate::state::AppState;

mod chart;
mod dates;
mod story;
mod verdict;

pub use dates::date;
pub use verdict::{verdict_view, VerdictView};

use story::story_html;

/// The consumer pages' styles (scan page and kiosk), inlined into each page (the Content-Security-Policy
/// allows exactly this text by its hash, see [`super::security_headers`]).
pub const CSS: &str = include_str!("../../../../web/static/scan.css");

/// The location button's script, inlined into the scan page and allowed by its hash like [`CSS`].
pub const LOCATION_SCRIPT: &str = r#"(function(){var b=document.getElementById("loc");if(!navigator.geolocation||!window.fetch)return;b.hidden=false;b.onclick=function(){navigator.geolocation.getCurrentPosition(function(p){fetch("/api/v1/scans/location",{method:"POST",headers:{"Content-Type":"application/json"},body:JSON.stringify({code:b.dataset.code,latitude:p.coords.latitude,longitude:p.coords.longitude})}).then(function(){b.textContent=b.dataset.thanks;b.disabled=true})})}})()"#;

/// How the page is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A phone: lookup form, location button.
    Phone,
    /// A service-station kiosk: back button, resets itself after a minute.
    Kiosk,
}

/// The page: the verdict and the code around the batch's (cached) story.
#[derive(Template)]
#[template(path = "scan.html")]
pub struct ScanPage<'a> {
    pub t: &'static Texts,
    pub title: String,
    pub css: &'static str,
    pub script: &'static str,
    pub switch_href: String,
    pub lang_query: &'static str,
    pub kiosk: bool,
    pub verdict: VerdictView,
    /// The short code (or the code a forgery claims) with its caption.
    pub code: Option<(&'static str, String)>,
    /// The rendered story (escaped when it was rendered).
    pub story: &'a str,
    /// The code the location button reports for (genuine scanned labels only).
    pub location_code: Option<String>,
}

#[get("/{code:[0-9]{1,400}}")]
pub async fn label(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = code.into_inner();
    if wants_json(&req) {
        // Programs get the verify endpoint's answer (and are not counted as consumer scans).
        let answer = blocking(&state, move |db| {
            db.read(|c| crate::api::labels::verify::check(c, &code))
        })
        .await?;
        return Ok(HttpResponse::Ok().json(answer));
    }
    show(
        &req,
        &state,
        code,
        CodeKind::Signed,
        ScanMethod::Qr,
        Mode::Phone,
    )
    .await
}

/// The short-code form's target.
#[derive(Debug, serde::Deserialize)]
pub struct CodeQuery {
    #[serde(default)]
    pub code: String,
}

#[get("/c")]
pub async fn short_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CodeQuery>,
) -> ApiResult<HttpResponse> {
    let code = query.into_inner().code;
    show(
        &req,
        &state,
        code,
        CodeKind::Short,
        ScanMethod::ShortCode,
        Mode::Phone,
    )
    .await
}

fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// Resolves a code, logs the scan and renders the page.
pub async fn show(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    code: String,
    kind: CodeKind,
    method: ScanMethod,
    mode: Mode,
) -> ApiResult<HttpResponse> {
    let scanning = state.scanning.clone();
    let looked_up = scanning.clone();
    let (facts, story) = blocking(state, move |db| {
        db.read(|c| {
            let facts = resolve(c, &looked_up.keys, &code, kind)?;
            let story = match facts.lookup.as_ref().and_then(|l| l.batch_id) {
                Some(batch) => Some(looked_up.stories.get(c, batch)?),
                None => None,
            };
            Ok((facts, story))
        })
    })
    .await?;
    let ip = client::client_ip(req, &scanning.settings.trusted_proxies);
    let region = client::ip_region(scanning.ip_regions.as_ref(), ip);
    let hash = client::request_hash(&scanning.salt, ip);
    scanning
        .log
        .log(ScanEvent::Scan(scan_of(&facts, method, region, hash)))
        .await;
    let lang = Lang::of(req);
    let page = render(&facts, story.as_deref(), lang, mode, req);
    Ok(html(req, page?))
}

/// The scan to log for a resolved code.
pub fn scan_of(
    facts: &ScanFacts,
    method: ScanMethod,
    region: Option<ScanRegion>,
    client_hash: String,
) -> NewScan {
    let lookup = facts.lookup.as_ref();
    NewScan {
        scanned_at: Utc::now(),
        method,
        verdict: facts.verdict,
        label: facts.label(),
        short_code: facts.short_code(),
        batch_id: lookup.and_then(|l| l.batch_id),
        org_id: lookup.and_then(|l| l.org_id),
        product_id: lookup.and_then(|l| l.product_id),
        region,
        client_hash,
    }
}

/// A rendered page as the answer: never cached (the verdict can change), language cookie remembered.
pub fn html(req: &HttpRequest, page: String) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    resp.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(cookie) = Lang::remembered(req) {
        resp.cookie(cookie);
    }
    resp.body(page)
}

/// Renders the page.
pub fn render(
    f: &ScanFacts,
    story: Option<&StoryData>,
    lang: Lang,
    mode: Mode,
    req: &HttpRequest,
) -> Result<String, ApiError> {
    let t = texts::texts(lang);
    let verdict = verdict_view(f, lang);
    let code = f.short_code().map(|code| {
        // A forged code names a serial it has no right to: say so rather than present it as the label's.
        let caption = match f.verdict {
            ScanVerdict::Counterfeit | ScanVerdict::UnknownKey => t.claimed_code,
            _ => t.short_code,
        };
        (caption, code)
    });
    let location_code = (f.kind == CodeKind::Signed
        && mode == Mode::Phone
        && matches!(
            f.verdict,
            ScanVerdict::Active | ScanVerdict::OnHold | ScanVerdict::NotActivated
        ))
    .then(|| req.path().trim_start_matches('/').to_owned());
    page(t, lang, mode, req, verdict, code, story, location_code)
}

/// Assembles and renders the page from a verdict and a story.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per way in; a struct would only rename them"
)]
pub fn page(
    t: &'static Texts,
    lang: Lang,
    mode: Mode,
    req: &HttpRequest,
    verdict: VerdictView,
    code: Option<(&'static str, String)>,
    story: Option<&StoryData>,
    location_code: Option<String>,
) -> Result<String, ApiError> {
    let story = match story {
        Some(data) => story_html(data, lang)?,
        None => std::sync::Arc::from(""),
    };
    let page = ScanPage {
        t,
        title: format!("{} · {}", verdict.heading, t.title),
        css: CSS,
        script: LOCATION_SCRIPT,
        switch_href: switch_href(req, t.switch_to),
        lang_query: if lang == Lang::En { "?lang=en" } else { "" },
        kiosk: mode == Mode::Kiosk,
        verdict,
        code,
        story: &story,
        location_code,
    };
    page.render().map_err(render_error)
}

/// A template that failed to render: an internal error (templates are checked when compiled).
pub(super) fn render_error(e: askama::Error) -> ApiError {
    ApiError::Core(suyuan_core::CoreError::Internal(e.to_string()))
}

/// The same URL in the other language.
fn switch_href(req: &HttpRequest, to: &str) -> String {
    let kept: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
        .collect();
    let mut q = kept.join("&");
    if !q.is_empty() {
        q.push('&');
    }
    format!("{}?{q}lang={to}", req.path())
}
