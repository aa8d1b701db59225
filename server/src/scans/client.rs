//! Who scanned, without knowing who: a salted hash of the client, and a coarse region.
//!
//! The hash (SHA-256 over a deployment-wide random salt and the client's network address) tells devices
//! apart for the "too many devices" rule and is useless to anyone without the salt. The address itself is
//! only used for the region and is never stored.
//!
//! What counts as one device: an IPv4 address, or an IPv6 /64 (the part of an IPv6 address a phone
//! changes on its own, privacy addresses, stays inside its /64). The browser's `User-Agent` is left out:
//! it is whatever the client sends, so one phone switching browsers (or WeChat updating, or a script
//! changing it at will) would otherwise count as many devices and open a false "copied label" alert. The
//! cost is the other way round: phones behind one address (a household's Wi-Fi, a carrier's NAT) count as
//! one device, so a copied label scanned only inside one network is not flagged by this rule — a copy
//! sold elsewhere is, since it is scanned from other networks.

use std::net::IpAddr;

use actix_web::HttpRequest;
use sha2::{Digest, Sha256};
use suyuan_core::model::{RegionSource, ScanRegion};
use suyuan_core::region::{self, IpRegions};

/// The client's address: the peer, or what a trusted proxy says of it (`SUYUAN_TRUSTED_PROXIES`, the same
/// rule as login throttling: see [`crate::extract::client_address`]). Devices are counted by address, so an
/// `X-Forwarded-For` believed from anyone would let one client pass for many.
pub fn client_ip(req: &HttpRequest, proxies: &crate::extract::TrustedProxies) -> Option<IpAddr> {
    crate::extract::client_address(req, proxies)
}

/// The salted hash of a client: its network address (or, for SMS, its number).
pub fn client_hash(salt: &str, who: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(who.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The hash of an HTTP client: its IPv4 address or IPv6 /64, not its browser (see the module doc).
pub fn request_hash(salt: &str, ip: Option<IpAddr>) -> String {
    client_hash(salt, &crate::extract::client_key(ip))
}

/// The region of an address in the IP-to-region database (ip2region's unless the operator installed
/// another, none when turned off), with that database as its source. A location the phone shares later
/// replaces it (`POST /api/v1/scans/location`).
pub fn ip_region(regions: Option<&IpRegions>, ip: Option<IpAddr>) -> Option<ScanRegion> {
    let regions = regions?;
    let code = regions.lookup(ip?)?;
    let (latitude, longitude) = region::division(code)?.point()?;
    Some(ScanRegion {
        division_code: code.to_owned(),
        source: regions.source(),
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
    fn the_hash_depends_on_salt_and_network_and_hides_them() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let a = request_hash("salt", ip("203.0.113.7"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, request_hash("other", ip("203.0.113.7")));
        assert_ne!(a, request_hash("salt", ip("203.0.113.8")));
        assert!(!a.contains("203"));
        // A phone's IPv6 privacy addresses change inside its /64: one device.
        assert_eq!(
            request_hash("salt", ip("2001:db8:5:6:1111::1")),
            request_hash("salt", ip("2001:db8:5:6:2222::9"))
        );
        assert_ne!(
            request_hash("salt", ip("2001:db8:5:6::1")),
            request_hash("salt", ip("2001:db8:5:7::1"))
        );
    }

    #[test]
    fn an_address_s_region_comes_from_the_built_in_ip2region_database() {
        let db = IpRegions::ip2region().unwrap();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // 114.114.114.114 is `中国|0|江苏省|南京市|0` in the data.
        let r = ip_region(Some(&db), ip("114.114.114.114")).unwrap();
        assert_eq!(r.division_code, "320100");
        assert_eq!(r.source, RegionSource::Ip2region);
        let (lat, lon) = region::division("320100").unwrap().point().unwrap();
        assert_eq!((r.latitude, r.longitude), (lat, lon));
        assert!(ip_region(Some(&db), ip("127.0.0.1")).is_none());
        assert!(ip_region(Some(&db), ip("8.8.8.8")).is_none());
        assert!(ip_region(Some(&db), None).is_none());
        assert!(ip_region(None, ip("114.114.114.114")).is_none());
    }

    #[test]
    fn an_operator_s_database_is_the_ip_source() {
        let db = IpRegions::from_reader("1.0.0.0,1.0.0.255,530102\n".as_bytes(), "ip.csv").unwrap();
        let r = ip_region(Some(&db), Some("1.0.0.9".parse().unwrap())).unwrap();
        assert_eq!(
            (r.division_code.as_str(), r.source),
            ("530102", RegionSource::Ip)
        );
    }

    #[test]
    fn a_shared_location_is_rounded_before_it_is_kept() {
        let r = location_region(25.04321, 102.70987).expect("Kunming is in the gazetteer");
        assert_eq!((r.latitude, r.longitude), (25.0, 102.7));
        assert!(r.division_code.starts_with("5301"), "{r:?}");
        assert!(location_region(f64::NAN, 1.0).is_none());
    }
}
