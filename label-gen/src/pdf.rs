//! Printable label sheets: labels laid out as PDF pages, one bounded file at a time.
//!
//! Why the PDF looks the way it does:
//!
//! - **The QR is a 1-bit image at one pixel per module** (`/DeviceGray`, `/BitsPerComponent 1`,
//!   `/Interpolate` left at its default, false), placed at a size of a whole number of printer
//!   dots per module (4 dots = 0.5 mm at 203 dpi by default) and at a position on the printer's
//!   dot grid counted from the page's top-left corner. A renderer then maps every module to
//!   exactly N×N dots: crisp edges, no grey. One pixel per module is also the most compact: 246
//!   bytes for a version 6 code. The 4-module quiet zone is reserved as blank space by the layout
//!   rather than stored as white pixels (nothing else is drawn there), which saves a third of
//!   every image.
//! - **Each label's QR is written once** (every code is unique, so there is nothing to share), by
//!   default as an *inline image* in the page's content stream ([`QrImageMode::Inline`]), or as an
//!   image XObject of its own ([`QrImageMode::XObject`]). Inline is the default because it is the
//!   smaller: on 50,000 labels, 298 against 422 bytes per label on A4 3×8, 515 against 595 on the
//!   50×30 roll. An XObject costs an object header and a cross-reference entry, and on a roll a
//!   resources dictionary per page to name it; inline, the code is ASCII-hex in the page stream,
//!   whose Flate squeezes the hex back to about the raw size. XObjects are the faster of the two
//!   (no Flate over the hex: about 51,000 against 35,000 labels/s on A4 3×8 on 2 shared cores),
//!   but both are far beyond what printing needs.
//! - **What every label repeats is written once per file**: the template's text (product name
//!   and fields) is a form XObject drawn in each cell, and the pages share one resources
//!   dictionary and one media box through the page tree. Only the QR, the short code and three
//!   placements differ from label to label.
//! - **The file is written by a small writer of its own** (`pdf/writer.rs`): page dictionaries in
//!   compressed object streams, a compressed cross-reference stream (PDF 1.5). On a roll, where
//!   every label is a page, this is what matters: printpdf 0.7 gave each page an optional-content
//!   group (listed three times in the catalog), a page dictionary with four boxes and an empty
//!   annotation list, a resources dictionary, two cross-reference entries, and the template's
//!   text in its content, compressed alone. That came to 1,055 bytes per roll label; now 515, of
//!   which about 430 are the page's compressed content (the QR takes about 280 of them) and 65 the
//!   content stream's object header.
//! - **The CJK font is embedded as a subset**, made once per run (`pdf/subset.rs`, printpdf's
//!   `font_subsetting`, which uses allsorts) and copied into each file, so every file prints
//!   anywhere and stays small (about 9 KB for the sample template). printpdf 0.7 embeds fonts as
//!   TrueType (`/FontFile2`), so the font must have TrueType outlines: WenQuanYi Micro Hei or
//!   Droid Sans Fallback work, the CFF-based Noto Sans CJK does not. The font comes from the
//!   configured path (setting [`FONT_SETTING`]) or a search of the usual Debian locations.
//! - **Runs are split into files** of a bounded number of labels: a file is built in memory (as
//!   compressed pages) and written at once, so memory stays bounded whatever the run size, and
//!   printing can start with the first file.
//!
//! Why printpdf 0.7 for the font, and not 0.8 or later: from 0.8 on, font subsetting needs the
//! `text_layout` feature, which pulls in the azul layout/HTML stack (and 0.8 always builds
//! svg2pdf); 0.7 subsets with only allsorts and builds the Type0 font objects (widths,
//! `ToUnicode`) that the label files copy.
//!
//! Coordinates: layout settings are in millimetres from the page's top-left corner (as a person
//! measures a label sheet); conversion to PDF's bottom-left origin happens only when drawing.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use printpdf::lopdf::{Dictionary, Object, ObjectId, Stream, StringFormat};

mod subset;
mod writer;

use subset::SubsetFont;
use writer::{deflate, serialize, PdfWriter};

use crate::qr::{Bitmap, QrMatrix, QUIET_ZONE};
use crate::serial::LabelSerial;
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

