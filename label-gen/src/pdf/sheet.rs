//! One PDF file of labels, filled page after page: each label's QR image snapped to the printer's
//! dot grid, its short code and the template's form; pages compressed as they fill; the page tree,
//! catalog and cross-reference stream at the end.

use std::io::Write;

use printpdf::lopdf::{Dictionary, Object};

use super::content::{push_hex_string, push_mm, push_num, text_string};
use super::layout::LabelLayout;
use super::settings::QrImageMode;
use super::writer::{deflate, serialize, PdfWriter};
use super::MM_PER_PT;
use crate::qr::{Bitmap, QrMatrix, QUIET_ZONE};
use crate::serial::LabelSerial;
use crate::Error;

/// Object numbers of the parts every label file has; pages and their contents follow the font.
const CATALOG_ID: u32 = 1;
const PAGES_ID: u32 = 2;
const INFO_ID: u32 = 3;
const RESOURCES_ID: u32 = 4;
pub(super) const TEMPLATE_ID: u32 = 5;
pub(super) const FONT_FIRST_ID: u32 = 6;

/// One PDF file being filled with labels, page after page.
///
/// Pages are written as they fill: each page's content is compressed and appended to the file
/// when the next page starts, so a file in progress holds compressed bytes only.
pub struct LabelSheet<'a> {
    layout: &'a LabelLayout,
    pdf: PdfWriter,
    /// Content of the page being filled.
    content: Vec<u8>,
    /// Image XObjects of the page being filled ([`QrImageMode::XObject`] only).
    images: Vec<u32>,
    /// Pages written so far: the content stream's id and, for pages with images, their
    /// resources. Page objects are written at the end, numbered in a row, so that their
    /// cross-reference entries are alike and compress to almost nothing.
    pages: Vec<(u32, Option<Dictionary>)>,
    labels: usize,
}

impl std::fmt::Debug for LabelSheet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelSheet")
            .field("labels", &self.labels)
            .field("pages", &self.pages.len())
            .finish_non_exhaustive()
    }
}

impl<'a> LabelSheet<'a> {
    pub(super) fn new(layout: &'a LabelLayout) -> Result<Self, Error> {
        let mut pdf = PdfWriter::new(64 * 1024, layout.subset.end_id());
        pdf.put(
            CATALOG_ID,
            &Object::Dictionary(Dictionary::from_iter([
                ("Type", Object::Name(b"Catalog".to_vec())),
                ("Pages", Object::Reference((PAGES_ID, 0))),
            ])),
        )?;
        pdf.put(
            INFO_ID,
            &Object::Dictionary(Dictionary::from_iter([
                ("Title", text_string(&layout.options.title)),
                (
                    "Producer",
                    text_string(concat!("suyuan-label-gen ", env!("CARGO_PKG_VERSION"))),
                ),
            ])),
        )?;
        pdf.put(RESOURCES_ID, &Object::Dictionary(layout.resources(&[])))?;
        pdf.put(TEMPLATE_ID, &Object::Stream(layout.template_form.clone()))?;
        for (id, object) in layout.subset.objects() {
            pdf.put(id, object)?;
        }
        Ok(Self {
            layout,
            pdf,
            content: Vec::with_capacity(16 * 1024),
            images: Vec::new(),
            pages: Vec::new(),
            labels: 0,
        })
    }

    /// Labels added so far.
    pub fn len(&self) -> usize {
        self.labels
    }

    /// Whether no label has been added.
    pub fn is_empty(&self) -> bool {
        self.labels == 0
    }

    /// Adds the next label: its QR (which must have the layout's module count) and short code.
    pub fn add_label(&mut self, serial: LabelSerial, qr: &QrMatrix) -> Result<(), Error> {
        let layout = self.layout;
        if qr.size() != layout.qr_modules {
            return Err(Error::Pdf(format!(
                "QR has {} modules per side, the layout was made for {}",
                qr.size(),
                layout.qr_modules
            )));
        }
        let l = &layout.options.layout;
        let per_page = l.labels_per_page();
        let slot = self.labels % per_page;
        if self.labels > 0 && slot == 0 {
            self.close_page()?;
        }
        self.labels += 1;

        let (cell_w, cell_h) = l.cell_size_mm();
        let col = (slot % l.columns as usize) as f32;
        let row = (slot / l.columns as usize) as f32;
        let cell_x = l.margins.left + col * cell_w + l.offset_x_mm;
        let cell_y = l.margins.top + row * cell_h + l.offset_y_mm;
        let page_h = l.page_height_mm;

        if layout.options.outline_cells {
            // q 0.2 w x y w h re S Q
            let c = &mut self.content;
            c.extend_from_slice(b"q 0.2 w ");
            push_mm(c, cell_x);
            push_mm(c, page_h - cell_y - cell_h);
            push_mm(c, cell_w);
            push_mm(c, cell_h);
            c.extend_from_slice(b"re S Q\n");
        }

        // QR image, snapped to the printer's dot grid from the top-left corner of the page.
        let dot = layout.options.print.dot_mm();
        let snap = |v: f32| (v / dot).round() * dot;
        let qr_left = snap(cell_x + layout.qr_x);
        let qr_top = snap(cell_y + layout.qr_y);
        // The image holds the code without its quiet zone (see `QrMatrix::code_bitmap`).
        let bitmap = qr.code_bitmap();
        let quiet = QUIET_ZONE as f32 * layout.options.print.module_mm();
        let code_mm = layout.qr_mm - 2.0 * quiet;
        let (x, y) = (qr_left + quiet, page_h - (qr_top + quiet) - code_mm);
        match layout.options.qr_image {
            QrImageMode::Inline => self.inline_image(&bitmap, x, y, code_mm),
            QrImageMode::XObject => self.image_xobject(bitmap, x, y, code_mm),
        }

        // Short code, centred under the QR.
        let (code, code_w) = layout.short_code(serial);
        let c = &mut self.content;
        c.extend_from_slice(b"BT /F ");
        push_num(c, layout.code_size_pt);
        c.extend_from_slice(b"Tf ");
        push_mm(c, qr_left + (layout.qr_mm - code_w) / 2.0);
        push_mm(c, page_h - (cell_y + layout.code_baseline));
        c.extend_from_slice(b"Td ");
        push_hex_string(c, &code);
        c.extend_from_slice(b" Tj ET\n");

        // The template's text, drawn once in the file and placed in every cell.
        c.extend_from_slice(b"q 1 0 0 1 ");
        push_mm(c, cell_x);
        push_mm(c, page_h - cell_y);
        c.extend_from_slice(b"cm /T Do Q\n");
        Ok(())
    }

