//! The 13-digit short code a person types at a kiosk or on the scan page: `LabelSerial::parse`
//! (label-gen/src/serial.rs; the server's lookup and the SMS webhook hand it the typed text).
//!
//! Asserts: a parsed serial is exactly the input's digits once spaces and hyphens are dropped; it
//! parses back from its plain and grouped forms; and its ISO 7064 check digit refuses every single
//! mistyped digit. Any key id and sequence, printed and parsed, gives the same serial.
#![no_main]

use libfuzzer_sys::fuzz_target;
use suyuan_label_gen::serial::MAX_SEQUENCE;
use suyuan_label_gen::{KeyId, LabelSerial, SerialError};

fn round_trips(serial: LabelSerial) {
    let plain = serial.to_string();
    assert_eq!(plain.len(), 13);
    assert_eq!(LabelSerial::parse(&plain), Ok(serial));
    assert_eq!(LabelSerial::parse(&serial.grouped()), Ok(serial));
    assert_eq!(LabelSerial::parse(&plain.replace("", "-")), Ok(serial));
    assert_eq!(format!("{serial:#}"), serial.grouped());
    assert_eq!(
        LabelSerial::new(serial.key_id(), serial.sequence()),
        Ok(serial)
    );
    let digits = serial.to_digits();
    for position in 0..digits.len() {
        for typo in b'0'..=b'9' {
            if typo != digits[position] {
                let mut typed = digits;
                typed[position] = typo;
                assert_eq!(
                    LabelSerial::from_digits(&typed),
                    Err(SerialError::BadCheckDigit),
                    "{plain} with digit {position} mistyped as {}",
                    char::from(typo)
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(serial) = LabelSerial::parse(text) {
            let typed: String = text
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            assert_eq!(typed, serial.to_string());
            round_trips(serial);
        }
    }
    if let Some(head) = data.first_chunk::<9>() {
        let id = KeyId::new(u32::from(head[0] % 100)).expect("id below 100");
        let mut sequence = [0u8; 8];
        sequence.copy_from_slice(&head[1..]);
        let sequence = u64::from_le_bytes(sequence) % (MAX_SEQUENCE + 1);
        round_trips(LabelSerial::new(id, sequence).expect("sequence in range"));
    }
});
