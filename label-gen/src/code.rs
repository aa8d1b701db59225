//! The label code: serial and signature written as digits in a URL, and its verification.
//!
//! A phone camera (also inside WeChat) opens the QR content as a URL, so the content is
//! `https://<host>/<13 serial digits><156 signature digits>`. Digits because a QR code's numeric
//! mode packs 3 digits into 10 bits, the densest honest way to carry 64 signature bytes: the
//! signature is written as 9 chunks of 7 bytes, each a big-endian number below 2^56 < 10^17 written
//! as 17 zero-padded digits, then the last byte as 3 digits (9 × 17 + 3 = 156 digits).
//!
//! Parsing is strict about the digits, so that every signature has exactly one spelling: a chunk
//! whose value is 2^56 or more (or a last byte of 256 or more) is malformed rather than reduced.
//! It is lenient about what a phone or a person adds around them: any letter case in the scheme and
//! host (the QR itself carries `HTTPS://HOST/` in upper case to stay in alphanumeric mode), `http`
//! as well as `https`, a bare path or bare digits, and a query string or fragment (WeChat appends
//! them when a link is shared).

use std::fmt;

use crate::serial::{KeyId, LabelSerial, SerialError, SERIAL_DIGITS};
use crate::sign::{
    LabelSignature, LabelSigningKey, SignatureCheck, VerifyingKeySet, SIGNATURE_BYTES,
};
use crate::Error;

/// Digits of the signature part.
pub const SIGNATURE_DIGITS: usize = 156;

/// Digits of the whole code (the URL path).
pub const CODE_DIGITS: usize = SERIAL_DIGITS + SIGNATURE_DIGITS;

const CHUNK_BYTES: usize = 7;
const CHUNK_DIGITS: usize = 17;
const FULL_CHUNKS: usize = SIGNATURE_BYTES / CHUNK_BYTES; // 9
const LAST_DIGITS: usize = 3;

/// Why a scanned or typed text is not a label code. Shown to people, so each says what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Nothing but whitespace.
    #[error("the code is empty")]
    Empty,
    /// A URL with a scheme other than http or https.
    #[error("the link is not an http(s) link")]
    BadScheme,
    /// A URL without a host.
    #[error("the link has no host")]
    NoHost,
    /// The path is not 169 characters long.
    #[error("a code has {CODE_DIGITS} digits, found {found}")]
    WrongLength {
        /// Characters found in the path.
        found: usize,
    },
    /// A character in the path is not a digit.
    #[error("character {position} of the code is not a digit")]
    NotADigit {
        /// Zero-based position in the digits.
        position: usize,
    },
    /// The serial part is not a valid serial (e.g. its check digit fails).
    #[error("the serial is not valid: {0}")]
    Serial(SerialError),
    /// A signature chunk is out of range (not a spelling this encoder ever produces).
    #[error("signature chunk {chunk} is out of range")]
    ChunkOutOfRange {
        /// Zero-based chunk index (0–9; 9 is the last single byte).
        chunk: usize,
    },
}

/// The authenticity verdict for a code, before any database lookup (state, batch, scans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the key the serial names.
    Genuine {
        /// The label's serial.
        serial: LabelSerial,
        /// The key that signed it.
        key_id: KeyId,
    },
    /// Well-formed, names a known key, but the signature is wrong: counterfeit or edited.
    InvalidSignature {
        /// The serial the code claims (not authentic).
        serial: LabelSerial,
    },
    /// Well-formed, but no public key with that id is known.
    UnknownKey {
        /// The serial the code claims (not authentic).
        serial: LabelSerial,
        /// The key id it names.
        key_id: KeyId,
    },
    /// Not a label code at all.
    Malformed(Malformed),
}

/// A label's code: its serial and the signature over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelCode {
    serial: LabelSerial,
    signature: LabelSignature,
}

impl LabelCode {
    /// Pairs a serial with its signature (unchecked; see [`verify`]).
    pub fn new(serial: LabelSerial, signature: LabelSignature) -> Self {
        Self { serial, signature }
    }

