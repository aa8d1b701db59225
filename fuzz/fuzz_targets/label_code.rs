//! Label URLs and codes as a phone camera, WeChat or a person hands them over: `LabelCode::parse`
//! and `verify` (label-gen/src/code.rs), which the scan page, the kiosk and `suyuan verify` call.
//!
//! Asserts: a parse failure is exactly the `Malformed` verdict; a parsed code is spelled by digits
//! that are in the input and parses back from every form a label is printed or shared in (URL in
//! either letter case, with WeChat's query, bare digits); a genuine code stops being genuine when
//! one bit of its signature changes; and any serial and signature rendered as digits parse back.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use suyuan_label_gen::{
    verify, verify_code, KeyId, LabelCode, LabelSerial, LabelSignature, LabelSigningKey, Verdict,
    VerifyingKeySet,
};

/// The key the seed corpus's genuine codes are signed with (id 1, a fixed secret).
fn key() -> &'static LabelSigningKey {
    static KEY: OnceLock<LabelSigningKey> = OnceLock::new();
    KEY.get_or_init(|| LabelSigningKey::from_secret_bytes(KeyId::new(1).expect("key id"), &[7; 32]))
}

fn keys() -> &'static VerifyingKeySet {
    static KEYS: OnceLock<VerifyingKeySet> = OnceLock::new();
    KEYS.get_or_init(|| [key().verifying_key()].into_iter().collect())
}

fn round_trips(code: LabelCode) {
    let digits = code.digits();
    assert_eq!(LabelCode::from_digits(digits.as_bytes()), Ok(code));
    assert_eq!(LabelCode::parse(digits.as_str()), Ok(code));
    let url = code.to_url("trace.example.cn");
    assert_eq!(LabelCode::parse(&url), Ok(code));
    // The QR carries `HTTPS://HOST/` in upper case (alphanumeric mode).
    assert_eq!(LabelCode::parse(&url.to_ascii_uppercase()), Ok(code));
    let shared = format!("{url}?from=singlemessage&isappinstalled=0#wechat_redirect");
    assert_eq!(LabelCode::parse(&shared), Ok(code));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        let verdict = verify(input, keys());
        match LabelCode::parse(input) {
            Err(reason) => assert_eq!(verdict, Verdict::Malformed(reason)),
            Ok(code) => {
                assert!(input.contains(code.digits().as_str()));
                round_trips(code);
                let serial = code.serial();
                match verdict {
                    Verdict::Genuine { serial: s, key_id } => {
                        assert_eq!((s, key_id), (serial, KeyId::new(1).expect("id")));
                        let mut bytes = code.signature().to_bytes();
                        bytes[usize::from(data[0]) % bytes.len()] ^= 1 << (data.len() % 8);
                        let edited = LabelCode::new(serial, LabelSignature::from_bytes(bytes));
                        assert_eq!(
                            verify_code(&edited, keys()),
                            Verdict::InvalidSignature { serial }
                        );
                    }
                    Verdict::InvalidSignature { serial: s } => {
                        assert_eq!(s, serial);
                        assert_eq!(serial.key_id().get(), 1);
                    }
                    Verdict::UnknownKey { serial: s, key_id } => {
                        assert_eq!((s, key_id), (serial, serial.key_id()));
                        assert_ne!(key_id.get(), 1);
                    }
                    Verdict::Malformed(reason) => panic!("parsed, yet malformed: {reason}"),
                }
            }
        }
    }

    // The bytes as a serial and a signature: every one has a spelling that parses back to it.
    if let Some((head, sig)) = data.split_first_chunk::<10>() {
        let id = KeyId::new(u32::from(head[0] % 100)).expect("id below 100");
        let sequence = u64::from_le_bytes([head[1], head[2], head[3], head[4], head[5], 0, 0, 0]);
        if let Ok(serial) = LabelSerial::new(id, sequence) {
            let mut bytes = [0u8; 64];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = sig.get(i).copied().unwrap_or(head[6 + i % 4]);
            }
            round_trips(LabelCode::new(serial, LabelSignature::from_bytes(bytes)));
            let minted = LabelCode::mint(key(), serial);
            if id.get() == 1 {
                let minted = minted.expect("a serial under key 1 is signed");
                round_trips(minted);
                let genuine = Verdict::Genuine { serial, key_id: id };
                assert_eq!(verify(&minted.to_url("t.cn"), keys()), genuine);
            }
        }
    }
});
