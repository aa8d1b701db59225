//! The geometry of one label, computed once per template and run: where the QR, its short code and
//! the template's text go in a cell, checked to fit, with the run's font subset and the template's
//! form made once for every file.

use std::collections::BTreeSet;
use std::sync::Arc;

use printpdf::lopdf::{Dictionary, Object, Stream};

use super::content::template_form;
use super::font::{Glyph, LabelFont};
use super::settings::{LabelTemplate, SheetOptions};
use super::sheet::{LabelSheet, FONT_FIRST_ID, TEMPLATE_ID};
use super::subset::SubsetFont;
use super::text::{place_column, Column, PlacedLine, TextSizes, Wrap};
use super::MM_PER_PT;
use crate::qr::QUIET_ZONE;
use crate::serial::LabelSerial;
use crate::Error;

/// The geometry of one label, computed once per template and shared by every file of a run.
///
/// All positions are relative to the top-left corner of a cell, in mm.
#[derive(Debug, Clone)]
pub struct LabelLayout {
    pub(super) options: SheetOptions,
    pub(super) qr_modules: usize,
    pub(super) qr_x: f32,
    pub(super) qr_y: f32,
    pub(super) qr_mm: f32,
    pub(super) code_size_pt: f32,
    pub(super) code_baseline: f32,
    /// Glyphs of `0`–`9` and space, for the short code (ids in the subset).
    pub(super) code_glyphs: Vec<Glyph>,
    /// The template's lines; drawing uses `template_form`, made from them.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the layout tests check where each line went")
    )]
    pub(super) lines: Vec<PlacedLine>,
    /// The font subset every file of the run embeds.
    pub(super) subset: Arc<SubsetFont>,
    /// The template's text as a form XObject in cell coordinates, compressed once per run.
    pub(super) template_form: Stream,
}

impl LabelLayout {
    /// Lays out `template` for QR codes of `qr_modules` modules per side (quiet zone included),
    /// checking that everything fits the cell; fails with [`Error::DoesNotFit`] rather than
    /// printing cut-off text.
    pub fn new(
        font: &LabelFont,
        options: &SheetOptions,
        template: &LabelTemplate,
        qr_modules: usize,
    ) -> Result<Self, Error> {
        options.layout.validate()?;
        options.print.validate()?;
        let layout = &options.layout;
        let (cell_w, cell_h) = layout.cell_size_mm();
        let pad = layout.cell_padding_mm;
        let module = options.print.module_mm();
        let qr_mm = qr_modules as f32 * module;
        let quiet_mm = QUIET_ZONE as f32 * module;
        let does_not_fit = |reason: String| Error::DoesNotFit {
            layout: layout.name.clone(),
            reason,
        };

        // Short code under the QR: as large as fits the QR's width, at most 8 pt, at least 5 pt.
        let code_glyphs: Vec<Glyph> = font.shape("0123456789 ")?;
        let widest = code_glyphs[..10]
            .iter()
            .map(|g| g.advance)
            .fold(0.0, f32::max);
        let code_em = 13.0 * widest + 2.0 * code_glyphs[10].advance;
        let code_size_pt = (qr_mm / (code_em * MM_PER_PT)).min(8.0);
        let code_size_mm = code_size_pt * MM_PER_PT;
        // Digits sit just below the image (its bottom quiet zone is the gap to the QR); they have
        // no descenders, so the baseline is the text's bottom.
        let code_height = 0.3 + font.digit_height_em() * code_size_mm;
        let used_h = pad + qr_mm + code_height + pad;
        if code_size_pt < 5.0 || used_h > cell_h + 1e-3 || 2.0 * pad + qr_mm > cell_w + 1e-3 {
            return Err(does_not_fit(format!(
                "the QR ({qr_mm:.1} mm with quiet zone) and the short code need {:.1} × {:.1} mm, \
                 the cell is {cell_w:.1} × {cell_h:.1} mm",
                qr_mm + 2.0 * pad,
                used_h
            )));
        }
        // The QR and its code are centred vertically in a cell taller than they need.
        let qr_y = pad + (cell_h - used_h) / 2.0;
        let code_baseline = qr_y + qr_mm + code_height;

        // Text column right of the QR: from the top of the QR's dark area down to the padding.
        let column = Column {
            x: pad + qr_mm + 0.5,
            width: cell_w - pad - (pad + qr_mm + 0.5),
            top: qr_y + quiet_mm,
            bottom: cell_h - pad,
        };
        // Largest text that fits: first with no line wrapped (down to 8 pt names and 6 pt fields),
        // then with only fields wrapped, then with anything wrapped (down to 6 pt and 5 pt).
        let mut lines = None;
        if column.width > 3.0 {
            let passes = [
                (Wrap::Nothing, 8.0, 6.0),
                (Wrap::FieldsOnly, 8.0, 5.0),
                (Wrap::Anything, 6.0, 5.0),
            ];
            'passes: for (wrap, name_min, field_min) in passes {
                for step in 0..=24 {
                    let scale = 1.0 - step as f32 * 0.025;
                    let sizes = TextSizes {
                        name_pt: (12.0 * scale).max(name_min),
                        field_pt: (8.0 * scale).max(field_min),
                        wrap,
                    };
                    if let Some(placed) = place_column(font, template, &sizes, &column)? {
                        lines = Some(placed);
                        break 'passes;
                    }
                }
            }
        } else if template.product_name.is_empty() && template.fields.is_empty() {
            lines = Some(Vec::new());
        }
        let lines = lines.ok_or_else(|| {
            does_not_fit(format!(
                "the product name and {} field(s) do not fit a {:.1} × {:.1} mm text column \
                 even at 6 pt / 5 pt; shorten them or choose a larger layout",
                template.fields.len(),
                column.width,
                column.bottom - column.top
            ))
        })?;

