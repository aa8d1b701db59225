//! QR encoding of label codes: two segments, level M, smallest version, a chosen mask.
//!
//! Why not `QrCode::new(url)`: the label URL is `HTTPS://HOST/` followed by 169 digits. Written as
//! two explicit segments — the upper-case prefix in alphanumeric mode (5.5 bits per character) and
//! the digits in numeric mode (3⅓ bits per digit) — it fits QR version 6 at error-correction level M
//! (41 × 41 modules) for any host up to 40 characters, and version 5 (37 × 37) for hosts up to 8.
//! A byte-mode URL of the same text would need version 8. And the crate's default encoder
//! tries all 8 mask patterns and scores each, about 1 ms per code; with the lower-level API
//! ([`qrcode::bits::Bits`], [`qrcode::ec::construct_codewords`], [`qrcode::canvas::Canvas`] with
//! the function patterns drawn once and cloned, then `apply_mask` with one chosen pattern) it is a
//! few microseconds, which matters when a run mints 300,000 labels. Every mask pattern gives a valid
//! code; the choice only changes the penalty score, and [`MaskChoice::Best`] is kept for comparison.
//!
//! The result is a [`QrMatrix`] with the 4-module quiet zone included, and [`QrMatrix::to_bitmap`]
//! packs it into 1-bit rows for a PDF image.

use qrcode::bits::Bits;
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::{Color, EcLevel, Version};

use crate::code::{LabelCode, CODE_DIGITS};
use crate::Error;

/// Width of the quiet zone around the code, in modules (the QR standard's minimum).
pub const QUIET_ZONE: usize = 4;

/// Error-correction level of every label QR (M: about 15 % of codewords recoverable).
pub const EC_LEVEL: EcLevel = EcLevel::M;

/// Which mask pattern to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskChoice {
    /// Always this pattern (0–7, as numbered in ISO/IEC 18004). Fast.
    Pattern(u8),
    /// Score all 8 patterns and keep the best, as the crate's default encoder does. About 50× slower.
    Best,
}

impl Default for MaskChoice {
    /// Pattern 4 (large checkerboard): on label codes it is the pattern the full search picks most
    /// often (84 of 400 sample codes; pattern 0 only 19), so it is usually the best or close to it.
    fn default() -> Self {
        MaskChoice::Pattern(4)
    }
}

/// Encodes label codes for one host into QR module matrices.
///
/// Everything that is the same for every code of a run — the prefix, the version, the function
/// patterns — is prepared once here.
#[derive(Clone)]
pub struct QrEncoder {
    prefix: String,
    version: Version,
    template: Canvas,
    mask: MaskChoice,
}

impl std::fmt::Debug for QrEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrEncoder")
            .field("prefix", &self.prefix)
            .field("version", &self.version())
            .field("mask", &self.mask)
            .finish()
    }
}