    /// Signs `serial` with `key` and returns its code.
    pub fn mint(key: &LabelSigningKey, serial: LabelSerial) -> Result<Self, Error> {
        Ok(Self::new(serial, key.sign(serial)?))
    }

    /// The serial.
    pub fn serial(&self) -> LabelSerial {
        self.serial
    }

    /// The signature.
    pub fn signature(&self) -> &LabelSignature {
        &self.signature
    }

    /// The 169 ASCII digits of the URL path.
    pub fn digits(&self) -> CodeDigits {
        let mut out = [b'0'; CODE_DIGITS];
        out[..SERIAL_DIGITS].copy_from_slice(&self.serial.to_digits());
        let sig = self.signature.as_bytes();
        let mut pos = SERIAL_DIGITS;
        for chunk in sig.chunks_exact(CHUNK_BYTES) {
            let value = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            write_padded(&mut out[pos..pos + CHUNK_DIGITS], value);
            pos += CHUNK_DIGITS;
        }
        write_padded(
            &mut out[pos..pos + LAST_DIGITS],
            u64::from(sig[SIGNATURE_BYTES - 1]),
        );
        CodeDigits(out)
    }

    /// The URL a phone opens: `https://<host>/<digits>` (lower-case scheme; host as given).
    pub fn to_url(&self, host: &str) -> String {
        format!("https://{host}/{}", self.digits())
    }

    /// Parses a full URL (any letter case in scheme and host), a path `/<digits>` or bare digits.
    pub fn parse(input: &str) -> Result<Self, Malformed> {
        Self::from_digits(code_path(input)?.as_bytes())
    }

    /// Parses exactly the 169 ASCII digits.
    pub fn from_digits(digits: &[u8]) -> Result<Self, Malformed> {
        if digits.len() != CODE_DIGITS {
            return Err(Malformed::WrongLength {
                found: digits.len(),
            });
        }
        if let Some(position) = digits.iter().position(|b| !b.is_ascii_digit()) {
            return Err(Malformed::NotADigit { position });
        }
        let serial =
            LabelSerial::from_digits(&digits[..SERIAL_DIGITS]).map_err(Malformed::Serial)?;
        let mut sig = [0u8; SIGNATURE_BYTES];
        let mut pos = SERIAL_DIGITS;
        for chunk in 0..FULL_CHUNKS {
            let value = read_number(&digits[pos..pos + CHUNK_DIGITS]);
            if value >= 1 << (8 * CHUNK_BYTES) {
                return Err(Malformed::ChunkOutOfRange { chunk });
            }
            let bytes = value.to_be_bytes();
            sig[chunk * CHUNK_BYTES..(chunk + 1) * CHUNK_BYTES].copy_from_slice(&bytes[1..]);
            pos += CHUNK_DIGITS;
        }
        let last = read_number(&digits[pos..pos + LAST_DIGITS]);
        sig[SIGNATURE_BYTES - 1] =
            u8::try_from(last).map_err(|_| Malformed::ChunkOutOfRange { chunk: FULL_CHUNKS })?;
        Ok(Self::new(serial, LabelSignature::from_bytes(sig)))
    }
}

/// The 169 ASCII digits of a code; `Display` and [`CodeDigits::as_str`] give them as text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CodeDigits([u8; CODE_DIGITS]);

impl CodeDigits {
    /// The digits as bytes.
    pub fn as_bytes(&self) -> &[u8; CODE_DIGITS] {
        &self.0
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written into the array.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for CodeDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CodeDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeDigits({})", self.as_str())
    }
}

/// Verifies a scanned or typed code (URL, path or digits) against the trusted public keys.
pub fn verify(input: &str, keys: &VerifyingKeySet) -> Verdict {
    match LabelCode::parse(input) {
        Ok(code) => verify_code(&code, keys),
        Err(reason) => Verdict::Malformed(reason),
    }
}

/// Verifies a parsed code against the trusted public keys.
pub fn verify_code(code: &LabelCode, keys: &VerifyingKeySet) -> Verdict {
    let serial = code.serial;
    match keys.check(serial, &code.signature) {
        SignatureCheck::Valid => Verdict::Genuine {
            serial,
            key_id: serial.key_id(),
        },
        SignatureCheck::Invalid => Verdict::InvalidSignature { serial },
        SignatureCheck::UnknownKey => Verdict::UnknownKey {
            serial,
            key_id: serial.key_id(),
        },
    }
}

