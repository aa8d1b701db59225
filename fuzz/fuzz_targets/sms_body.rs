//! The SMS webhook's body, JSON or form as the provider posts it, and the short code read from its
//! text: `InboundSms` and `SmsQuery::read` (server/src/scans/sms.rs, compiled here by path so that
//! the fuzz build does not need the whole server).
//!
//! Asserts: a code found is 13 digits that stand in the text in that order with only spaces and
//! dashes between them; a short code written in any of the ways people write it (plain, grouped
//! 4-4-5, with dashes) after a text that holds no code of its own is found; the English reply is
//! chosen only for ASCII text.
#![no_main]

#[path = "../../server/src/scans/sms.rs"]
#[expect(
    dead_code,
    reason = "the server's module: the fuzz target reads some of it"
)]
mod sms;

use libfuzzer_sys::fuzz_target;
use sms::{short_code_in, InboundSms, SmsQuery};
use suyuan_label_gen::{KeyId, LabelSerial};

fn check(text: &str, data: &[u8]) {
    let query = SmsQuery::read(text);
    if query.lang_en {
        assert!(text.is_ascii());
    }
    if let Some(code) = &query.code {
        assert_eq!(code.len(), 13);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let squeezed: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
        assert!(squeezed.contains(code.as_str()), "{code} in {text:?}");
    }
    if query.code.is_none() {
        let mut sequence = [0u8; 8];
        for (slot, b) in sequence.iter_mut().zip(data) {
            *slot = *b;
        }
        let id = KeyId::new(u32::from(data.len() as u8 % 100)).expect("id below 100");
        let sequence = u64::from_le_bytes(sequence) % 10_000_000_000;
        let serial = LabelSerial::new(id, sequence).expect("sequence in range");
        let plain = serial.to_string();
        for written in [
            plain.clone(),
            serial.grouped(),
            serial.grouped().replace(' ', "-"),
        ] {
            let message = format!("{text}，查询{written}。");
            assert_eq!(
                short_code_in(&message).as_deref(),
                Some(plain.as_str()),
                "{message:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(sms) = serde_json::from_slice::<InboundSms>(data) {
        check(&sms.text, data);
    }
    if let Ok(sms) = serde_urlencoded::from_bytes::<InboundSms>(data) {
        check(&sms.text, data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check(text, data);
    }
});
