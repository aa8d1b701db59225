//! The label URL itself, `GET /<169 digits>`: what a phone opens when it scans a label.
//!
//! It answers the verdict (genuine and active, not yet activated, void, recalled, signed but never
//! minted, counterfeit, unknown key, not a code) as a small server-rendered page in Chinese (English with
//! `?lang=en`), or the same JSON as `GET /api/v1/labels/verify` when the client asks for
//! `application/json`. The path holds only digits, so the upper-case form of the URL that keeps the QR
//! prefix alphanumeric (`HTTPS://HOST/…`) reaches the same route.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use suyuan_core::model::{BatchStatus, LabelState};
use suyuan_core::store::{batches, sites};

use super::{escape, Lang};
use crate::api::labels::verify::{check, VerdictKind, VerifyAnswer};
use crate::error::ApiResult;
use crate::extract::blocking;
use crate::state::AppState;

const TEMPLATE: &str = include_str!("../../../web/templates/label.html");

/// What the page shows besides the verdict.
struct Facts {
    answer: VerifyAnswer,
    product: Option<String>,
    lot: Option<String>,
    batch_reason: Option<String>,
}

#[get("/{code:[0-9]{1,400}}")]
pub async fn label(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = code.into_inner();
    let facts = blocking(&state, move |db| {
        db.read(|c| {
            let answer = check(c, &code)?;
            let product = match answer.product_id {
                Some(id) => Some(sites::get_product(c, id)?.name),
                None => None,
            };
            let batch = match answer.batch_id {
                Some(id) => Some(batches::get(c, id)?),
                None => None,
            };
            Ok(Facts {
                answer,
                product,
                lot: batch.as_ref().map(|b| b.lot_code.clone()),
                batch_reason: batch.and_then(|b| b.status_reason),
            })
        })
    })
    .await?;
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(HttpResponse::Ok().json(facts.answer));
    }
    let lang = Lang::of(&req);
    let mut resp = HttpResponse::Ok();
    resp.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(cookie) = Lang::remembered(&req) {
        resp.cookie(cookie);
    }
    Ok(resp.body(render(&facts, lang)))
}