/// Extracts the code path from a URL, a path or bare digits (query and fragment dropped).
fn code_path(input: &str) -> Result<&str, Malformed> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Malformed::Empty);
    }
    let rest = if let Some(colon) = input.find("://") {
        let scheme = &input[..colon];
        if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
            return Err(Malformed::BadScheme);
        }
        let after = &input[colon + 3..];
        let host_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        if host_end == 0 {
            return Err(Malformed::NoHost);
        }
        &after[host_end..]
    } else {
        input
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    Ok(&rest[..end])
}

fn write_padded(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn read_number(digits: &[u8]) -> u64 {
    // At most 17 digits: below 10^17 < 2^64, no overflow.
    digits
        .iter()
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::tests::test_key;
    use crate::sign::LabelVerifyingKey;

    fn serial(id: u32, seq: u64) -> LabelSerial {
        LabelSerial::new(KeyId::new(id).unwrap(), seq).unwrap()
    }

    fn keys_for(keys: &[&LabelSigningKey]) -> VerifyingKeySet {
        keys.iter().map(|k| k.verifying_key()).collect()
    }

    #[test]
    fn digits_layout_and_round_trip() {
        let key = test_key(1, 1);
        let code = LabelCode::mint(&key, serial(1, 123)).unwrap();
        let digits = code.digits();
        assert_eq!(digits.as_str().len(), 169);
        assert!(digits.as_str().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(&digits.as_str()[..13], code.serial().to_string());
        assert_eq!(LabelCode::from_digits(digits.as_bytes()), Ok(code));
        // Extreme signature values survive the chunking.
        for fill in [0u8, 0xff] {
            let c = LabelCode::new(
                serial(1, 1),
                LabelSignature::from_bytes([fill; SIGNATURE_BYTES]),
            );
            assert_eq!(LabelCode::from_digits(c.digits().as_bytes()), Ok(c));
        }
        let max = LabelCode::new(serial(1, 1), LabelSignature::from_bytes([0xff; 64]));
        let d = max.digits();
        assert_eq!(&d.as_str()[13..30], "72057594037927935"); // 2^56 - 1
        assert_eq!(&d.as_str()[166..], "255");
    }

    #[test]
    fn parses_url_in_any_case_path_and_digits() {
        let key = test_key(2, 2);
        let keys = keys_for(&[&key]);
        let code = LabelCode::mint(&key, serial(2, 9_999)).unwrap();
        let d = code.digits().to_string();
        let genuine = Verdict::Genuine {
            serial: code.serial(),
            key_id: KeyId::new(2).unwrap(),
        };
        for input in [
            code.to_url("trace.example.cn"),
            format!("HTTPS://TRACE.EXAMPLE.CN/{d}"),
            format!("HtTpS://Trace.Example.CN:8443/{d}"),
            format!("http://trace.example.cn/{d}?from=singlemessage#x"),
            format!("/{d}"),
            d.clone(),
            format!("  {d}\n"),
        ] {
            assert_eq!(verify(&input, &keys), genuine, "{input}");
        }
    }

    #[test]
    fn forgeries_get_their_verdicts() {
        let key = test_key(1, 1);
        let other = test_key(1, 99); // same id, different secret
        let leaked_test_key = test_key(98, 7); // a test key that leaked
        let keys = keys_for(&[&key]);
        let code = LabelCode::mint(&key, serial(1, 500)).unwrap();
        let d = code.digits().to_string();

        // One digit changed anywhere: never genuine.
        for pos in 0..CODE_DIGITS {
            let mut bytes = d.clone().into_bytes();
            bytes[pos] = if bytes[pos] == b'9' {
                b'0'
            } else {
                bytes[pos] + 1
            };
            let changed = String::from_utf8(bytes).unwrap();
            let verdict = verify(&changed, &keys);
            match verdict {
                Verdict::Malformed(Malformed::Serial(SerialError::BadCheckDigit)) => {
                    assert!(pos < SERIAL_DIGITS)
                }
                Verdict::InvalidSignature { .. }
                | Verdict::Malformed(Malformed::ChunkOutOfRange { .. }) => {
                    assert!(pos >= SERIAL_DIGITS)
                }
                other => panic!("position {pos}: {other:?}"),
            }
        }

        // A signature from another key with the same id.
        let forged = LabelCode::mint(&other, serial(1, 500)).unwrap();
        assert_eq!(
            verify(&forged.to_url("h.cn"), &keys),
            Verdict::InvalidSignature {
                serial: serial(1, 500)
            }
        );

        // A serial never minted, signed with a leaked test key: under the production id it is
        // invalid, under the test key's own id it is unknown to production verifiers.
        let sig = leaked_test_key.sign(serial(98, 1)).unwrap();
        let as_production = LabelCode::new(serial(1, 1), sig);
        assert_eq!(
            verify(&as_production.to_url("h.cn"), &keys),
            Verdict::InvalidSignature {
                serial: serial(1, 1)
            }
        );
        let as_itself = LabelCode::mint(&leaked_test_key, serial(98, 1)).unwrap();
        assert_eq!(
            verify(&as_itself.to_url("h.cn"), &keys),
            Verdict::UnknownKey {
                serial: serial(98, 1),
                key_id: KeyId::new(98).unwrap()
            }
        );
        // If a verifier wrongly trusted the leaked key under the production id, its signatures
        // still fail: the key id is inside the signed message.
        let mut confused = VerifyingKeySet::new();
        confused.insert(
            LabelVerifyingKey::from_bytes(
                KeyId::new(1).unwrap(),
                &leaked_test_key.verifying_key().to_bytes(),
            )
            .unwrap(),
        );
        assert_eq!(
            verify_code(&as_production, &confused),
            Verdict::InvalidSignature {
                serial: serial(1, 1)
            }
        );

        // Truncated, extended, garbage.
        assert_eq!(
            verify(&d[..168], &keys),
            Verdict::Malformed(Malformed::WrongLength { found: 168 })
        );
        assert_eq!(
            verify(&format!("{d}0"), &keys),
            Verdict::Malformed(Malformed::WrongLength { found: 170 })
        );
        assert_eq!(verify("", &keys), Verdict::Malformed(Malformed::Empty));
        assert_eq!(
            verify("ftp://h.cn/123", &keys),
            Verdict::Malformed(Malformed::BadScheme)
        );
        assert_eq!(
            verify("https:///123", &keys),
            Verdict::Malformed(Malformed::NoHost)
        );
        let mut letters = d.clone().into_bytes();
        letters[100] = b'a';
        assert_eq!(
            verify(std::str::from_utf8(&letters).unwrap(), &keys),
            Verdict::Malformed(Malformed::NotADigit { position: 100 })
        );
        for garbage in [
            "hello",
            "https://h.cn/",
            "💥💥💥",
            "https://h.cn/../../etc/passwd",
        ] {
            assert!(
                matches!(verify(garbage, &keys), Verdict::Malformed(_)),
                "{garbage}"
            );
        }
        let long_garbage = "9".repeat(169);
        assert!(matches!(
            verify(&long_garbage, &keys),
            Verdict::Malformed(_)
        ));
    }

    #[test]
    fn non_canonical_chunks_are_malformed() {
        let key = test_key(1, 1);
        let code = LabelCode::mint(&key, serial(1, 1)).unwrap();
        let d = code.digits().to_string();
        // Chunk 0 set to 2^56 (one above the largest 7-byte value).
        let bumped = format!("{}{}{}", &d[..13], "72057594037927936", &d[30..]);
        assert_eq!(
            LabelCode::parse(&bumped),
            Err(Malformed::ChunkOutOfRange { chunk: 0 })
        );
        let last = format!("{}256", &d[..166]);
        assert_eq!(
            LabelCode::parse(&last),
            Err(Malformed::ChunkOutOfRange { chunk: 9 })
        );
    }
}
