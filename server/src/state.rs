//! What every handler shares.

use std::sync::Arc;

use suyuan_core::Database;

use crate::exporting::Exporter;
use crate::minting::Minter;
use crate::scans::{ScanSettings, Scanning};

/// The application state: the database handle and settings handlers need.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Database,
    /// Send cookies with `Secure`: set with `--secure-cookies`, and whenever the public host is an
    /// `https://` URL (see [`AppState::with_public_host`]).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (login throttling counts by client).
    pub trusted_proxies: crate::extract::TrustedProxies,
    /// Mints label runs asked for through the API; `None` where the server has no data folder for
    /// keys and files (label runs are then refused with 503).
    pub minter: Option<Arc<Minter>>,
    /// Writes period exports in the background; `None` where the server has no data folder for their
    /// files (they are then refused with 503; a batch's trace is still exported within its request).
    pub exporter: Option<Arc<Exporter>>,
    /// Host written into label URLs when a run does not name one (`SUYUAN_PUBLIC_HOST`), and the host
    /// of absolute links the server writes (the GS1 linkset); never taken from the request's `Host`.
    pub public_host: String,
    /// The scheme of the public host: `https` (label URLs are always printed so), or `http` where the
    /// public host was given as `http://…` or defaults to the listen address.
    pub public_scheme: &'static str,
    /// Where the gateway keeps camera images (by content hash); `None`: no images are served.
    pub media_dir: Option<std::path::PathBuf>,
    /// Label verification, story cache and the scan log of the consumer pages.
    pub scanning: Arc<Scanning>,
}

impl AppState {
    /// State over an open database, without a label minter, scanning with the default settings.
    pub fn new(db: Database) -> suyuan_core::CoreResult<Self> {
        Ok(AppState {
            scanning: Scanning::start(&db, ScanSettings::default())?,
            db,
            secure_cookies: false,
            trusted_proxies: Default::default(),
            minter: None,
            exporter: None,
            public_host: "localhost".into(),
            public_scheme: "https",
            media_dir: None,
        })
    }

    /// Scanning with these settings (IP-to-region database, rules, SMS token).
    pub fn with_scan_settings(mut self, settings: ScanSettings) -> suyuan_core::CoreResult<Self> {
        self.scanning = Scanning::start(&self.db, settings)?;
        Ok(self)
    }

    /// The public address: `https://host[:port]`, `http://host[:port]`, or a bare `host[:port]`, which
    /// means https (the scheme label URLs are printed with). Cookies are `Secure` when it is https.
    pub fn with_public_url(mut self, url: &str) -> Self {
        let (scheme, host) = public_url(url);
        self.public_host = host.to_owned();
        self.public_scheme = scheme;
        self.secure_cookies |= scheme == "https";
        self
    }

    /// The public base URL, `scheme://host`, without a trailing slash.
    pub fn public_base(&self) -> String {
        format!("{}://{}", self.public_scheme, self.public_host)
    }

    /// Adds the background exporter.
    pub fn with_exporter(mut self, exporter: Arc<Exporter>) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// Adds the background label minter.
    pub fn with_minter(mut self, minter: Arc<Minter>) -> Self {
        self.minter = Some(minter);
        self
    }
}

/// Splits a public URL or bare host into its scheme (`https` unless `http://` is written) and host.
pub fn public_url(url: &str) -> (&'static str, &str) {
    let url = url.trim().trim_end_matches('/');
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") {
        ("http", &url[7..])
    } else if lower.starts_with("https://") {
        ("https", &url[8..])
    } else {
        ("https", url)
    }
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn a_bare_public_host_is_https() {
        assert_eq!(
            public_url("trace.example.cn"),
            ("https", "trace.example.cn")
        );
        assert_eq!(public_url("HTTPS://t.cn/"), ("https", "t.cn"));
        assert_eq!(
            public_url("http://192.168.1.5:8080"),
            ("http", "192.168.1.5:8080")
        );
    }
}
