//! Server-rendered pages. Templates and assets live in `web/`; Chinese is the default language and
//! `?lang=en` switches to English.

pub mod assets;
pub mod digital_link;
pub mod home;
pub mod kiosk;
pub mod photos;
pub mod scan;
pub mod texts;

use actix_web::middleware::DefaultHeaders;
use sha2::{Digest, Sha256};

/// The headers every answer carries (pages, assets and the API alike; a handler may set its own).
///
/// The Content-Security-Policy allows nothing by default: scripts only as the scan page's one inline
/// script, styles only as the inline styles of the scan page and kiosk (each allowed by its SHA-256, so
/// an injected `<script>` or `<style>` would not run even if escaping failed somewhere) and the home
/// page's stylesheet from this origin, images (plot photos) and `fetch` (the location report) only from
/// this origin, forms only to this origin. No one may frame a page (`frame-ancestors 'none'` and, for
/// older browsers, `X-Frame-Options`). No `Referer` leaves a page: a label's URL carries its signature,
/// which other sites have no business seeing.
pub fn security_headers() -> DefaultHeaders {
    let policy = format!(
        "default-src 'none'; script-src {}; style-src 'self' {} {}; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        csp_hash(scan::LOCATION_SCRIPT),
        csp_hash(scan::CSS),
        csp_hash(kiosk::KIOSK_CSS),
    );
    DefaultHeaders::new()
        .add(("Content-Security-Policy", policy))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Content-Type-Options", "nosniff"))
}

/// `'sha256-…'`: the CSP source that allows exactly this inline text.
fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(text.as_bytes())))
}

/// Standard base64 with padding (the CSP hash form).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The cookie that remembers a choice made with `?lang=` for the next pages, if one was made.
    pub fn remembered(req: &actix_web::HttpRequest) -> Option<actix_web::cookie::Cookie<'static>> {
        if !req.query_string().contains("lang=") {
            return None;
        }
        let value = if Lang::of(req) == Lang::En {
            "en"
        } else {
            "zh"
        };
        Some(
            actix_web::cookie::Cookie::build("lang", value)
                .path("/")
                .max_age(actix_web::cookie::time::Duration::days(365))
                .finish(),
        )
    }

    /// From `?lang=`, then the `lang` cookie; Chinese otherwise.
    pub fn of(req: &actix_web::HttpRequest) -> Lang {
        let from_query = req
            .query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("lang=").map(str::to_owned));
        let chosen = from_query.or_else(|| req.cookie("lang").map(|c| c.value().to_owned()));
        match chosen.as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_as_csp_wants_it() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
