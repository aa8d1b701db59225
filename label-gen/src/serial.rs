//! Label serials: the short decimal code printed under every QR code.
//!
//! A serial is what a person reads, types at a kiosk or sends by SMS, so it is short, decimal only
//! and protected by a check digit that catches every single mistyped digit. It also carries the id
//! of the signing key, so that a verifier knows which public key to use without any lookup and so
//! that keys can be rotated while old labels stay verifiable.
//!
//! Layout (13 decimal digits):
//!
//! ```text
//!   K K  S S S S S S S S S S  C
//!   ---  -------------------  -
//!   key  sequence number      check digit, ISO 7064 MOD 11,10 over the 12 digits before it
//!   id   (0 ..= 9 999 999 999)
//! ```
//!
//! ## The check digit: ISO 7064 MOD 11,10
//!
//! ISO/IEC 7064 defines "hybrid" systems that work with a modulus M and M+1 so that the check
//! character is from the same alphabet as the data (here: a decimal digit, unlike MOD 11-2 which
//! needs an `X`). For MOD 11,10, starting with `P = 10`, each digit `d` (left to right) updates:
//!
//! ```text
//!   S = (P + d) mod 10, with 0 replaced by 10
//!   P = (2 * S) mod 11
//! ```
//!
//! and the check digit `c` is the one that makes `(P + c) mod 10 == 1`, i.e. `c = (11 - P) mod 10`.
//! It detects every single-digit substitution and most adjacent transpositions. It is the system used
//! by the Croatian OIB and the German tax id, and ISO 7064's own example is `0794` → check digit `5`.
//!
//! The serial is printed grouped 4-4-5 (`1234 5678 90123`) for reading and plain for machines.

use std::fmt;
use std::str::FromStr;

/// Number of digits in a serial, check digit included.
pub const SERIAL_DIGITS: usize = 13;

/// The largest sequence number a serial can carry (10 digits).
pub const MAX_SEQUENCE: u64 = 9_999_999_999;

/// Why a text is not a valid serial (or key id / sequence is out of range).
///
/// The variants say what a person got wrong, so the message can be shown to whoever typed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    /// The serial does not have exactly 13 digits (spaces and hyphens not counted).
    #[error("a serial has {expected} digits, found {found}")]
    WrongLength {
        /// Digits expected.
        expected: usize,
        /// Digits (or characters) found.
        found: usize,
    },
    /// A character that is not a decimal digit.
    #[error("character {position} of the serial is not a digit")]
    NotADigit {
        /// Zero-based position among the characters that are not separators.
        position: usize,
    },
    /// The check digit does not match: at least one digit was mistyped.
    #[error("the check digit does not match (a digit is mistyped)")]
    BadCheckDigit,
    /// Key ids have two decimal digits.
    #[error("key id {0} is out of range 0..=99")]
    KeyIdOutOfRange(u32),
    /// Sequence numbers have ten decimal digits.
    #[error("sequence number {0} is out of range 0..=9999999999")]
    SequenceOutOfRange(u64),
}

/// Id of a signing key, `00`–`99`, carried in the first two digits of every serial.
///
/// Keys have ids so that verification can pick the right public key and so that a key can be
/// rotated (a new id for new labels) while labels signed by older keys keep verifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u8);

impl KeyId {
    /// The largest key id.
    pub const MAX: u8 = 99;

    /// A key id, if `id` is at most 99.
    pub fn new(id: u32) -> Result<Self, SerialError> {
        u8::try_from(id)
            .ok()
            .filter(|id| *id <= Self::MAX)
            .map(KeyId)
            .ok_or(SerialError::KeyIdOutOfRange(id))
    }

    /// The numeric value (0–99).
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for KeyId {
    /// Two digits, as in the serial.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// A label's serial number: key id, sequence number and check digit.
///
/// `Display` prints the 13 plain digits; the alternate form (`{:#}`) and [`LabelSerial::grouped`]
/// print the grouped form for people. Parsing ([`FromStr`]) accepts both and ignores spaces and
/// hyphens, since that is how people type it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSerial {
    key_id: KeyId,
    sequence: u64,
}

impl LabelSerial {
    /// The serial for `sequence` under signing key `key_id`.
    pub fn new(key_id: KeyId, sequence: u64) -> Result<Self, SerialError> {
        if sequence > MAX_SEQUENCE {
            return Err(SerialError::SequenceOutOfRange(sequence));
        }
        Ok(Self { key_id, sequence })
    }

