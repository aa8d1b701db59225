//! Who scanned, without knowing who: a salted hash of the client, and a coarse region.
//!
//! The hash (SHA-256 over a deployment-wide random salt, the client's address and its browser) tells
//! devices apart for the "too many devices" rule and is useless to anyone without the salt. The address
//! itself is only used for the region and is never stored.

use std::net::IpAddr;

use actix_web::HttpRequest;
use sha2::{Digest, Sha256};
use suyuan_core::model::{RegionSource, ScanRegion};
use suyuan_core::region::{self, IpRegions};

/// The client's address: the peer, or the first `X-Forwarded-For` entry when the server is configured to
/// trust its proxy.
pub fn client_ip(req: &HttpRequest, trust_forwarded: bool) -> Option<IpAddr> {
    if trust_forwarded {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// The salted hash of a client: its address (or, for SMS, its number) and its browser.
pub fn client_hash(salt: &str, who: &str, agent: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(who.as_bytes());
    h.update([0]);
    h.update(agent.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The hash of an HTTP client.
pub fn request_hash(req: &HttpRequest, salt: &str, ip: Option<IpAddr>) -> String {
    let agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    client_hash(
        salt,
        &ip.map(|ip| ip.to_string()).unwrap_or_default(),
        agent,
    )
}

/// The region of an address, from the IP-to-region database when one is installed.
pub fn ip_region(regions: Option<&IpRegions>, ip: Option<IpAddr>) -> Option<ScanRegion> {
    let code = regions?.lookup(ip?)?;
    let (latitude, longitude) = region::division(code)?.point()?;
    Some(ScanRegion {
        division_code: code.to_owned(),
        source: RegionSource::Ip,
        latitude,
        longitude,
    })
}

/// The region of a phone's shared location: rounded to about 10 km first, then the nearest county.
pub fn location_region(latitude: f64, longitude: f64) -> Option<ScanRegion> {
    let (latitude, longitude) = region::coarse_location(latitude, longitude)?;
    let division = region::nearest(latitude, longitude)?;
    Some(ScanRegion {
        division_code: division.code().to_owned(),
        source: RegionSource::Location,
        latitude,
        longitude,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_salt_address_and_browser_and_hides_them() {
        let a = client_hash("salt", "203.0.113.7", "Mozilla");
        assert_eq!(a.len(), 32);
        assert_ne!(a, client_hash("other", "203.0.113.7", "Mozilla"));
        assert_ne!(a, client_hash("salt", "203.0.113.8", "Mozilla"));
        assert_ne!(a, client_hash("salt", "203.0.113.7", "WeChat"));
        assert!(!a.contains("203"));
    }

    #[test]
    fn a_shared_location_is_rounded_before_it_is_kept() {
        let r = location_region(25.04321, 102.70987).expect("Kunming is in the gazetteer");
        assert_eq!((r.latitude, r.longitude), (25.0, 102.7));
        assert!(r.division_code.starts_with("5301"), "{r:?}");
        assert!(location_region(f64::NAN, 1.0).is_none());
    }
}
