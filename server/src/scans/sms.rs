//! What an inbound SMS asks, read from its body as a pure function: no actix, no database, so that it
//! can be fuzzed on its own (`fuzz/fuzz_targets/sms_body.rs` compiles this file by path).
//!
//! The body is JSON or a form with `from` and `text` (`mobile`/`content` are accepted too, as several
//! Chinese SMS gateways name them). The text is expected to hold the 13-digit short code printed under
//! the QR code, with spaces and dashes allowed inside it.

use serde::Deserialize;

/// Digits of a short code (the label serial).
pub const SHORT_CODE_DIGITS: usize = 13;

/// An inbound message, as the SMS provider posts it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InboundSms {
    #[serde(alias = "mobile")]
    pub from: String,
    #[serde(alias = "content")]
    pub text: String,
}

/// What a message's text asks for, and in which language to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsQuery {
    /// The first 13-digit run, separators removed ([`short_code_in`]).
    pub code: Option<String>,
    /// Answer in English: the text is ASCII and holds a letter (a Chinese phone sends Chinese).
    pub lang_en: bool,
}

impl SmsQuery {
    /// Reads a message's text.
    pub fn read(text: &str) -> SmsQuery {
        SmsQuery {
            code: short_code_in(text),
            lang_en: text.is_ascii() && text.chars().any(|c| c.is_ascii_alphabetic()),
        }
    }
}

/// The first 13-digit run in a message, ignoring spaces and dashes inside it.
pub fn short_code_in(text: &str) -> Option<String> {
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            if digits.len() == SHORT_CODE_DIGITS {
                return Some(digits);
            }
        } else if !(c == ' ' || c == '-') || digits.is_empty() {
            digits.clear();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::short_code_in;

    #[test]
    fn finds_the_code_in_a_message() {
        assert_eq!(
            short_code_in("查询 1234 5678 90123 谢谢").as_deref(),
            Some("1234567890123")
        );
        assert_eq!(
            short_code_in("1234-5678-90123").as_deref(),
            Some("1234567890123")
        );
        assert_eq!(
            short_code_in("电话 138 我的码1234567890123").as_deref(),
            Some("1234567890123")
        );
        assert_eq!(short_code_in("12345"), None);
        assert_eq!(short_code_in("你好"), None);
    }
}
