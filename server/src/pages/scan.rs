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

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, Utc};
use suyuan_core::model::{
    NewScan, RecordDetails, RecordKind, ScanEvent, ScanMethod, ScanRegion, ScanVerdict, Suspicion,
    Verdict,
};
use suyuan_core::region;
use suyuan_core::store::public::PublicRecord;

use super::texts::{self, Texts};
use super::Lang;
use crate::error::{ApiError, ApiResult};
use crate::extract::blocking;
use crate::scans::client;
use crate::scans::lookup::{resolve, CodeKind, ScanFacts};
use crate::scans::story::{ColdStay, StoryData};
use crate::state::AppState;

/// The consumer pages' styles (scan page and kiosk), inlined into each page (the Content-Security-Policy
/// allows exactly this text by its hash, see [`super::security_headers`]).
pub const CSS: &str = include_str!("../../../web/static/scan.css");

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

/// The verdict banner.
#[derive(Debug, Clone)]
pub struct VerdictView {
    pub tone: &'static str,
    pub heading: String,
    pub lines: Vec<String>,
    pub advice: Option<String>,
}

/// One entry of the farming timeline or the journey.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub date: String,
    pub kind: &'static str,
    pub title: String,
    pub lines: Vec<String>,
    /// A check shown in green (true) or red (false), e.g. the pre-harvest interval.
    pub check: Option<(bool, String)>,
    pub place: String,
    /// The reasons of the corrections applied.
    pub corrected: Option<String>,
    /// The lot it belongs to, when not the scanned batch.
    pub lot: Option<String>,
}

/// One inspection.
#[derive(Debug, Clone)]
pub struct InspectionView {
    pub at: DateTime<Utc>,
    pub date: String,
    /// The lot inspected, when not the scanned batch.
    pub lot: Option<String>,
    pub org: String,
    pub method: &'static str,
    pub report: Option<String>,
    pub pass: bool,
    pub items: Vec<ItemView>,
}

/// One inspected item.
#[derive(Debug, Clone)]
pub struct ItemView {
    pub name: String,
    pub value: String,
    pub limit: String,
    pub pass: bool,
}

/// A plot photo.
#[derive(Debug, Clone)]
pub struct PhotoView {
    pub thumb: String,
    pub full: String,
    pub date: String,
    pub width: i64,
    pub height: i64,
}