const MM_PER_INCH: f32 = 25.4;
const MM_PER_PT: f32 = MM_PER_INCH / 72.0;

/// A CJK TrueType font, loaded once and shared by every file of a run.
#[derive(Clone)]
pub struct LabelFont {
    path: PathBuf,
    bytes: Arc<Vec<u8>>,
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
struct Glyph {
    ch: char,
    id: u16,
    advance: f32,
}

/// Glyph ids as a PDF string for an Identity-H font: two big-endian bytes per glyph.
fn glyph_bytes(glyphs: &[Glyph]) -> Vec<u8> {
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
    fn shape(&self, text: &str) -> Result<Vec<Glyph>, Error> {
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

    fn ascender_em(&self) -> f32 {
        self.metrics.ascender / self.metrics.units_per_em
    }

    fn digit_height_em(&self) -> f32 {
        self.metrics.digit_height / self.metrics.units_per_em
    }
}

/// Page margins around the label grid, in millimetres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margins {
    /// From the top edge of the page to the first row.
    pub top: f32,
    /// From the last column to the right edge.
    pub right: f32,
    /// From the last row to the bottom edge.
    pub bottom: f32,
    /// From the left edge to the first column.
    pub left: f32,
}

impl Margins {
    /// The same margin on all four sides.
    pub fn uniform(mm: f32) -> Self {
        Self {
            top: mm,
            right: mm,
            bottom: mm,
            left: mm,
        }
    }
}

/// How labels sit on a page: page size, grid, margins, printer calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct PageLayout {
    /// Short name used in file names and messages (`a4-3x8`, `a4-4x10`, `roll-50x30`).
    pub name: String,
    /// Page width in mm.
    pub page_width_mm: f32,
    /// Page height in mm.
    pub page_height_mm: f32,
    /// Labels across.
    pub columns: u32,
    /// Labels down.
    pub rows: u32,
    /// Margins around the grid; the cells share the rest equally.
    pub margins: Margins,
    /// Printer calibration: shifts everything right by this much (negative: left).
    pub offset_x_mm: f32,
    /// Printer calibration: shifts everything down by this much (negative: up).
    pub offset_y_mm: f32,
    /// Empty space kept inside each label's edges (die-cut tolerance).
    pub cell_padding_mm: f32,
}

impl PageLayout {
    /// A4 sheet with 3 × 8 labels of 70 × 36 mm (4.5 mm top and bottom margins).
    pub fn a4_3x8() -> Self {
        Self {
            name: "a4-3x8".into(),
            page_width_mm: 210.0,
            page_height_mm: 297.0,
            columns: 3,
            rows: 8,
            margins: Margins {
                top: 4.5,
                right: 0.0,
                bottom: 4.5,
                left: 0.0,
            },
            offset_x_mm: 0.0,
            offset_y_mm: 0.0,
            cell_padding_mm: 2.0,
        }
    }

    /// A4 sheet with 4 × 10 labels of 52.5 × 29.7 mm (no margins).
    pub fn a4_4x10() -> Self {
        Self {
            name: "a4-4x10".into(),
            page_width_mm: 210.0,
            page_height_mm: 297.0,
            columns: 4,
            rows: 10,
            margins: Margins::uniform(0.0),
            offset_x_mm: 0.0,
            offset_y_mm: 0.0,
            cell_padding_mm: 1.0,
        }
    }

    /// Thermal roll, one 50 × 30 mm label per page.
    pub fn roll_50x30() -> Self {
        Self {
            name: "roll-50x30".into(),
            page_width_mm: 50.0,
            page_height_mm: 30.0,
            columns: 1,
            rows: 1,
            margins: Margins::uniform(0.0),
            offset_x_mm: 0.0,
            offset_y_mm: 0.0,
            cell_padding_mm: 1.0,
        }
    }