impl QrEncoder {
    /// Prepares an encoder for `host` (e.g. `trace.example.cn` or `example.cn:8443`).
    ///
    /// The host may only hold letters, digits, `.`, `-` and `:` (a port); it is upper-cased so the
    /// prefix stays in alphanumeric mode. Internationalised names must be given in their `xn--` form.
    pub fn new(host: &str, mask: MaskChoice) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidHost {
            host: host.to_owned(),
            reason,
        };
        if host.is_empty() {
            return Err(invalid("it is empty"));
        }
        if host.len() > 253 {
            return Err(invalid("it is longer than 253 characters"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return Err(invalid(
                "only letters, digits, '.', '-' and ':' are allowed (use the xn-- form for IDN)",
            ));
        }
        if let MaskChoice::Pattern(p) = mask {
            if p > 7 {
                return Err(Error::Qr(format!("mask pattern {p} is not in 0..=7")));
            }
        }
        let prefix = format!("HTTPS://{}/", host.to_ascii_uppercase());
        let zeros = [b'0'; CODE_DIGITS];
        let version = (1..=40)
            .map(Version::Normal)
            .find(|v| segments(*v, prefix.as_bytes(), &zeros).is_ok())
            .ok_or_else(|| Error::Qr(format!("host {host:?} is too long for any QR version")))?;
        let mut template = Canvas::new(version, EC_LEVEL);
        template.draw_all_functional_patterns();
        Ok(Self {
            prefix,
            version,
            template,
            mask,
        })
    }

    /// The QR version every code of this host gets (1–40).
    pub fn version(&self) -> u8 {
        match self.version {
            Version::Normal(v) | Version::Micro(v) => v as u8,
        }
    }

    /// Modules per side including the quiet zone.
    pub fn size(&self) -> usize {
        self.version.width() as usize + 2 * QUIET_ZONE
    }

    /// The text the QR code carries: `HTTPS://HOST/<169 digits>`.
    pub fn content(&self, code: &LabelCode) -> String {
        format!("{}{}", self.prefix, code.digits())
    }

    /// The upper-case prefix `HTTPS://HOST/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Encodes one code.
    pub fn encode(&self, code: &LabelCode) -> Result<QrMatrix, Error> {
        let bits = segments(
            self.version,
            self.prefix.as_bytes(),
            code.digits().as_bytes(),
        )?;
        let data = bits.into_bytes();
        let (data, ec) = qrcode::ec::construct_codewords(&data, self.version, EC_LEVEL)
            .map_err(|e| Error::Qr(e.to_string()))?;
        let mut canvas = self.template.clone();
        canvas.draw_data(&data, &ec);
        let canvas = match self.mask {
            MaskChoice::Pattern(p) => {
                canvas.apply_mask(mask_pattern(p));
                canvas
            }
            MaskChoice::Best => canvas.apply_best_mask(),
        };
        let colors = canvas.into_colors();
        let inner = self.version.width() as usize;
        let size = inner + 2 * QUIET_ZONE;
        let mut dark = vec![false; size * size];
        for (i, c) in colors.iter().enumerate() {
            let (x, y) = (i % inner, i / inner);
            dark[(y + QUIET_ZONE) * size + x + QUIET_ZONE] = *c == Color::Dark;
        }
        Ok(QrMatrix {
            version: self.version(),
            size,
            dark,
        })
    }
}

/// The two segments and the terminator, or an error if they do not fit `version` at level M.
fn segments(version: Version, prefix: &[u8], digits: &[u8]) -> Result<Bits, Error> {
    let mut bits = Bits::new(version);
    let qr = |e: qrcode::types::QrError| Error::Qr(e.to_string());
    bits.push_alphanumeric_data(prefix).map_err(qr)?;
    bits.push_numeric_data(digits).map_err(qr)?;
    bits.push_terminator(EC_LEVEL).map_err(qr)?;
    Ok(bits)
}

fn mask_pattern(p: u8) -> MaskPattern {
    match p {
        0 => MaskPattern::Checkerboard,
        1 => MaskPattern::HorizontalLines,
        2 => MaskPattern::VerticalLines,
        3 => MaskPattern::DiagonalLines,
        4 => MaskPattern::LargeCheckerboard,
        5 => MaskPattern::Fields,
        6 => MaskPattern::Diamonds,
        _ => MaskPattern::Meadow,
    }
}

/// A QR code as a square of modules, quiet zone included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    version: u8,
    size: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// The QR version (1–40).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Modules per side, quiet zone included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the module at column `x`, row `y` (from the top-left, quiet zone included) is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.size && y < self.size && self.dark[y * self.size + x]
    }

    /// Packs the matrix into a 1-bit bitmap, `pixels_per_module` pixels per module side.
    ///
    /// Rows are top to bottom, pixels most significant bit first, each row padded to a whole byte.
    /// A **0 bit is black** (a dark module) and a 1 bit is white, which is what a PDF image with
    /// `/ColorSpace /DeviceGray /BitsPerComponent 1` and the default `/Decode [0 1]` means, so the
    /// bytes go into the PDF unchanged. `pixels_per_module` 1 is what the PDF uses (the page scales
    /// the image; `/Interpolate false` keeps the edges sharp), larger values are for raster output.
    pub fn to_bitmap(&self, pixels_per_module: usize) -> Bitmap {
        self.pack(pixels_per_module, 0)
    }

    /// Like [`QrMatrix::to_bitmap`] at one pixel per module, but without the quiet zone.
    ///
    /// This is what goes into the PDF: the quiet zone is kept blank by the layout instead, which
    /// saves about 100 bytes per label (a third of the image) in a run of 300,000.
    pub fn code_bitmap(&self) -> Bitmap {
        self.pack(1, QUIET_ZONE)
    }

    fn pack(&self, pixels_per_module: usize, crop: usize) -> Bitmap {
        let ppm = pixels_per_module.max(1);
        let modules = self.size - 2 * crop;
        let width = modules * ppm;
        let stride = width.div_ceil(8);
        let mut data = Vec::with_capacity(stride * width);
        for y in 0..width {
            let start = (y / ppm + crop) * self.size + crop;
            let dark_row = &self.dark[start..start + modules];
            // Light pixels are 1 bits; the padding at the end of the row is light too.
            let mut byte = 0u8;
            for x in 0..stride * 8 {
                let light = x >= width || !dark_row[x / ppm];
                byte = (byte << 1) | u8::from(light);
                if x % 8 == 7 {
                    data.push(byte);
                    byte = 0;
                }
            }
        }
        Bitmap {
            width,
            height: width,
            stride,
            data,
        }
    }
}

