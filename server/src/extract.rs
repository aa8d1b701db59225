//! Who is calling: a bearer token (`Authorization: Bearer …`) for integrations or the session cookie for
//! pages. Every handler that needs a caller takes [`Caller`]; access itself is decided in
//! `suyuan_core::policy`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use suyuan_core::model::Actor;
use suyuan_core::store::users;
use suyuan_core::CoreError;

use crate::error::ApiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "suyuan_session";

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Actor);

fn token_of(req: &HttpRequest) -> Option<String> {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let h = h.to_str().ok()?;
        let (scheme, token) = h.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let token = token_of(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
                ApiError::Core(CoreError::Unauthenticated(
                    "log in, or send an API token as Authorization: Bearer".into(),
                ))
            })?;
            let state = state.ok_or_else(|| {
                ApiError::Core(CoreError::Internal("no application state".into()))
            })?;
            let actor =
                web::block(move || state.db.read(|c| users::actor_for_token(c, &token))).await??;
            Ok(Caller(actor))
        })
    }
}

/// Runs blocking database work off the async threads.
pub async fn blocking<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&suyuan_core::Database) -> suyuan_core::CoreResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    let db = state.db.clone();
    Ok(web::block(move || f(&db)).await??)
}

/// Proxies whose `X-Forwarded-For` is believed (`SUYUAN_TRUSTED_PROXIES`: addresses or CIDR ranges,
/// comma-separated). From any other peer the header is ignored, since anyone can send it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.1, 10.1.0.0/16, ::1`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("not an address or CIDR range: {item}"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("bad prefix length in {item}"))?,
                None => max,
            };
            ranges.push((addr, bits));
        }
        Ok(TrustedProxies(ranges))
    }

    /// Whether `ip` is one of the proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|&(net, bits)| match (canonical(net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    prefix(u128::from(u32::from(n)), bits, 32)
                        == prefix(u128::from(u32::from(a)), bits, 32)
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    prefix(u128::from(n), bits, 128) == prefix(u128::from(a), bits, 128)
                }
                _ => false,
            })
    }

    /// Whether no proxy is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The top `bits` of a `width`-bit number.
fn prefix(value: u128, bits: u8, width: u8) -> u128 {
    let drop = u32::from(width.saturating_sub(bits));
    value.checked_shr(drop).unwrap_or(0)
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The caller's address: the peer, or — when the peer is a trusted proxy — the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy (entries left of it were written by the client
/// and prove nothing).
pub fn client_address(req: &HttpRequest, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    if !proxies.contains(peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        match entry.trim().parse::<IpAddr>().map(canonical) {
            Ok(ip) if proxies.contains(ip) => continue,
            Ok(ip) => return Some(ip),
            Err(_) => break,
        }
    }
    Some(peer)
}

/// The client a login is counted against: an IPv4 address, or an IPv6 client by its /64 (one home or
/// phone; the rest of the address is the device's to change at will).
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_match_addresses_and_ranges() {
        let p = TrustedProxies::parse("10.1.0.0/16, 192.0.2.7, 2001:db8::/32").unwrap();
        assert!(p.contains("10.1.200.3".parse().unwrap()));
        assert!(!p.contains("10.2.0.1".parse().unwrap()));
        assert!(p.contains("192.0.2.7".parse().unwrap()));
        assert!(p.contains("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!p.contains("192.0.2.8".parse().unwrap()));
        assert!(p.contains("2001:db8:1::9".parse().unwrap()));
        assert!(!p.contains("2001:db9::1".parse().unwrap()));
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        assert_eq!(
            client_key(Some("203.0.113.9".parse().unwrap())),
            "203.0.113.9"
        );
        assert_eq!(
            client_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap())),
            client_key(Some("2001:db8:1:2:bbbb::2".parse().unwrap()))
        );
        assert_ne!(
            client_key(Some("2001:db8:1:2::1".parse().unwrap())),
            client_key(Some("2001:db8:1:3::1".parse().unwrap()))
        );
    }
}
