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
//!
//! The parts: `settings` (what a person chooses: page layout, print settings, template),
//! `font` (the CJK font and its glyphs), `text` (line breaking and placing the template's text),
//! `layout` (the geometry of one label, computed once per run), `content` (content-stream
//! operators and the template's form), `sheet` (one file of labels, page after page), and below
//! them the font subset and the file writer.

mod content;
mod font;
mod layout;
mod settings;
mod sheet;
mod subset;
mod text;
mod writer;

#[cfg(test)]
pub(crate) mod fixtures;

pub use font::{LabelFont, FONT_SETTING, SYSTEM_FONT_CANDIDATES};
pub use layout::LabelLayout;
pub use settings::{LabelTemplate, Margins, PageLayout, PrintSettings, QrImageMode, SheetOptions};
pub use sheet::LabelSheet;

/// Millimetres per inch, for printer dots.
const MM_PER_INCH: f32 = 25.4;
/// Millimetres per PDF point (1/72 inch): layout is in mm, PDF in points.
const MM_PER_PT: f32 = MM_PER_INCH / 72.0;
