//! `GET /kiosk`: the lookup page for a touch screen in a service station.
//!
//! Big keys, a numeric keypad, no keyboard and no JavaScript: each key is a button of one GET form that
//! carries the digits entered so far, so the kiosk works in any browser in kiosk mode. After a minute
//! without a touch the page goes back to an empty keypad (`<meta http-equiv="refresh">`), so the next
//! customer never sees the previous one's lookup.

use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use suyuan_core::model::ScanMethod;
use suyuan_label_gen::serial::SERIAL_DIGITS;

use super::scan::{html, show, Mode, CSS};

/// The keypad's styles, inlined after [`CSS`] (allowed by their hash, see [`super::security_headers`]).
pub const KIOSK_CSS: &str = include_str!("../../../web/static/kiosk.css");
use super::texts::{self, Texts};
use super::Lang;
use crate::error::{ApiError, ApiResult};
use crate::scans::lookup::CodeKind;
use crate::state::AppState;

/// The keypad's state: the digits so far and the key just pressed.
#[derive(Debug, Deserialize)]
pub struct KioskQuery {
    #[serde(default)]
    pub entered: String,
    pub key: Option<String>,
    /// Read by [`Lang::of`]; listed so that the query parses.
    pub lang: Option<String>,
}

#[derive(Template)]
#[template(path = "kiosk.html")]
struct KioskPage {
    t: &'static Texts,
    css: &'static str,
    kiosk_css: &'static str,
    lang_query: &'static str,
    en: bool,
    entered: String,
    grouped: String,
    complete: bool,
}

/// Groups digits as printed under the QR code (4 4 5).
fn group(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i == 4 || i == 8 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[get("/kiosk")]
pub async fn kiosk(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<KioskQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let mut entered: String = q
        .entered
        .chars()
        .filter(char::is_ascii_digit)
        .take(SERIAL_DIGITS)
        .collect();
    match q.key.as_deref() {
        Some("go") if entered.len() == SERIAL_DIGITS => {
            return show(
                &req,
                &state,
                entered,
                CodeKind::Short,
                ScanMethod::Kiosk,
                Mode::Kiosk,
            )
            .await;
        }
        Some("clear") => entered.clear(),
        Some("del") => {
            entered.pop();
        }
        Some(d)
            if d.len() == 1
                && d.as_bytes()[0].is_ascii_digit()
                && entered.len() < SERIAL_DIGITS =>
        {
            entered.push_str(d);
        }
        _ => {}
    }
    let lang = Lang::of(&req);
    let page = KioskPage {
        t: texts::texts(lang),
        css: CSS,
        kiosk_css: KIOSK_CSS,
        lang_query: if lang == Lang::En { "?lang=en" } else { "" },
        en: lang == Lang::En,
        grouped: group(&entered),
        complete: entered.len() == SERIAL_DIGITS,
        entered,
    };
    let body = page
        .render()
        .map_err(|e| ApiError::Core(suyuan_core::CoreError::Internal(e.to_string())))?;
    Ok(html(&req, body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_are_grouped_as_printed() {
        assert_eq!(super::group("1234567890123"), "1234 5678 90123");
        assert_eq!(super::group("12345"), "1234 5");
    }
}