    /// A preset by its name (`a4-3x8`, `a4-4x10`, `roll-50x30`).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "a4-3x8" => Some(Self::a4_3x8()),
            "a4-4x10" => Some(Self::a4_4x10()),
            "roll-50x30" => Some(Self::roll_50x30()),
            _ => None,
        }
    }

    /// Labels per page.
    pub fn labels_per_page(&self) -> usize {
        self.columns as usize * self.rows as usize
    }

    /// Width and height of one label cell in mm.
    pub fn cell_size_mm(&self) -> (f32, f32) {
        let w = (self.page_width_mm - self.margins.left - self.margins.right) / self.columns as f32;
        let h = (self.page_height_mm - self.margins.top - self.margins.bottom) / self.rows as f32;
        (w, h)
    }

    fn validate(&self) -> Result<(), Error> {
        let (w, h) = self.cell_size_mm();
        let finite = [
            self.page_width_mm,
            self.page_height_mm,
            self.offset_x_mm,
            self.offset_y_mm,
            self.cell_padding_mm,
            self.margins.top,
            self.margins.right,
            self.margins.bottom,
            self.margins.left,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite || self.columns == 0 || self.rows == 0 || w <= 0.0 || h <= 0.0 {
            return Err(Error::InvalidLayout(format!(
                "{}: page, grid and margins leave no room for labels",
                self.name
            )));
        }
        if self.cell_padding_mm < 0.0 {
            return Err(Error::InvalidLayout("cell padding is negative".into()));
        }
        Ok(())
    }
}

/// Print settings: the printer's resolution and the QR module size in its dots.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintSettings {
    /// Printer resolution in dots per inch (203 for most thermal label printers, 300 or 600 for
    /// office printers).
    pub printer_dpi: u32,
    /// QR module side in printer dots; the module must come out at least 0.4 mm.
    pub dots_per_module: u32,
}

impl Default for PrintSettings {
    /// 203 dpi, 4 dots per module: 0.5 mm modules.
    fn default() -> Self {
        Self {
            printer_dpi: 203,
            dots_per_module: 4,
        }
    }
}

impl PrintSettings {
    /// The smallest module size the print rules allow.
    pub const MIN_MODULE_MM: f32 = 0.4;

    /// Size of one printer dot in mm.
    pub fn dot_mm(&self) -> f32 {
        MM_PER_INCH / self.printer_dpi as f32
    }

    /// Size of one QR module in mm.
    pub fn module_mm(&self) -> f32 {
        self.dots_per_module as f32 * self.dot_mm()
    }

    fn validate(&self) -> Result<(), Error> {
        if self.printer_dpi == 0 || self.dots_per_module == 0 {
            return Err(Error::InvalidLayout(
                "dpi and dots per module must be positive".into(),
            ));
        }
        if self.module_mm() + 1e-4 < Self::MIN_MODULE_MM {
            return Err(Error::InvalidLayout(format!(
                "{} dots at {} dpi make {:.3} mm modules; at least {} mm is required",
                self.dots_per_module,
                self.printer_dpi,
                self.module_mm(),
                Self::MIN_MODULE_MM
            )));
        }
        Ok(())
    }
}

/// What a product's labels show besides the QR and short code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelTemplate {
    /// Product name, in Chinese (e.g. `华宁柑橘`).
    pub product_name: String,
    /// Further lines chosen per product, in order: brand, certification marks, origin, …
    pub fields: Vec<String>,
}

/// Everything that decides how a file of labels looks.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetOptions {
    /// Page and grid.
    pub layout: PageLayout,
    /// Printer resolution and module size.
    pub print: PrintSettings,
    /// Draw each cell's outline (a calibration aid when printing on plain paper).
    pub outline_cells: bool,
    /// How the QR images are stored.
    pub qr_image: QrImageMode,
    /// PDF title.
    pub title: String,
}

/// How each label's QR image is stored in the PDF; both are 1-bit DeviceGray, one pixel per module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QrImageMode {
    /// An inline image (`BI … ID … EI`) in the page content stream: the smaller (see the module
    /// docs for measurements).
    #[default]
    Inline,
    /// An image XObject per label (uncompressed: the bits of a code are near-random): the faster,
    /// about 40 % larger.
    XObject,
}

impl SheetOptions {
    /// Options for `layout` with default print settings.
    pub fn new(layout: PageLayout) -> Self {
        Self {
            layout,
            print: PrintSettings::default(),
            outline_cells: false,
            qr_image: QrImageMode::default(),
            title: "Suyuan labels".into(),
        }
    }
}