/// A 1-bit image: rows top to bottom, MSB first, rows padded to bytes, **0 = black, 1 = white**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes per row.
    pub stride: usize,
    /// `stride * height` bytes.
    pub data: Vec<u8>,
}

impl Bitmap {
    /// Whether pixel (`x`, `y`) is black.
    pub fn is_black(&self, x: usize, y: usize) -> bool {
        self.data[y * self.stride + x / 8] & (0x80 >> (x % 8)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::verify;
    use crate::serial::{KeyId, LabelSerial};
    use crate::sign::tests::test_key;
    use crate::Verdict;

    fn code(seq: u64) -> LabelCode {
        let key = test_key(5, 5);
        LabelCode::mint(&key, LabelSerial::new(KeyId::new(5).unwrap(), seq).unwrap()).unwrap()
    }

    fn decode(bitmap: &Bitmap) -> String {
        let mut img =
            rqrr::PreparedImage::prepare_from_greyscale(bitmap.width, bitmap.height, |x, y| {
                if bitmap.is_black(x, y) {
                    0
                } else {
                    255
                }
            });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code expected");
        let (_, content) = grids[0].decode().unwrap();
        content
    }

    #[test]
    fn hosts_up_to_20_characters_give_version_at_most_6() {
        for host in [
            "a.cn",
            "trace.example.cn",
            "suyuan.huaning.gov.c",
            "12345678901234567890",
        ] {
            let enc = QrEncoder::new(host, MaskChoice::default()).unwrap();
            assert!(enc.version() <= 6, "{host}: version {}", enc.version());
            assert_eq!(enc.encode(&code(1)).unwrap().version(), enc.version());
        }
        // The arithmetic in the module docs: 591 bits of headers and digits, 11 bits per two
        // prefix characters; version 5-M holds 688 data bits, version 6-M 864.
        let version = |host: &str| {
            QrEncoder::new(host, MaskChoice::default())
                .unwrap()
                .version()
        };
        assert_eq!(version("abcd.cnx"), 5);
        assert_eq!(version("abcde.cnx"), 6);
        assert_eq!(version(&"a".repeat(40)), 6);
        assert_eq!(version(&"a".repeat(41)), 7);
    }

    #[test]
    fn round_trip_through_an_independent_decoder() {
        let key = test_key(5, 5);
        let keys: crate::VerifyingKeySet = [key.verifying_key()].into_iter().collect();
        for (host, mask) in [
            ("trace.example.cn", MaskChoice::Pattern(0)),
            ("Example.CN:8443", MaskChoice::Pattern(3)),
            ("x.cn", MaskChoice::Best),
        ] {
            let enc = QrEncoder::new(host, mask).unwrap();
            let c = code(424_242);
            let matrix = enc.encode(&c).unwrap();
            assert_eq!(matrix.size(), enc.size());
            let content = decode(&matrix.to_bitmap(4));
            assert_eq!(content, enc.content(&c));
            assert!(content.starts_with(&format!("HTTPS://{}/", host.to_ascii_uppercase())));
            assert!(matches!(verify(&content, &keys), Verdict::Genuine { .. }));
        }
    }

    #[test]
    fn every_mask_pattern_decodes() {
        for p in 0..8 {
            let enc = QrEncoder::new("trace.example.cn", MaskChoice::Pattern(p)).unwrap();
            let c = code(u64::from(p));
            assert_eq!(
                decode(&enc.encode(&c).unwrap().to_bitmap(3)),
                enc.content(&c)
            );
        }
        assert!(QrEncoder::new("a.cn", MaskChoice::Pattern(8)).is_err());
    }

    #[test]
    fn the_default_mask_decodes_across_many_codes() {
        // A fixed mask skips the penalty search, so check it on a spread of codes, not one.
        let enc = QrEncoder::new("trace.huaning.cn", MaskChoice::default()).unwrap();
        for seq in (0..300u64).map(|i| i * 33_333_331) {
            let c = code(seq);
            assert_eq!(
                decode(&enc.encode(&c).unwrap().to_bitmap(2)),
                enc.content(&c),
                "{seq}"
            );
        }
    }

    #[test]
    fn bitmap_packing_is_msb_first_zero_black_with_quiet_zone() {
        let enc = QrEncoder::new("a.cn", MaskChoice::default()).unwrap();
        let m = enc.encode(&code(7)).unwrap();
        let bmp = m.to_bitmap(1);
        assert_eq!(bmp.width, m.size());
        assert_eq!(bmp.stride, m.size().div_ceil(8));
        // Quiet zone rows are all white (all 1 bits).
        assert!(bmp.data[..bmp.stride * QUIET_ZONE]
            .iter()
            .all(|b| *b == 0xff));
        // The finder pattern's top-left corner module is dark: pixel (4, 4) of the bitmap.
        assert!(m.is_dark(QUIET_ZONE, QUIET_ZONE));
        assert!(bmp.is_black(QUIET_ZONE, QUIET_ZONE));
        assert_eq!(
            bmp.data[QUIET_ZONE * bmp.stride] & 0x08,
            0,
            "bit 4 of the row, MSB first"
        );
        assert!(!bmp.is_black(QUIET_ZONE - 1, QUIET_ZONE));
        let code = m.code_bitmap();
        assert_eq!(code.width, m.size() - 2 * QUIET_ZONE);
        for y in 0..code.height {
            for x in 0..code.width {
                assert_eq!(
                    code.is_black(x, y),
                    m.is_dark(x + QUIET_ZONE, y + QUIET_ZONE)
                );
            }
        }
        let big = m.to_bitmap(4);
        assert_eq!(big.width, m.size() * 4);
        for y in 0..big.height {
            for x in 0..big.width {
                assert_eq!(big.is_black(x, y), m.is_dark(x / 4, y / 4));
            }
        }
    }

    #[test]
    fn bad_hosts_are_refused() {
        for host in ["", "a b.cn", "ex_ample.cn", "例子.cn", "a.cn/path"] {
            assert!(
                matches!(
                    QrEncoder::new(host, MaskChoice::default()),
                    Err(Error::InvalidHost { .. })
                ),
                "{host}"
            );
        }
    }
}
