//! Server-rendered pages. Templates and assets live in `web/`; Chinese is the default language and
//! `?lang=en` switches to English.

pub mod assets;
pub mod digital_link;
pub mod home;
pub mod kiosk;
pub mod photos;
pub mod scan;
pub mod texts;

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
