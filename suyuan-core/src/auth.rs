//! Passwords and tokens.
//!
//! Passwords are stored as argon2id PHC strings. Session cookies and API tokens are 256-bit random values
//! shown to their owner once; only their SHA-256 is stored, so a copy of the database does not let anyone
//! log in.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::RngCore;

use crate::chain::sha256_hex;
use crate::error::{CoreError, CoreResult};

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
}

/// Checks a password against its stored hash; a malformed stored hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// PBKDF2 rounds of a device password hash. Device passwords are random 256-bit tokens, which no
/// number of rounds makes easier or harder to guess; the rounds only need to be what Mosquitto
/// accepts (it reads any count; `mosquitto_passwd` writes 101).
pub const DEVICE_HASH_ITERATIONS: u32 = 1_000;

/// Hashes a device's broker password in Mosquitto 2's PBKDF2-SHA512 form
/// `$7${iterations}${base64 salt}${base64 hash}`, so that a Mosquitto password file can be written
/// from the registry without knowing any password (`suyuan mqtt-auth`).
pub fn hash_device_password(password: &str) -> String {
    use base64::Engine as _;
    let mut salt = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut salt);
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(
        password.as_bytes(),
        &salt,
        DEVICE_HASH_ITERATIONS,
        &mut out,
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "$7${DEVICE_HASH_ITERATIONS}${}${}",
        b64.encode(salt),
        b64.encode(out)
    )
}

/// Whether a stored device hash is in the form Mosquitto reads (older devices have argon2 hashes:
/// they keep working on the embedded broker, and need new credentials for a Mosquitto file).
pub fn is_mosquitto_hash(stored: &str) -> bool {
    parse_pbkdf2(stored).is_some()
}

fn parse_pbkdf2(stored: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    use base64::Engine as _;
    let rest = stored.strip_prefix("$7$")?;
    let mut parts = rest.split('$');
    let (iterations, salt, hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let iterations: u32 = iterations
        .parse()
        .ok()
        .filter(|&n| (1..=10_000_000).contains(&n))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt = b64.decode(salt).ok()?;
    let hash = b64.decode(hash).ok()?;
    (!salt.is_empty() && hash.len() == 64).then_some((iterations, salt, hash))
}

/// Checks a device's broker password against its stored hash: the PBKDF2 form of
/// [`hash_device_password`], or an older argon2 hash. A malformed hash never matches.
pub fn verify_device_password(password: &str, stored: &str) -> bool {
    if !stored.starts_with("$7$") {
        return verify_password(password, stored);
    }
    let Some((iterations, salt, hash)) = parse_pbkdf2(stored) else {
        return false;
    };
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), &salt, iterations, &mut out);
    // Constant time: every byte compared.
    out.iter().zip(&hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A fresh random token (64 hex characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What is stored for a token.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The kinds of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A browser session (cookie), expires after [`SESSION_TTL_MS`].
    Session,
    /// A bearer token for integrations, valid until revoked.
    Api,
}

impl TokenKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }
}

/// Sessions last 12 hours.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// Failed logins are counted in windows of this length (from a counter's first failure); a refusal lasts
/// until its counter's window ends. See `store::users::login` for the scheme.
pub const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures of one user name from one client before that client is refused for that name.
pub const MAX_FAILURES_PER_NAME_AND_CLIENT: i64 = 5;
/// Failures from one client, whatever the names, before the client is refused for every name (password
/// spraying from one address).
pub const MAX_FAILURES_PER_CLIENT: i64 = 30;
/// Failures of one user name, from all clients together, after which the name is "under attack": a client
/// that has already failed on it is refused, a client that has not may still try.
pub const MAX_FAILURES_PER_NAME: i64 = 10;

/// What an unknown user name's password is checked against, so that a login for a name that does not exist
/// costs the same argon2 work as one that does (same algorithm and parameters as [`hash_password`]; a unit
/// test keeps them equal).
pub const DUMMY_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Z0pbU3v3sdKzXcxUN6fq1T3mGJfmXNEYqyl0TFDhGc";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").expect("hash");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let real = hash_password("whatever").expect("hash");
        let params = |h: &str| {
            let parsed = PasswordHash::new(h).expect("parse");
            (
                parsed.algorithm.to_string(),
                parsed.version,
                parsed.params.to_string(),
                parsed.hash.map(|o| o.len()),
            )
        };
        assert_eq!(params(DUMMY_PASSWORD_HASH), params(&real));
        assert!(!verify_password("whatever", DUMMY_PASSWORD_HASH));
    }

    #[test]
    fn device_passwords_in_mosquittos_form() {
        let h = hash_device_password("s3cret");
        assert!(h.starts_with("$7$1000$"), "{h}");
        assert!(is_mosquitto_hash(&h));
        assert!(verify_device_password("s3cret", &h));
        assert!(!verify_device_password("s3cre", &h));
        // A hash written by `mosquitto_passwd -b f user s3cret` (Mosquitto 2.0).
        let theirs = "$7$101$opjMgXZEXdqF9+D+$NrFvYFUBooXKn49HaI/qj0ipPlOK8KznKweJC6oGh41WAoDakvt8by2iGckoM30i2Vl6dbT5DMWz8fHhA7f8tQ==";
        assert!(is_mosquitto_hash(theirs));
        assert!(verify_device_password("s3cret", theirs));
        assert!(!verify_device_password("s3cre", theirs));
        // Older argon2 hashes still verify, and are not Mosquitto's.
        let old = hash_password("s3cret").expect("hash");
        assert!(verify_device_password("s3cret", &old));
        assert!(!is_mosquitto_hash(&old));
        assert!(!verify_device_password("s3cret", "$7$101$$"));
    }
}