/// A line of text placed relative to the cell's top-left corner.
#[derive(Debug, Clone, PartialEq)]
struct PlacedLine {
    text: String,
    glyphs: Vec<u8>,
    size_pt: f32,
    x_mm: f32,
    baseline_mm: f32,
}

/// The geometry of one label, computed once per template and shared by every file of a run.
///
/// All positions are relative to the top-left corner of a cell, in mm.
#[derive(Debug, Clone)]
pub struct LabelLayout {
    options: SheetOptions,
    qr_modules: usize,
    qr_x: f32,
    qr_y: f32,
    qr_mm: f32,
    code_size_pt: f32,
    code_baseline: f32,
    /// Glyphs of `0`–`9` and space, for the short code (ids in the subset).
    code_glyphs: Vec<Glyph>,
    /// The template's lines; drawing uses `template_form`, made from them.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the layout tests check where each line went")
    )]
    lines: Vec<PlacedLine>,
    /// The font subset every file of the run embeds.
    subset: Arc<SubsetFont>,
    /// The template's text as a form XObject in cell coordinates, compressed once per run.
    template_form: Stream,
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
    fn resources(&self, images: &[u32]) -> Dictionary {
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
    fn short_code(&self, serial: LabelSerial) -> (Vec<u8>, f32) {
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

/// The text column right of the QR, relative to the cell's top-left corner, in mm.
struct Column {
    x: f32,
    width: f32,
    top: f32,
    bottom: f32,
}

/// Which text may be wrapped onto several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrap {
    Nothing,
    FieldsOnly,
    Anything,
}

/// Font sizes to try, and which lines may wrap.
struct TextSizes {
    name_pt: f32,
    field_pt: f32,
    wrap: Wrap,
}

/// Places the product name (at most 3 lines) and the fields in the text column, or `None` if they
/// do not fit at these sizes.
fn place_column(
    font: &LabelFont,
    template: &LabelTemplate,
    sizes: &TextSizes,
    column: &Column,
) -> Result<Option<Vec<PlacedLine>>, Error> {
    let (name_pt, field_pt) = (sizes.name_pt, sizes.field_pt);
    let asc = font.ascender_em();
    let mut placed = Vec::new();
    let mut y = column.top;
    let mut blocks: Vec<(&str, f32, usize)> = Vec::new();
    if !template.product_name.trim().is_empty() {
        blocks.push((template.product_name.as_str(), name_pt, 3));
    }
    for field in &template.fields {
        if !field.trim().is_empty() {
            blocks.push((field.as_str(), field_pt, 4));
        }
    }
    let has_name = !template.product_name.trim().is_empty();
    for (i, (text, size_pt, max_lines)) in blocks.into_iter().enumerate() {
        let size_mm = size_pt * MM_PER_PT;
        let wrapped = wrap(font, text, size_mm, column.width)?;
        let may_wrap = match sizes.wrap {
            Wrap::Nothing => false,
            Wrap::FieldsOnly => i > 0 || !has_name,
            Wrap::Anything => true,
        };
        if wrapped.len() > max_lines || (!may_wrap && wrapped.len() > text.split('\n').count()) {
            return Ok(None);
        }
        if i == 1 {
            y += 0.4 * size_mm; // a little air between the name and the fields
        }
        for line in wrapped {
            let baseline = y + asc * size_mm;
            y += 1.2 * size_mm;
            if y > column.bottom + 1e-3 {
                return Ok(None);
            }
            placed.push(PlacedLine {
                glyphs: glyph_bytes(&line),
                text: line.iter().map(|g| g.ch).collect(),
                size_pt,
                x_mm: column.x,
                baseline_mm: baseline,
            });
        }
    }
    Ok(Some(placed))
}

/// Greedy line breaking: at the last space of the line if it has one, else between any two
/// characters (as Chinese text breaks); `\n` always. Lines come back as glyphs, trimmed.
fn wrap(font: &LabelFont, text: &str, size_mm: f32, width: f32) -> Result<Vec<Vec<Glyph>>, Error> {
    let trim = |mut line: Vec<Glyph>| {
        while line.last().is_some_and(|g| g.ch == ' ') {
            line.pop();
        }
        line
    };
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line: Vec<Glyph> = Vec::new();
        let mut w = 0.0;
        for g in font.shape(paragraph.trim())? {
            let gw = g.advance * size_mm;
            if !line.is_empty() && w + gw > width {
                if g.ch == ' ' {
                    lines.push(trim(std::mem::take(&mut line)));
                    w = 0.0;
                    continue;
                }
                let rest = match line.iter().rposition(|x| x.ch == ' ') {
                    Some(at) => line.split_off(at + 1),
                    None => Vec::new(),
                };
                lines.push(trim(std::mem::replace(&mut line, rest)));
                w = line.iter().map(|x| x.advance * size_mm).sum();
            }
            if line.is_empty() && g.ch == ' ' {
                continue;
            }
            line.push(g);
            w += gw;
        }
        if !line.is_empty() {
            lines.push(trim(line));
        }
    }
    Ok(lines)
}

