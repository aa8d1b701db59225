//! The CJK font of a run: found (configured or searched for), checked (TrueType outlines, Chinese
//! glyphs), loaded once and shared by every file; and the glyphs that text becomes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;

/// The environment setting that names the CJK font file (a `.ttf` or `.ttc` with TrueType outlines).
pub const FONT_SETTING: &str = "SUYUAN_LABEL_FONT";

/// Where the system font search looks, in order (Debian packages in brackets).
pub const SYSTEM_FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", // fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",   // fonts-wqy-zenhei
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", // fonts-droid-fallback
    "/usr/share/fonts/truetype/arphic/uming.ttc",     // fonts-arphic-uming
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc", // Fedora, Arch
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
];

/// A character every usable CJK font must have (溯, as in 溯源).
const CJK_PROBE: char = '溯';

/// A CJK TrueType font, loaded once and shared by every file of a run.
#[derive(Clone)]
pub struct LabelFont {
    pub(super) path: PathBuf,
    pub(super) bytes: Arc<Vec<u8>>,
    metrics: FontMetrics,
}

impl std::fmt::Debug for LabelFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelFont")
            .field("path", &self.path)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A character's glyph in the font and its advance width in em.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Glyph {
    pub(super) ch: char,
    pub(super) id: u16,
    pub(super) advance: f32,
}

/// Glyph ids as a PDF string for an Identity-H font: two big-endian bytes per glyph.
pub(super) fn glyph_bytes(glyphs: &[Glyph]) -> Vec<u8> {
    glyphs.iter().flat_map(|g| g.id.to_be_bytes()).collect()
}

#[derive(Debug, Clone)]
struct FontMetrics {
    units_per_em: f32,
    ascender: f32,
    digit_height: f32,
}

impl LabelFont {
    /// The configured font if `configured` is given (the value of [`FONT_SETTING`]), else the
    /// first usable font of [`SYSTEM_FONT_CANDIDATES`].
    ///
    /// A configured font that cannot be used is an error (never silently replaced); no font at all
    /// is [`Error::FontNotFound`], whose message names the setting.
    pub fn load(configured: Option<&Path>) -> Result<Self, Error> {
        if let Some(path) = configured {
            return Self::from_path(path, FONT_SETTING);
        }
        let mut tried = Vec::new();
        for candidate in SYSTEM_FONT_CANDIDATES {
            let path = Path::new(candidate);
            if !path.exists() {
                tried.push(format!("{candidate} (missing)"));
                continue;
            }
            match Self::from_path(path, "system search") {
                Ok(font) => return Ok(font),
                Err(e) => tried.push(format!("{candidate} ({e})")),
            }
        }
        Err(Error::FontNotFound {
            setting: FONT_SETTING,
            searched: tried.join("; "),
        })
    }

    /// Loads and checks one font file: TrueType outlines, a CJK glyph, face 0 of a collection.
    pub fn from_path(path: &Path, setting: &'static str) -> Result<Self, Error> {
        let unusable = |reason: String| Error::FontUnusable {
            path: path.to_owned(),
            setting,
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
        let metrics = {
            let face = ttf_parser::Face::parse(&bytes, 0)
                .map_err(|e| unusable(format!("not a TrueType/OpenType font ({e})")))?;
            if face.tables().glyf.is_none() {
                return Err(unusable(
                    "it has CFF outlines; printpdf 0.7 embeds TrueType outlines only \
                     (use e.g. wqy-microhei.ttc)"
                        .into(),
                ));
            }
            if face.glyph_index(CJK_PROBE).is_none() {
                return Err(unusable(format!(
                    "it has no Chinese glyphs (no {CJK_PROBE})"
                )));
            }
            let digit_height = face
                .glyph_index('0')
                .and_then(|gid| face.glyph_bounding_box(gid))
                .map_or(f32::from(face.ascender()), |bbox| f32::from(bbox.y_max));
            FontMetrics {
                units_per_em: f32::from(face.units_per_em()),
                ascender: f32::from(face.ascender()),
                digit_height,
            }
        };
        Ok(Self {
            path: path.to_owned(),
            bytes: Arc::new(bytes),
            metrics,
        })
    }

    /// The font file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Glyph id and advance width (in em) of each character of `text`; fails on a character
    /// without a glyph (it would print as an empty box, or not at all).
    pub(super) fn shape(&self, text: &str) -> Result<Vec<Glyph>, Error> {
        let face = ttf_parser::Face::parse(&self.bytes, 0)
            .map_err(|e| Error::Pdf(format!("font reparse failed: {e}")))?;
        text.chars()
            .map(|ch| {
                let gid = face.glyph_index(ch).ok_or_else(|| Error::MissingGlyph {
                    path: self.path.clone(),
                    ch,
                    text: text.to_owned(),
                })?;
                Ok(Glyph {
                    ch,
                    id: gid.0,
                    advance: f32::from(face.glyph_hor_advance(gid).unwrap_or(0))
                        / self.metrics.units_per_em,
                })
            })
            .collect()
    }

    pub(super) fn ascender_em(&self) -> f32 {
        self.metrics.ascender / self.metrics.units_per_em
    }

    pub(super) fn digit_height_em(&self) -> f32 {
        self.metrics.digit_height / self.metrics.units_per_em
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyph_ids_are_written_as_two_big_endian_bytes() {
        let glyph = |ch, id| Glyph {
            ch,
            id,
            advance: 1.0,
        };
        assert_eq!(
            glyph_bytes(&[glyph('溯', 0x1234), glyph('0', 5)]),
            [0x12, 0x34, 0x00, 0x05]
        );
        assert!(glyph_bytes(&[]).is_empty());
    }

    #[test]
    fn shaping_gives_each_character_its_glyph_and_advance() {
        let font = crate::pdf::fixtures::font();
        let glyphs = font.shape("溯0 ").unwrap();
        assert_eq!(glyphs.iter().map(|g| g.ch).collect::<String>(), "溯0 ");
        assert!(glyphs.iter().all(|g| g.advance > 0.0 && g.advance <= 1.5));
        // A CJK character is a full em wide; a digit narrower.
        assert!(glyphs[0].advance > glyphs[1].advance, "{glyphs:?}");
        assert!(matches!(
            font.shape("a\u{10FFFD}"),
            Err(Error::MissingGlyph {
                ch: '\u{10FFFD}',
                ..
            })
        ));
    }

    #[test]
    fn missing_font_names_the_setting() {
        let err = LabelFont::load(Some(Path::new("/nonexistent/font.ttf"))).unwrap_err();
        assert!(err.to_string().contains(FONT_SETTING), "{err}");
        let err = Error::FontNotFound {
            setting: FONT_SETTING,
            searched: String::new(),
        };
        assert!(err.to_string().contains("SUYUAN_LABEL_FONT"));
    }

    #[test]
    fn a_file_that_is_not_a_font_is_refused_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-font.ttf");
        std::fs::write(&path, b"this is not a font").unwrap();
        let err = LabelFont::load(Some(&path)).unwrap_err();
        assert!(matches!(err, Error::FontUnusable { .. }), "{err}");
        assert!(err.to_string().contains(FONT_SETTING), "{err}");
        assert!(
            err.to_string().contains("not a TrueType/OpenType font"),
            "{err}"
        );
    }
}
