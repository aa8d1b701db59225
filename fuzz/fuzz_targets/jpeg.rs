//! A camera's JPEG: `check_jpeg` (iot-gateway/src/image.rs), the byte limit, the marker walk, the
//! pixel limit read from the header before decoding, and the decode; then `thumbnail_jpeg`. Small
//! limits, so that the fuzzer reaches each of them with small inputs.
//!
//! Asserts: an accepted image respects the byte and pixel limits, starts with the JPEG magic and is
//! named by the SHA-256 of its bytes; its thumbnail is a JPEG that passes the same checks and fits in
//! the thumbnail side; a payload over the byte limit is refused for its size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use suyuan_iot_gateway::{check_jpeg, sha256_hex, thumbnail_jpeg, ImageLimits, Reason};

fuzz_target!(|data: &[u8]| {
    let limits = ImageLimits {
        max_bytes: 16 * 1024,
        max_pixels: 128 * 128,
        thumb_max_side: 24,
        thumb_quality: 80,
    };
    match check_jpeg(data, &limits) {
        Ok(checked) => {
            assert!(data.len() <= limits.max_bytes);
            assert!(data.starts_with(&[0xFF, 0xD8, 0xFF]));
            assert_eq!(checked.sha256, sha256_hex(data));
            let (w, h) = (checked.image.width(), checked.image.height());
            assert!(w > 0 && h > 0);
            assert!(u64::from(w) * u64::from(h) <= limits.max_pixels, "{w}×{h}");
            let thumb = thumbnail_jpeg(&checked.image, &limits).expect("a thumbnail");
            let again = check_jpeg(&thumb, &limits).expect("our thumbnail passes our checks");
            let side = limits.thumb_max_side;
            assert!(again.image.width() <= side && again.image.height() <= side);
            assert!(again.image.width() <= w && again.image.height() <= h);
        }
        Err(refusal) => {
            if data.len() > limits.max_bytes {
                assert_eq!(refusal.reason, Reason::ImageTooLarge);
            }
        }
    }
});