/// The template's lines as a form XObject whose origin is the cell's top-left corner (y up, in
/// points), so that one copy per file serves every label: on a roll, where each label is a page,
/// the text would otherwise be repeated, and compressed alone, on every page.
fn template_form(
    lines: &[PlacedLine],
    cell_w_mm: f32,
    cell_h_mm: f32,
    font: ObjectId,
) -> Result<Stream, Error> {
    let mut content = Vec::new();
    content.extend_from_slice(b"BT\n");
    for line in lines {
        content.extend_from_slice(b"/F ");
        push_num(&mut content, line.size_pt);
        content.extend_from_slice(b"Tf 1 0 0 1 ");
        push_mm(&mut content, line.x_mm);
        push_mm(&mut content, -line.baseline_mm);
        content.extend_from_slice(b"Tm ");
        push_hex_string(&mut content, &line.glyphs);
        content.extend_from_slice(b" Tj\n");
    }
    content.extend_from_slice(b"ET\n");
    let dict = Dictionary::from_iter([
        ("Type", Object::Name(b"XObject".to_vec())),
        ("Subtype", Object::Name(b"Form".to_vec())),
        (
            "BBox",
            Object::Array(vec![
                0.into(),
                Object::Real(-cell_h_mm / MM_PER_PT),
                Object::Real(cell_w_mm / MM_PER_PT),
                0.into(),
            ]),
        ),
        (
            "Resources",
            Object::Dictionary(Dictionary::from_iter([(
                "Font",
                Object::Dictionary(Dictionary::from_iter([("F", Object::Reference(font))])),
            )])),
        ),
    ]);
    let mut stream = Stream::new(dict, content);
    stream
        .compress()
        .map_err(|e| Error::Pdf(format!("compressing the template: {e}")))?;
    Ok(stream)
}