/// A temperature chart.
#[derive(Debug, Clone)]
pub struct ChartView {
    pub caption: String,
    pub svg: String,
    pub summary: String,
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

/// The batch's story: product and producer, farming, inspections, photos, temperatures, journey.
#[derive(Template)]
#[template(path = "scan_story.html")]
pub struct StoryView {
    pub t: &'static Texts,
    pub marks: Option<Vec<&'static str>>,
    pub facts: Vec<(&'static str, String)>,
    pub farming: Vec<Entry>,
    pub inspections: Vec<InspectionView>,
    pub photos: Vec<PhotoView>,
    pub charts: Vec<ChartView>,
    pub journey: Vec<Entry>,
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

/// A date as a consumer reads it.
pub fn date(at: DateTime<Utc>, lang: Lang) -> String {
    let local = suyuan_core::time::in_china(at);
    match lang {
        Lang::Zh => local.format("%Y年%-m月%-d日").to_string(),
        Lang::En => local.format("%-d %b %Y").to_string(),
    }
}

fn day_month(at: DateTime<Utc>, lang: Lang) -> String {
    let local = suyuan_core::time::in_china(at);
    match lang {
        Lang::Zh => local.format("%-m月%-d日").to_string(),
        Lang::En => local.format("%-d %b").to_string(),
    }
}

/// The city of a region, for a sentence; none when the region is unknown.
fn place(code: Option<&str>) -> Option<String> {
    code.and_then(region::short_name)
}

/// The verdict banner of a code.
pub fn verdict_view(f: &ScanFacts, lang: Lang) -> VerdictView {
    let zh = lang == Lang::Zh;
    let pick = |a: &str, b: &str| if zh { a.to_owned() } else { b.to_owned() };
    let reason = f.batch_reason.clone().unwrap_or_default();
    let mut v = match f.verdict {
        ScanVerdict::Recalled => VerdictView {
            tone: "bad",
            heading: pick("已召回", "Recalled"),
            lines: vec![if zh {
                format!("该批次产品已被召回：{reason}")
            } else {
                format!("This batch has been recalled: {reason}")
            }],
            advice: Some(pick(
                "请勿食用。请停止销售或退回购买处，可联系生产者或当地农业农村部门。",
                "Do not eat it. Stop selling it or return it to where you bought it; contact the producer or the local agriculture bureau.",
            )),
        },
        ScanVerdict::OnHold => VerdictView {
            tone: "warn",
            heading: pick("正品 · 暂停销售", "Genuine · on hold"),
            lines: vec![if zh {
                format!("标签为正品，但该批次正在核查，暂停销售：{reason}")
            } else {
                format!("The label is genuine, but the batch is on hold pending checks: {reason}")
            }],
            advice: None,
        },
        ScanVerdict::Active | ScanVerdict::Batch => VerdictView {
            tone: "ok",
            heading: pick("正品", "Genuine"),
            lines: vec![pick(
                "此标签由平台签发，已绑定到下列产品批次。",
                "This label was issued by the platform and is bound to the batch below.",
            )],
            advice: None,
        },
        ScanVerdict::NotActivated => VerdictView {
            tone: "warn",
            heading: pick("未激活", "Not activated"),
            lines: vec![pick(
                "标签为平台签发，但尚未绑定产品批次。",
                "The label was issued by the platform but is not yet bound to a batch.",
            )],
            advice: Some(pick(
                "若商品已在销售，请向商家或监管部门反映。",
                "If the product is on sale, tell the seller or the regulator.",
            )),
        },
        ScanVerdict::Void => VerdictView {
            tone: "bad",
            heading: pick("已作废", "Void"),
            lines: vec![if zh {
                format!(
                    "此标签已作废（{}），不应出现在销售的商品上。",
                    f.lookup
                        .as_ref()
                        .and_then(|l| l.void_reason.clone())
                        .unwrap_or_default()
                )
            } else {
                format!(
                    "This label was voided ({}) and should not be on a product for sale.",
                    f.lookup
                        .as_ref()
                        .and_then(|l| l.void_reason.clone())
                        .unwrap_or_default()
                )
            }],
            advice: Some(pick(
                "请向商家或监管部门反映。",
                "Tell the seller or the regulator.",
            )),
        },
        ScanVerdict::NotMinted => VerdictView {
            tone: "bad",
            heading: pick("可疑标签", "Suspicious label"),
            lines: vec![pick(
                "签名有效，但平台从未发行过此编号，可能是盗印。",
                "The signature is valid but the platform never issued this number: possibly an unauthorised print.",
            )],
            advice: Some(pick("请向监管部门反映。", "Tell the regulator.")),
        },
        ScanVerdict::Counterfeit => VerdictView {
            tone: "bad",
            heading: pick("假冒标签", "Counterfeit"),
            lines: vec![pick(
                "签名无效：这不是平台签发的标签，可能是伪造或被篡改。",
                "The signature is invalid: this label was not issued by the platform (forged or edited).",
            )],
            advice: Some(pick(
                "请勿购买或食用，并向当地市场监管或农业农村部门举报。",
                "Do not buy or eat it; report it to the local market or agriculture authority.",
            )),
        },
        ScanVerdict::UnknownKey => VerdictView {
            tone: "bad",
            heading: pick("无法验证", "Cannot be verified"),
            lines: vec![pick(
                "此标签声称由平台未知的密钥签发，不能确认真伪。",
                "This label names a signing key the platform never had; it cannot be confirmed.",
            )],
            advice: None,
        },
        ScanVerdict::Malformed => VerdictView {
            tone: "bad",
            heading: pick("不是有效的追溯码", "Not a valid trace code"),
            lines: vec![if f.kind == CodeKind::Short {
                pick(
                    "没有这个追溯码，请核对标签二维码下方的13位数字。",
                    "There is no such code; check the 13 digits printed under the QR code.",
                )
            } else {
                pick(
                    "链接不完整或有误，请重新扫描标签上的二维码。",
                    "The link is incomplete or wrong; scan the QR code on the label again.",
                )
            }],
            advice: None,
        },
    };
    // Genuine labels: how often they were looked up, and whether that looks like a copied label.
    if matches!(
        f.verdict,
        ScanVerdict::Active | ScanVerdict::OnHold | ScanVerdict::Recalled
    ) {
        match &f.stats {
            None => v
                .lines
                .push(pick(texts::ZH.first_scan_now, texts::EN.first_scan_now)),
            Some(s) => {
                let count = s.scans + 1;
                let first = if zh {
                    format!(
                        "首次查询于{}{}，共被查询 {} 次，来自 {} 台设备。",
                        day_month(s.first_at, lang),
                        place(s.first_division.as_deref())
                            .map(|p| format!("在{p}"))
                            .unwrap_or_default(),
                        count,
                        s.devices.max(1)
                    )
                } else {
                    format!(
                        "First looked up on {}{}; looked up {} times from {} devices.",
                        day_month(s.first_at, lang),
                        place(s.first_division.as_deref())
                            .map(|p| format!(" in {p}"))
                            .unwrap_or_default(),
                        count,
                        s.devices.max(1)
                    )
                };
                if let Some(why) = s.suspicion {
                    if f.verdict == ScanVerdict::Active {
                        v.tone = "warn";
                        v.heading = pick("正品 · 疑似被复制", "Genuine · possibly copied");
                    }
                    v.lines.push(first);
                    v.lines.push(match (why, zh) {
                        (Suspicion::ManyDevices, true) => "一个包装通常不会被这么多台设备查询，此标签可能被复制。".into(),
                        (Suspicion::ManyDevices, false) => "One package is rarely looked up from so many devices: this label may have been copied.".into(),
                        (Suspicion::ImpossibleTravel, true) => "此标签在短时间内于相距很远的地方被查询，可能被复制。".into(),
                        (Suspicion::ImpossibleTravel, false) => "This label was looked up in far-apart places within too short a time: it may have been copied.".into(),
                        (Suspicion::OutsideArea, true) => "此标签在产品销售区域以外被查询，可能是窜货或被复制。".into(),
                        (Suspicion::OutsideArea, false) => "This label was looked up outside the product's sales area: diverted goods or a copied label.".into(),
                    });
                    if v.advice.is_none() {
                        v.advice = Some(pick(
                            "如果您手中的包装是新开封的，请向商家或监管部门反映。",
                            "If your package is freshly opened, tell the seller or the regulator.",
                        ));
                    }
                } else {
                    v.lines.push(first);
                }
            }
        }
    }
    v
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

fn render_error(e: askama::Error) -> ApiError {
    ApiError::Core(suyuan_core::CoreError::Internal(e.to_string()))
}

/// The story's HTML in a language: rendered on the first scan after the story was built, then reused
/// until the story is rebuilt (formatting dates, doses and the chart's points is most of a page's cost).
fn story_html(data: &StoryData, lang: Lang) -> Result<std::sync::Arc<str>, ApiError> {
    let slot = &data.rendered[usize::from(lang == Lang::En)];
    if let Some(html) = slot.get() {
        return Ok(html.clone());
    }
    let html: std::sync::Arc<str> =
        Arc::from(story_view(data, lang).render().map_err(render_error)?);
    Ok(slot.get_or_init(|| html).clone())
}

/// The view of a story in a language.
fn story_view(data: &StoryData, lang: Lang) -> StoryView {
    let t = texts::texts(lang);
    let mut facts = Vec::new();
    let mut marks = None;
    let (mut farming, mut inspections, mut journey) = (Vec::new(), Vec::new(), Vec::new());
    {
        let b = &data.story.batch;
        facts.push((t.product, b.product.clone()));
        if let Some(brand) = &b.brand {
            facts.push((t.brand, brand.clone()));
        }
        facts.push((t.lot, b.lot_code.clone()));
        facts.push((t.producer, b.producer.name.clone()));
        // The grower: the batch that started on a plot (the scanned batch may be a packer's).
        let grower = std::iter::once(b)
            .chain(data.story.upstream.iter())
            .find(|x| x.origin_site_id.is_some())
            .map(|x| &x.producer);
        let origin_org = grower.unwrap_or(&b.producer);
        if grower.is_some_and(|g| g.id != b.producer.id) {
            facts.push((t.grower, origin_org.name.clone()));
        }
        let region_name = region::full_name(&origin_org.division_code).unwrap_or_default();
        let address = origin_org.address.clone().unwrap_or_default();
        // Addresses usually repeat the county: show the address, or the county where there is none.
        let origin = if address.is_empty() {
            region_name
        } else {
            address
        };
        if !origin.is_empty() {
            facts.push((
                if grower.is_some() {
                    t.origin
                } else {
                    t.producer
                },
                origin,
            ));
        }
        if let Some(contact) = &b.producer.public_contact {
            facts.push((t.contact, contact.clone()));
        }
        if !b.certifications.is_empty() {
            marks = Some(
                b.certifications
                    .iter()
                    .map(|c| texts::certification(*c, lang))
                    .collect(),
            );
        }
        let batches: Vec<_> = std::iter::once(b)
            .chain(data.story.upstream.iter())
            .collect();
        for batch in &batches {
            let lot = (batch.id != b.id).then(|| batch.lot_code.clone());
            for r in &batch.records {
                let kind = r.details.kind();
                match kind {
                    RecordKind::Sowing
                    | RecordKind::Fertilising
                    | RecordKind::Spraying
                    | RecordKind::Irrigation
                    | RecordKind::Harvest => {
                        farming.push(entry(r, lang, t, lot.clone(), &batch.records));
                    }
                    RecordKind::Processing
                    | RecordKind::Packing
                    | RecordKind::Shipping
                    | RecordKind::Receiving => {
                        journey.push(entry(r, lang, t, lot.clone(), &batch.records));
                    }
                    RecordKind::Inspection => {
                        if let RecordDetails::Inspection(i) = &r.details {
                            inspections.push(InspectionView {
                                at: r.event_time,
                                lot: lot.clone(),
                                date: date(r.event_time, lang),
                                org: r.organisation.clone(),
                                method: if i.method == "rapid_test" {
                                    t.rapid_test
                                } else {
                                    t.lab_test
                                },
                                report: i.report_number.clone(),
                                pass: i.overall == Verdict::Pass,
                                items: i
                                    .items
                                    .iter()
                                    .map(|it| ItemView {
                                        name: it.name.clone(),
                                        value: format!("{} {}", num(it.value), it.unit),
                                        limit: format!("{} {}", num(it.limit), it.unit),
                                        pass: it.result == Verdict::Pass,
                                    })
                                    .collect(),
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        farming.sort_by_key(|e| e.at);
        inspections.sort_by_key(|i| i.at);
        journey.sort_by_key(|e| e.at);
        let photos = data
            .photos
            .iter()
            .map(|p| PhotoView {
                thumb: format!("/b/{}/photos/{}/thumb", b.id.0, p.id),
                full: format!("/b/{}/photos/{}", b.id.0, p.id),
                date: day_month(p.taken_at, lang),
                width: 160,
                height: (160 * p.height.max(1) / p.width.max(1)).clamp(40, 320),
            })
            .collect();
        let charts = data.cold.iter().map(|c| chart(c, lang, t)).collect();
        StoryView {
            t,
            marks,
            facts,
            farming,
            inspections,
            photos,
            charts,
            journey,
        }
    }
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

/// A number without needless decimals.
fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// One timeline entry of a record.
fn entry(
    r: &PublicRecord,
    lang: Lang,
    t: &Texts,
    lot: Option<String>,
    siblings: &[PublicRecord],
) -> Entry {
    let zh = lang == Lang::Zh;
    let mut lines = Vec::new();
    let mut check = None;
    let title = match &r.details {
        RecordDetails::Sowing(s) => {
            if let Some(src) = &s.seed_source {
                lines.push(src.clone());
            }
            s.variety.clone()
        }
        RecordDetails::Fertilising(x) => {
            lines.push(format!("{} {}", num(x.dose), x.dose_unit));
            if let Some(m) = &x.method {
                lines.push(m.clone());
            }
            x.fertiliser_name.clone()
        }
        RecordDetails::Spraying(x) => {
            lines.push(format!(
                "{} · {} {}{}",
                x.active_ingredient,
                num(x.dose),
                x.dose_unit,
                x.target
                    .as_ref()
                    .map(|tg| if zh {
                        format!(" · 防治{tg}")
                    } else {
                        format!(" · against {tg}")
                    })
                    .unwrap_or_default()
            ));
            if !x.registration_number.is_empty() {
                lines.push(if zh {
                    format!("农药登记证号 {}", x.registration_number)
                } else {
                    format!("Registration {}", x.registration_number)
                });
            }
            let phi = i64::from(x.pre_harvest_interval_days);
            let harvest = siblings
                .iter()
                .filter(|h| matches!(h.details, RecordDetails::Harvest(_)))
                .filter(|h| h.event_time > r.event_time)
                .map(|h| h.event_time)
                .min();
            check = Some(match harvest {
                Some(h) => {
                    let days = (h - r.event_time).num_days();
                    let ok = days >= phi;
                    (
                        ok,
                        if zh {
                            format!(
                                "{} {phi} {} · 施药后第 {days} 天采收，{}",
                                t.phi,
                                t.days,
                                if ok { t.phi_respected } else { t.phi_violated }
                            )
                        } else {
                            format!(
                                "{} {phi} {} · harvested {days} days after spraying: {}",
                                t.phi,
                                t.days,
                                if ok { t.phi_respected } else { t.phi_violated }
                            )
                        },
                    )
                }
                None => (
                    true,
                    format!("{} {phi} {} · {}", t.phi, t.days, t.phi_not_harvested),
                ),
            });
            x.pesticide_name.clone()
        }
        RecordDetails::Irrigation(x) => {
            if let Some(v) = x.volume_m3 {
                lines.push(format!("{} m³", num(v)));
            }
            if let Some(w) = &x.water_source {
                lines.push(w.clone());
            }
            x.method.clone().unwrap_or_default()
        }
        RecordDetails::Harvest(x) => format!("{} {}", num(x.quantity), x.unit),
        RecordDetails::Processing(x) => {
            if let Some(n) = &x.note {
                // Transformations note their inputs as "from LOT, LOT".
                lines.push(match n.strip_prefix("from ") {
                    Some(lots) => format!("{} {lots}", t.from_lot),
                    None => n.clone(),
                });
            }
            match (x.operation.as_str(), zh) {
                ("split", true) => "分级拆分".into(),
                ("merge", true) => "合并".into(),
                ("transform", true) => "加工转化".into(),
                ("split", false) => "Graded and split".into(),
                ("merge", false) => "Merged".into(),
                ("transform", false) => "Transformed".into(),
                (other, _) => other.to_owned(),
            }
        }
        RecordDetails::Packing(x) => {
            if let (Some(q), Some(u)) = (x.net_quantity_per_package, &x.unit) {
                lines.push(if zh {
                    format!("每件净含量 {} {u}", num(q))
                } else {
                    format!("{} {u} net each", num(q))
                });
            }
            format!("{} × {}", x.package_type, x.package_count)
        }
        RecordDetails::Shipping(x) => {
            if let Some(c) = &x.carrier {
                lines.push(c.clone());
            }
            match (x.quantity, &x.unit) {
                (Some(q), Some(u)) => format!("{} {u}", num(q)),
                _ => String::new(),
            }
        }
        RecordDetails::Receiving(x) => {
            if let Some(c) = &x.condition {
                lines.push(c.clone());
            }
            match (x.quantity, &x.unit) {
                (Some(q), Some(u)) => format!("{} {u}", num(q)),
                _ => String::new(),
            }
        }
        _ => String::new(),
    };
    let place = match &r.site {
        Some(site) => format!("{} · {site}", r.organisation),
        None => r.organisation.clone(),
    };
    Entry {
        at: r.event_time,
        date: date(r.event_time, lang),
        kind: texts::record_kind(r.details.kind(), lang),
        title,
        lines,
        check,
        place,
        corrected: (!r.corrections.is_empty()).then(|| r.corrections.join("；")),
        lot,
    }
}

/// A small line chart of a cold-store stay: the mean per span, the min–max band behind it, and the
/// 0–8 °C cold-chain band, as inline SVG (no script, a few hundred bytes).
fn chart(c: &ColdStay, lang: Lang, t: &Texts) -> ChartView {
    const W: f64 = 320.0;
    const H: f64 = 120.0;
    const PAD: f64 = 22.0;
    let lo = c
        .points
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let hi = c
        .points
        .iter()
        .map(|p| p.3)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(10.0);
    let (t0, t1) = (
        c.from.timestamp_millis() as f64,
        c.to.timestamp_millis().max(c.from.timestamp_millis() + 1) as f64,
    );
    let x = |ms: i64| PAD + (ms as f64 - t0) / (t1 - t0) * (W - PAD - 4.0);
    let y = |v: f64| 4.0 + (hi - v) / (hi - lo) * (H - 4.0 - 16.0);
    let mean: Vec<String> = c
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.2)))
        .collect();
    let band: Vec<String> = c
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.3)))
        .chain(
            c.points
                .iter()
                .rev()
                .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))),
        )
        .collect();
    let svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{label}\">\
<rect x=\"{PAD}\" y=\"{y8:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"#e3f2fd\"/>\
<polygon points=\"{band}\" fill=\"#90caf9\" opacity=\".5\"/>\
<polyline points=\"{mean}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.6\"/>\
<text x=\"0\" y=\"{ty8:.1}\" font-size=\"9\" fill=\"#5a6b5a\">8℃</text>\
<text x=\"0\" y=\"{ty0:.1}\" font-size=\"9\" fill=\"#5a6b5a\">0℃</text>\
<text x=\"{PAD}\" y=\"{H}\" font-size=\"9\" fill=\"#5a6b5a\">{d0}</text>\
<text x=\"{W}\" y=\"{H}\" font-size=\"9\" fill=\"#5a6b5a\" text-anchor=\"end\">{d1}</text></svg>",
        label = t.temperatures,
        y8 = y(8.0),
        bw = W - PAD - 4.0,
        bh = y(0.0) - y(8.0),
        band = band.join(" "),
        mean = mean.join(" "),
        ty8 = y(8.0) + 3.0,
        ty0 = y(0.0) + 3.0,
        d0 = day_month(c.from, lang),
        d1 = day_month(c.to, lang),
    );
    let min = c.points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = c
        .points
        .iter()
        .map(|p| p.3)
        .fold(f64::NEG_INFINITY, f64::max);
    ChartView {
        caption: format!(
            "{} · {} {} – {}",
            c.site,
            c.lot_code,
            date(c.from, lang),
            date(c.to, lang)
        ),
        svg,
        summary: format!("{} {:.1}–{:.1} ℃", t.temp_range, min, max),
    }
}