        // One font subset for the run: the short code's glyphs and the template's.
        let mut used: BTreeSet<u16> = code_glyphs.iter().map(|g| g.id).collect();
        for line in &lines {
            used.extend(
                line.glyphs
                    .chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]])),
            );
        }
        let subset = SubsetFont::new(font, &used, FONT_FIRST_ID)?;
        let mut code_glyphs = code_glyphs;
        for g in &mut code_glyphs {
            g.id = subset.glyph(g.id);
        }
        let mut lines = lines;
        for line in &mut lines {
            line.glyphs = subset.renumber_text(&line.glyphs);
        }
        let template_form = template_form(&lines, cell_w, cell_h, subset.font_id())?;

        Ok(Self {
            options: options.clone(),
            qr_modules,
            qr_x: pad,
            qr_y,
            qr_mm,
            code_size_pt,
            code_baseline,
            code_glyphs,
            lines,
            subset: Arc::new(subset),
            template_form,
        })
    }

    /// A resource dictionary: the font, the template and the given images as `/Q0`, `/Q1`, …
    pub(super) fn resources(&self, images: &[u32]) -> Dictionary {
        let mut xobjects = Dictionary::from_iter([("T", Object::Reference((TEMPLATE_ID, 0)))]);
        for (i, id) in images.iter().enumerate() {
            xobjects.set(format!("Q{i}"), Object::Reference((*id, 0)));
        }
        Dictionary::from_iter([
            (
                "Font",
                Object::Dictionary(Dictionary::from_iter([(
                    "F",
                    Object::Reference(self.subset.font_id()),
                )])),
            ),
            ("XObject", Object::Dictionary(xobjects)),
        ])
    }

    /// The options this layout was made for.
    pub fn options(&self) -> &SheetOptions {
        &self.options
    }

    /// Side of the QR image (quiet zone included) in mm.
    pub fn qr_size_mm(&self) -> f32 {
        self.qr_mm
    }

    /// Starts a new PDF file.
    pub fn start_sheet(&self) -> Result<LabelSheet<'_>, Error> {
        LabelSheet::new(self)
    }

    /// The short code's glyphs (as PDF string bytes) and its width in mm.
    pub(super) fn short_code(&self, serial: LabelSerial) -> (Vec<u8>, f32) {
        let grouped = serial.grouped();
        let mut bytes = Vec::with_capacity(grouped.len() * 2);
        let mut em = 0.0;
        for b in grouped.bytes() {
            let g = match b {
                b'0'..=b'9' => self.code_glyphs[usize::from(b - b'0')],
                _ => self.code_glyphs[10],
            };
            bytes.extend_from_slice(&g.id.to_be_bytes());
            em += g.advance;
        }
        (bytes, em * self.code_size_pt * MM_PER_PT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::fixtures::{font, template};
    use crate::pdf::{PageLayout, PrintSettings};

    #[test]
    fn presets_fit_a_version_6_code_with_the_sample_template() {
        let font = font();
        for layout in [
            PageLayout::a4_3x8(),
            PageLayout::a4_4x10(),
            PageLayout::roll_50x30(),
        ] {
            let opts = SheetOptions::new(layout.clone());
            let l = LabelLayout::new(&font, &opts, &template(), 49).unwrap();
            let (w, h) = layout.cell_size_mm();
            // QR inside the cell and at least the padding from its edges.
            assert!(l.qr_x >= layout.cell_padding_mm - 1e-3);
            assert!(l.qr_x + l.qr_mm <= w, "{}", layout.name);
            assert!(
                l.code_baseline < h - layout.cell_padding_mm,
                "{}",
                layout.name
            );
            // Text right of the QR image, never over it, never past the cell.
            for line in &l.lines {
                assert!(line.x_mm >= l.qr_x + l.qr_mm, "{}: {line:?}", layout.name);
                let width = font
                    .shape(&line.text)
                    .unwrap()
                    .iter()
                    .map(|g| g.advance)
                    .sum::<f32>()
                    * line.size_pt
                    * MM_PER_PT;
                assert!(
                    line.x_mm + width <= w - layout.cell_padding_mm + 1e-3,
                    "{line:?}"
                );
                assert!(line.baseline_mm <= h - layout.cell_padding_mm, "{line:?}");
            }
            assert!(l.code_size_pt >= 5.0);
            // 0.5 mm modules at 203 dpi.
            assert!((opts.print.module_mm() - 0.5005).abs() < 1e-3);
        }
    }

    #[test]
    fn too_much_text_is_an_error_not_a_cut() {
        let font = font();
        let mut t = template();
        t.fields = (0..12)
            .map(|i| format!("第{i}行 很长很长很长很长的说明文字"))
            .collect();
        let opts = SheetOptions::new(PageLayout::a4_4x10());
        assert!(matches!(
            LabelLayout::new(&font, &opts, &t, 49),
            Err(Error::DoesNotFit { .. })
        ));
    }

    #[test]
    fn module_smaller_than_04_mm_is_refused() {
        let font = font();
        let mut opts = SheetOptions::new(PageLayout::a4_3x8());
        opts.print = PrintSettings {
            printer_dpi: 203,
            dots_per_module: 3,
        };
        assert!(matches!(
            LabelLayout::new(&font, &opts, &template(), 49),
            Err(Error::InvalidLayout(_))
        ));
    }
}