/// Object numbers of the parts every label file has; pages and their contents follow the font.
const CATALOG_ID: u32 = 1;
const PAGES_ID: u32 = 2;
const INFO_ID: u32 = 3;
const RESOURCES_ID: u32 = 4;
const TEMPLATE_ID: u32 = 5;
const FONT_FIRST_ID: u32 = 6;

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
    fn new(layout: &'a LabelLayout) -> Result<Self, Error> {
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

/// A PDF text string: literal if it is printable ASCII, else UTF-16BE with a byte order mark.
fn text_string(text: &str) -> Object {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        Object::string_literal(text)
    } else {
        let mut bytes = vec![0xfe, 0xff];
        bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

/// Appends a number of points and a space to a content stream, with at most three decimals
/// (a thousandth of a point is 0.35 µm).
fn push_num(out: &mut Vec<u8>, value: f32) {
    let start = out.len();
    let _ = write!(out, "{value:.3}");
    while out.len() > start && out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
    if &out[start..] == b"-0" {
        out.truncate(start);
        out.push(b'0');
    }
    out.push(b' ');
}

/// Appends a length given in mm, in points.
fn push_mm(out: &mut Vec<u8>, mm: f32) {
    push_num(out, mm / MM_PER_PT);
}

/// Appends `<…>` with the bytes in hex.
fn push_hex_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'<');
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out.push(b'>');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn font() -> LabelFont {
        let configured = std::env::var_os(FONT_SETTING).map(PathBuf::from);
        LabelFont::load(configured.as_deref()).unwrap()
    }

    pub(crate) fn template() -> LabelTemplate {
        LabelTemplate {
            product_name: "华宁柑橘 特级果".into(),
            fields: vec![
                "品牌：华宁橘乡".into(),
                "绿色食品 LB-18-2101234567".into(),
                "产地：云南省玉溪市华宁县".into(),
            ],
        }
    }

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

    /// Renders `pdf` with pdftoppm at 203 dpi and decodes the QR code of every label cell with rqrr
    /// (cell by cell, as a phone sees one label: rqrr can pair finder patterns of neighbouring
    /// codes into a phantom grid when it is given a whole sheet).
    pub(crate) fn decode_pdf(pdf: &[u8], layout: &PageLayout) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.pdf");
        std::fs::write(&path, pdf).unwrap();
        let status = std::process::Command::new("pdftoppm")
            .args(["-r", "203", "-gray"])
            .arg(&path)
            .arg(dir.path().join("page"))
            .status()
            .expect("pdftoppm (Debian package poppler-utils) must be installed");
        assert!(status.success());
        let mut pages: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pgm"))
            .collect();
        pages.sort();
        let px = |mm: f32| (mm / MM_PER_INCH * 203.0).round() as usize;
        let (cell_w, cell_h) = layout.cell_size_mm();
        let mut contents = Vec::new();
        for page in pages {
            let (w, h, pixels) = read_pgm(&std::fs::read(page).unwrap());
            for slot in 0..layout.labels_per_page() {
                let col = (slot % layout.columns as usize) as f32;
                let row = (slot / layout.columns as usize) as f32;
                let x0 = px(layout.margins.left + col * cell_w);
                let y0 = px(layout.margins.top + row * cell_h);
                let (cw, ch) = (px(cell_w).min(w - x0), px(cell_h).min(h - y0));
                let mut img = rqrr::PreparedImage::prepare_from_greyscale(cw, ch, |x, y| {
                    pixels[(y0 + y) * w + x0 + x]
                });
                let grids = img.detect_grids();
                assert!(grids.len() <= 1, "one code per label");
                for grid in grids {
                    contents.push(grid.decode().unwrap().1);
                }
            }
        }
        contents
    }

    /// A binary PGM (P5, 8-bit) as width, height and pixels.
    fn read_pgm(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut fields = Vec::new();
        let mut pos = 0;
        while fields.len() < 4 {
            while bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            let start = pos;
            while !bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            fields.push(std::str::from_utf8(&bytes[start..pos]).unwrap().to_owned());
        }
        assert_eq!(fields[0], "P5");
        let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        (w, h, bytes[pos + 1..pos + 1 + w * h].to_vec())
    }

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

    #[test]
    fn wrapping_breaks_chinese_anywhere_and_latin_at_spaces() {
        let font = font();
        let text = |lines: Vec<Vec<Glyph>>| -> Vec<String> {
            lines
                .iter()
                .map(|l| l.iter().map(|g| g.ch).collect())
                .collect()
        };
        let lines = text(wrap(&font, "华宁柑橘华宁柑橘", 4.0, 17.0).unwrap());
        assert_eq!(lines, vec!["华宁柑橘", "华宁柑橘"]);
        let lines = text(wrap(&font, "华宁柑橘 特级果", 4.0, 20.0).unwrap());
        assert_eq!(lines, vec!["华宁柑橘", "特级果"]);
        let lines = text(wrap(&font, "green food certified", 4.0, 30.0).unwrap());
        assert!(lines
            .iter()
            .all(|l| !l.starts_with(' ') && !l.ends_with(' ')));
        assert_eq!(lines.concat().replace(' ', ""), "greenfoodcertified");
        assert!(
            lines[0].ends_with("food") || lines[0].ends_with("green"),
            "{lines:?}"
        );
        assert!(matches!(
            wrap(&font, "\u{10FFFD}", 4.0, 30.0),
            Err(Error::MissingGlyph { .. })
        ));
    }
}
