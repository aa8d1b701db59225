//! Server-rendered pages. Templates and assets live in `web/`; Chinese is the default language and
//! `?lang=en` switches to English.

pub mod assets;
pub mod home;

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
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