    /// Paints a 1-bit image as an inline image, `side_mm` square with its lower-left corner at
    /// (`x_mm`, `y_mm`) in PDF coordinates:
    ///
    /// ```text
    /// q s 0 0 s x y cm BI /W n /H n /BPC 1 /CS /G /F /AHx ID <hex>> EI Q
    /// ```
    ///
    /// ASCII-hex rather than binary so that no byte sequence of a code can be taken for the `EI`
    /// that ends the image (readers that search for it instead of counting bytes exist); the page
    /// stream's Flate takes the hex back to about the raw size. Decode defaults to `[0 1]`: a 0
    /// bit is black.
    fn inline_image(&mut self, bitmap: &Bitmap, x_mm: f32, y_mm: f32, side_mm: f32) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let c = &mut self.content;
        c.extend_from_slice(b"q ");
        push_mm(c, side_mm);
        c.extend_from_slice(b"0 0 ");
        push_mm(c, side_mm);
        push_mm(c, x_mm);
        push_mm(c, y_mm);
        let _ = writeln!(
            c,
            "cm BI /W {} /H {} /BPC 1 /CS /G /F /AHx ID",
            bitmap.width, bitmap.height
        );
        c.reserve(bitmap.data.len() * 2 + 8);
        for b in &bitmap.data {
            c.push(HEX[usize::from(b >> 4)]);
            c.push(HEX[usize::from(b & 15)]);
        }
        c.extend_from_slice(b">\nEI Q\n");
    }

    /// Paints a 1-bit image stored as an image XObject of its own (uncompressed: the bits of a
    /// code are near-random and Flate does not shrink them).
    fn image_xobject(&mut self, bitmap: Bitmap, x_mm: f32, y_mm: f32, side_mm: f32) {
        let id = self.pdf.reserve();
        let dict = Dictionary::from_iter([
            ("Type", Object::Name(b"XObject".to_vec())),
            ("Subtype", Object::Name(b"Image".to_vec())),
            ("Width", Object::Integer(bitmap.width as i64)),
            ("Height", Object::Integer(bitmap.height as i64)),
            ("ColorSpace", Object::Name(b"DeviceGray".to_vec())),
            ("BitsPerComponent", Object::Integer(1)),
        ]);
        self.pdf.put_stream(id, &dict, &bitmap.data);
        let c = &mut self.content;
        c.extend_from_slice(b"q ");
        push_mm(c, side_mm);
        c.extend_from_slice(b"0 0 ");
        push_mm(c, side_mm);
        push_mm(c, x_mm);
        push_mm(c, y_mm);
        let _ = writeln!(c, "cm /Q{} Do Q", self.images.len());
        self.images.push(id);
    }

    /// Writes the content stream of the page being filled (compressed).
    fn close_page(&mut self) -> Result<(), Error> {
        let (content, compressed) = deflate(std::mem::take(&mut self.content))?;
        let content_id = self.pdf.reserve();
        let mut dict = Dictionary::new();
        if compressed {
            dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
        }
        self.pdf.put_stream(content_id, &dict, &content);
        // Images are named per page, so a page with images has resources of its own.
        let resources = (!self.images.is_empty()).then(|| self.layout.resources(&self.images));
        self.images.clear();
        self.pages.push((content_id, resources));
        self.content = Vec::with_capacity(content.len() * 3);
        Ok(())
    }

    /// Finishes the file and returns its bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, Error> {
        self.close_page()?;
        let mut kids = Vec::with_capacity(self.pages.len());
        for (content_id, resources) in std::mem::take(&mut self.pages) {
            let page_id = self.pdf.reserve();
            let mut page = format!("<</Type/Page/Parent {PAGES_ID} 0 R/Contents {content_id} 0 R")
                .into_bytes();
            if let Some(resources) = resources {
                page.extend_from_slice(b"/Resources");
                serialize(&mut page, &Object::Dictionary(resources));
            }
            page.extend_from_slice(b">>");
            self.pdf.put_packed(page_id, page)?;
            kids.push(Object::Reference((page_id, 0)));
        }
        let l = &self.layout.options.layout;
        let count = kids.len() as i64;
        let pages = Dictionary::from_iter([
            ("Type", Object::Name(b"Pages".to_vec())),
            ("Kids", Object::Array(kids)),
            ("Count", Object::Integer(count)),
            (
                "MediaBox",
                Object::Array(vec![
                    0.into(),
                    0.into(),
                    Object::Real(l.page_width_mm / MM_PER_PT),
                    Object::Real(l.page_height_mm / MM_PER_PT),
                ]),
            ),
            ("Resources", Object::Reference((RESOURCES_ID, 0))),
        ]);
        self.pdf.put(PAGES_ID, &Object::Dictionary(pages))?;
        self.pdf.finish(CATALOG_ID, INFO_ID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::fixtures::{decode_pdf, font, template};
    use crate::pdf::{PageLayout, SheetOptions};

    #[test]
    fn printed_pages_decode_back_to_genuine_codes_in_both_image_modes() {
        use crate::{verify, LabelCode, MaskChoice, QrEncoder, Verdict, VerifyingKeySet};
        let font = font();
        let key = crate::sign::tests::test_key(6, 6);
        let keys: VerifyingKeySet = [key.verifying_key()].into_iter().collect();
        let encoder = QrEncoder::new("trace.huaning.cn", MaskChoice::default()).unwrap();
        for (layout, count) in [
            (PageLayout::a4_4x10(), 40u64),
            (PageLayout::roll_50x30(), 2),
        ] {
            for mode in [QrImageMode::Inline, QrImageMode::XObject] {
                let mut opts = SheetOptions::new(layout.clone());
                opts.qr_image = mode;
                let l = LabelLayout::new(&font, &opts, &template(), encoder.size()).unwrap();
                let mut sheet = l.start_sheet().unwrap();
                let mut expected = Vec::new();
                for seq in 0..count {
                    let serial = LabelSerial::new(key.id(), 500 + seq).unwrap();
                    let code = LabelCode::mint(&key, serial).unwrap();
                    sheet
                        .add_label(serial, &encoder.encode(&code).unwrap())
                        .unwrap();
                    expected.push(encoder.content(&code));
                }
                assert_eq!(sheet.len(), count as usize);
                let pdf = sheet.finish().unwrap();
                // printpdf falls back to the whole font (5 MB for WenQuanYi) if subsetting fails.
                assert!(
                    pdf.len() < 1_000_000,
                    "font not subset: {} bytes",
                    pdf.len()
                );
                let mut decoded = decode_pdf(&pdf, &layout);
                decoded.sort();
                expected.sort();
                assert_eq!(decoded, expected, "{} {mode:?}", layout.name);
                for content in &decoded {
                    assert!(matches!(verify(content, &keys), Verdict::Genuine { .. }));
                }
            }
        }
    }

    /// The glyphs are renumbered in the run's font subset; text extraction (through the font's
    /// `ToUnicode` map) reads back what each label shows, so a wrong renumbering would show.
    #[test]
    fn labels_show_their_short_code_and_the_template_text() {
        use crate::{LabelCode, MaskChoice, QrEncoder};
        let font = font();
        let key = crate::sign::tests::test_key(6, 6);
        let encoder = QrEncoder::new("trace.huaning.cn", MaskChoice::default()).unwrap();
        let squeeze = |s: &str| s.split_whitespace().collect::<String>();
        for layout in [PageLayout::roll_50x30(), PageLayout::a4_3x8()] {
            let l = LabelLayout::new(
                &font,
                &SheetOptions::new(layout.clone()),
                &template(),
                encoder.size(),
            )
            .unwrap();
            let mut sheet = l.start_sheet().unwrap();
            let serial = LabelSerial::new(key.id(), 9_876_543).unwrap();
            let code = LabelCode::mint(&key, serial).unwrap();
            sheet
                .add_label(serial, &encoder.encode(&code).unwrap())
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("label.pdf");
            std::fs::write(&path, sheet.finish().unwrap()).unwrap();
            let out = std::process::Command::new("pdftotext")
                .arg(&path)
                .arg("-")
                .output()
                .expect("pdftotext (Debian package poppler-utils) must be installed");
            assert!(out.status.success());
            let text = squeeze(&String::from_utf8(out.stdout).unwrap());
            let t = template();
            for expected in [serial.grouped(), t.product_name.clone()]
                .into_iter()
                .chain(t.fields.iter().cloned())
            {
                assert!(
                    text.contains(&squeeze(&expected)),
                    "{}: {expected:?} not in {text:?}",
                    layout.name
                );
            }
        }
    }
}