    /// The id of the key that signs (and verifies) this label.
    pub fn key_id(self) -> KeyId {
        self.key_id
    }

    /// The sequence number under the key id.
    pub fn sequence(self) -> u64 {
        self.sequence
    }

    /// The check digit (0–9).
    pub fn check_digit(self) -> u8 {
        let digits = self.to_digits();
        // The 12 body digits are ASCII digits by construction.
        mod11_10_check_digit(&digits[..SERIAL_DIGITS - 1]).unwrap_or(0)
    }

    /// The next serial under the same key, if the sequence has room.
    pub fn next(self) -> Option<Self> {
        Self::new(self.key_id, self.sequence.checked_add(1)?).ok()
    }

    /// The 13 ASCII digits, check digit last: the form that is signed and put into the QR code.
    pub fn to_digits(self) -> [u8; SERIAL_DIGITS] {
        let mut out = [b'0'; SERIAL_DIGITS];
        out[0] = b'0' + self.key_id.0 / 10;
        out[1] = b'0' + self.key_id.0 % 10;
        let mut seq = self.sequence;
        for slot in out[2..12].iter_mut().rev() {
            *slot = b'0' + (seq % 10) as u8;
            seq /= 10;
        }
        let check = mod11_10_check_digit(&out[..12]).unwrap_or(0);
        out[12] = b'0' + check;
        out
    }

    /// The grouped form printed under the QR code: `1234 5678 90123` (4-4-5).
    pub fn grouped(self) -> String {
        let d = self.to_digits();
        let mut s = String::with_capacity(SERIAL_DIGITS + 2);
        for (i, b) in d.iter().enumerate() {
            if i == 4 || i == 8 {
                s.push(' ');
            }
            s.push(char::from(*b));
        }
        s
    }

    /// Parses exactly 13 ASCII digits (no separators) and validates the check digit.
    ///
    /// This is the strict form used inside a QR code URL.
    pub fn from_digits(digits: &[u8]) -> Result<Self, SerialError> {
        if digits.len() != SERIAL_DIGITS {
            return Err(SerialError::WrongLength {
                expected: SERIAL_DIGITS,
                found: digits.len(),
            });
        }
        if let Some(position) = digits.iter().position(|b| !b.is_ascii_digit()) {
            return Err(SerialError::NotADigit { position });
        }
        if !mod11_10_is_valid(digits) {
            return Err(SerialError::BadCheckDigit);
        }
        let key_id = KeyId((digits[0] - b'0') * 10 + (digits[1] - b'0'));
        let sequence = digits[2..12]
            .iter()
            .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
        Ok(Self { key_id, sequence })
    }

    /// Parses a serial as a person types it: spaces, tabs and hyphens are ignored.
    pub fn parse(text: &str) -> Result<Self, SerialError> {
        let mut digits = [0u8; SERIAL_DIGITS];
        let mut n = 0usize;
        for c in text.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            if !c.is_ascii_digit() {
                return Err(SerialError::NotADigit { position: n });
            }
            if n < SERIAL_DIGITS {
                digits[n] = c as u8;
            }
            n += 1;
        }
        if n != SERIAL_DIGITS {
            return Err(SerialError::WrongLength {
                expected: SERIAL_DIGITS,
                found: n,
            });
        }
        Self::from_digits(&digits)
    }
}

impl fmt::Display for LabelSerial {
    /// Plain 13 digits; `{:#}` gives the grouped form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(&self.grouped())
        } else {
            let d = self.to_digits();
            // ASCII digits are valid UTF-8.
            f.write_str(std::str::from_utf8(&d).map_err(|_| fmt::Error)?)
        }
    }
}

impl FromStr for LabelSerial {
    type Err = SerialError;