/// Tone, heading and explanation of a verdict.
fn verdict(f: &Facts, lang: Lang) -> (&'static str, &'static str, String) {
    let zh = lang == Lang::Zh;
    let a = &f.answer;
    let reason = f.batch_reason.clone().unwrap_or_default();
    match (a.verdict, a.state, a.batch_status) {
        (VerdictKind::Genuine, Some(LabelState::Active), Some(BatchStatus::Recalled)) => (
            "bad",
            if zh { "已召回" } else { "Recalled" },
            if zh {
                format!("该批次产品已被召回：{reason}。请勿食用，可联系购买商家退货。")
            } else {
                format!("This batch has been recalled: {reason}. Do not eat it; return it to the seller.")
            },
        ),
        (VerdictKind::Genuine, Some(LabelState::Active), Some(BatchStatus::Blocked)) => (
            "warn",
            if zh {
                "正品 · 暂停销售"
            } else {
                "Genuine · on hold"
            },
            if zh {
                format!("标签为正品，但该批次正在核查，暂停销售：{reason}。")
            } else {
                format!("The label is genuine, but the batch is on hold pending checks: {reason}.")
            },
        ),
        (VerdictKind::Genuine, Some(LabelState::Active), _) => (
            "ok",
            if zh { "正品" } else { "Genuine" },
            if zh {
                "此标签由平台签发，已绑定到下列产品批次。".into()
            } else {
                "This label was issued by the platform and is bound to the batch below.".into()
            },
        ),
        (VerdictKind::Genuine, Some(LabelState::Minted), _) => (
            "warn",
            if zh { "未激活" } else { "Not activated" },
            if zh {
                "标签为平台签发，但尚未绑定产品批次。若商品已在销售，请向商家或监管部门反映。"
                    .into()
            } else {
                "The label was issued by the platform but is not yet bound to a batch. If the product is on sale, tell the seller or the regulator.".into()
            },
        ),
        (VerdictKind::Genuine, Some(LabelState::Void), _) => (
            "bad",
            if zh { "已作废" } else { "Void" },
            if zh {
                format!(
                    "此标签已作废（{}），不应出现在销售的商品上。",
                    a.reason.clone().unwrap_or_default()
                )
            } else {
                format!(
                    "This label was voided ({}) and should not be on a product for sale.",
                    a.reason.clone().unwrap_or_default()
                )
            },
        ),
        (VerdictKind::Genuine, _, _) => (
            "bad",
            if zh {
                "可疑标签"
            } else {
                "Suspicious label"
            },
            if zh {
                "签名有效，但平台从未发行过此编号，可能是盗印。请向监管部门反映。".into()
            } else {
                "The signature is valid but the platform never issued this number: possibly an unauthorised print. Tell the regulator.".into()
            },
        ),
        (VerdictKind::InvalidSignature, _, _) => (
            "bad",
            if zh { "假冒标签" } else { "Counterfeit" },
            if zh {
                "签名无效：这不是平台签发的标签，可能是伪造或被篡改。".into()
            } else {
                "The signature is invalid: this label was not issued by the platform (forged or edited).".into()
            },
        ),
        (VerdictKind::UnknownKey, _, _) => (
            "bad",
            if zh {
                "无法验证"
            } else {
                "Cannot be verified"
            },
            if zh {
                "此标签声称由平台未知的密钥签发，不能确认真伪。".into()
            } else {
                "This label names a signing key the platform never had; it cannot be confirmed."
                    .into()
            },
        ),
        (VerdictKind::Malformed, _, _) => (
            "bad",
            if zh {
                "不是有效的追溯码"
            } else {
                "Not a valid trace code"
            },
            if zh {
                "链接不完整或有误，请重新扫描标签上的二维码。".into()
            } else {
                "The link is incomplete or wrong; scan the QR code on the label again.".into()
            },
        ),
    }
}

fn render(f: &Facts, lang: Lang) -> String {
    let zh = lang == Lang::Zh;
    let (tone, heading, explain) = verdict(f, lang);
    let mut facts = Vec::new();
    let mut fact = |dt_zh: &str, dt_en: &str, value: &str| {
        facts.push(format!(
            "<dt>{}</dt><dd>{}</dd>",
            if zh { dt_zh } else { dt_en },
            escape(value)
        ));
    };
    if let Some(code) = &f.answer.short_code {
        fact("追溯码", "Short code", code);
    }
    if let Some(p) = &f.product {
        fact("产品", "Product", p);
    }
    if let Some(lot) = &f.lot {
        fact("批次", "Lot", lot);
    }
    let mut details = String::new();
    if !facts.is_empty() {
        details.push_str(&format!(
            "<section class=\"card\"><dl class=\"facts\">{}</dl></section>",
            facts.concat()
        ));
    }
    if let Some(batch) = f.answer.batch_id {
        details.push_str(&format!(
            "<nav class=\"links\"><a href=\"/api/v1/public/batches/{batch}\">{}</a></nav>",
            if zh {
                "查看从田间到餐桌的追溯记录"
            } else {
                "See the field-to-table record"
            }
        ));
    }
    let title = if zh {
        "溯源 · 标签验证"
    } else {
        "Suyuan · label check"
    };
    let (switch, switch_lang, lang_tag) = if zh {
        ("English", "en", "zh-CN")
    } else {
        ("中文", "zh", "en")
    };
    [
        ("lang", lang_tag),
        ("title", title),
        ("switch", switch),
        ("switch_lang", switch_lang),
        ("tone", tone),
        ("verdict", heading),
        ("explain", &escape(&explain)),
        ("details", &details),
    ]
    .iter()
    .fold(TEMPLATE.to_owned(), |page, (k, v)| {
        page.replace(&format!("{{{{{k}}}}}"), v)
    })
}