    /// Same as [`LabelSerial::parse`]: separators are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The ISO 7064 MOD 11,10 check digit (0–9) for ASCII decimal `digits`, or `None` if a byte is not
/// an ASCII digit.
pub fn mod11_10_check_digit(digits: &[u8]) -> Option<u8> {
    let p = mod11_10_state(digits)?;
    Some(((11 - p) % 10) as u8)
}

/// Whether ASCII decimal `digits` (check digit last) pass ISO 7064 MOD 11,10.
pub fn mod11_10_is_valid(digits: &[u8]) -> bool {
    match digits.split_last() {
        Some((last, body)) if last.is_ascii_digit() => match mod11_10_state(body) {
            Some(p) => (p + u32::from(last - b'0')) % 10 == 1,
            None => false,
        },
        _ => false,
    }
}

/// Runs the MOD 11,10 recurrence over `digits` and returns the final `P`.
fn mod11_10_state(digits: &[u8]) -> Option<u32> {
    let mut p: u32 = 10;
    for b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let mut s = (p + u32::from(b - b'0')) % 10;
        if s == 0 {
            s = 10;
        }
        p = (2 * s) % 11;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso7064_mod11_10_known_vectors() {
        // ISO 7064's own worked example.
        assert_eq!(mod11_10_check_digit(b"0794"), Some(5));
        assert!(mod11_10_is_valid(b"07945"));
        // Croatian OIB (ISO 7064 MOD 11,10), the example number published by the tax authority.
        assert_eq!(mod11_10_check_digit(b"6943515153"), Some(0));
        assert!(mod11_10_is_valid(b"69435151530"));
        // German tax identification number sample (MOD 11,10).
        assert!(mod11_10_is_valid(b"86095742719"));
        assert!(!mod11_10_is_valid(b"86095742718"));
        assert_eq!(mod11_10_check_digit(b"12a"), None);
        assert!(!mod11_10_is_valid(b""));
    }

    #[test]
    fn every_single_digit_error_is_detected() {
        let serial = LabelSerial::new(KeyId::new(7).unwrap(), 1_234_567_890).unwrap();
        let digits = serial.to_digits();
        for pos in 0..SERIAL_DIGITS {
            for d in b'0'..=b'9' {
                if d == digits[pos] {
                    continue;
                }
                let mut changed = digits;
                changed[pos] = d;
                assert_eq!(
                    LabelSerial::from_digits(&changed),
                    Err(SerialError::BadCheckDigit),
                    "position {pos} digit {}",
                    d as char
                );
            }
        }
    }

    #[test]
    fn layout_display_and_round_trip() {
        let serial = LabelSerial::new(KeyId::new(12).unwrap(), 3_456_789_012).unwrap();
        let plain = serial.to_string();
        assert_eq!(plain.len(), 13);
        assert!(plain.starts_with("123456789012"));
        assert_eq!(serial.grouped(), format!("{serial:#}"));
        assert_eq!(
            serial.grouped(),
            format!("{} {} {}", &plain[..4], &plain[4..8], &plain[8..])
        );
        assert_eq!(LabelSerial::parse(&plain), Ok(serial));
        assert_eq!(LabelSerial::parse(&serial.grouped()), Ok(serial));
        assert_eq!(
            format!("{}-{}-{}", &plain[..4], &plain[4..8], &plain[8..]).parse(),
            Ok(serial)
        );
        assert_eq!(serial.key_id().get(), 12);
        assert_eq!(serial.sequence(), 3_456_789_012);
        assert_eq!(
            u32::from(serial.check_digit()),
            u32::from(plain.as_bytes()[12] - b'0')
        );
    }

    #[test]
    fn zero_and_max_serials() {
        let zero = LabelSerial::new(KeyId::new(0).unwrap(), 0).unwrap();
        assert_eq!(&zero.to_string()[..12], "000000000000");
        assert_eq!(LabelSerial::parse(&zero.to_string()), Ok(zero));
        let max = LabelSerial::new(KeyId::new(99).unwrap(), MAX_SEQUENCE).unwrap();
        assert_eq!(&max.to_string()[..12], "999999999999");
        assert_eq!(LabelSerial::parse(&max.to_string()), Ok(max));
        assert_eq!(max.next(), None);
        assert_eq!(zero.next().map(LabelSerial::sequence), Some(1));
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!(KeyId::new(100), Err(SerialError::KeyIdOutOfRange(100)));
        assert_eq!(
            LabelSerial::new(KeyId::new(1).unwrap(), MAX_SEQUENCE + 1),
            Err(SerialError::SequenceOutOfRange(MAX_SEQUENCE + 1))
        );
        assert_eq!(
            LabelSerial::parse("1234 5678 9012"),
            Err(SerialError::WrongLength {
                expected: 13,
                found: 12
            })
        );
        assert_eq!(
            LabelSerial::parse("1234 5678 9012x"),
            Err(SerialError::NotADigit { position: 12 })
        );
        assert_eq!(
            LabelSerial::from_digits(b"12345678901 3"),
            Err(SerialError::NotADigit { position: 11 })
        );
        assert_eq!(
            LabelSerial::parse("１２３"),
            Err(SerialError::NotADigit { position: 0 })
        );
    }
}
