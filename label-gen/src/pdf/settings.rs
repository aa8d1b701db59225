//! What decides how a file of labels looks, as a person sets it: the page and its grid of labels,
//! the printer's resolution and the QR module size, the template's text, how QR images are stored.
//! Lengths are millimetres from the page's top-left corner, as one measures a label sheet.

use super::MM_PER_INCH;
use crate::Error;

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

    pub(super) fn validate(&self) -> Result<(), Error> {
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

    pub(super) fn validate(&self) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn presets_are_found_by_name_with_their_cells() {
        for (name, cell, per_page) in [
            ("a4-3x8", (70.0, 36.0), 24),
            ("a4-4x10", (52.5, 29.7), 40),
            ("roll-50x30", (50.0, 30.0), 1),
        ] {
            let layout = PageLayout::by_name(name).unwrap();
            assert_eq!(layout.name, name);
            let (w, h) = layout.cell_size_mm();
            assert!(close(w, cell.0) && close(h, cell.1), "{name}: {w} × {h}");
            assert_eq!(layout.labels_per_page(), per_page);
            assert!(layout.validate().is_ok(), "{name}");
        }
        assert_eq!(PageLayout::by_name("a5-2x4"), None);
    }

    #[test]
    fn a_layout_without_room_for_labels_is_refused() {
        let no_columns = PageLayout {
            columns: 0,
            ..PageLayout::a4_3x8()
        };
        let margins_fill_the_page = PageLayout {
            margins: Margins::uniform(105.0),
            ..PageLayout::a4_3x8()
        };
        let unmeasured_offset = PageLayout {
            offset_x_mm: f32::NAN,
            ..PageLayout::a4_3x8()
        };
        for layout in [no_columns, margins_fill_the_page, unmeasured_offset] {
            assert!(
                matches!(layout.validate(), Err(Error::InvalidLayout(ref m)) if m.contains("no room")),
                "{layout:?}"
            );
        }
        let negative_padding = PageLayout {
            cell_padding_mm: -0.5,
            ..PageLayout::roll_50x30()
        };
        assert!(matches!(
            negative_padding.validate(),
            Err(Error::InvalidLayout(ref m)) if m.contains("padding")
        ));
    }

    #[test]
    fn modules_are_whole_printer_dots_of_at_least_04_mm() {
        let default = PrintSettings::default();
        assert!(close(default.dot_mm(), 25.4 / 203.0));
        assert!(close(default.module_mm(), 0.5005));
        assert!(default.validate().is_ok());
        let office = PrintSettings {
            printer_dpi: 300,
            dots_per_module: 5,
        };
        assert!(close(office.module_mm(), 0.4233));
        assert!(office.validate().is_ok());
        for (printer_dpi, dots_per_module) in [(203, 3), (600, 9), (0, 4), (203, 0)] {
            let settings = PrintSettings {
                printer_dpi,
                dots_per_module,
            };
            assert!(
                matches!(settings.validate(), Err(Error::InvalidLayout(_))),
                "{settings:?}"
            );
        }
    }

    #[test]
    fn sheet_options_default_to_inline_codes_without_outlines() {
        let options = SheetOptions::new(PageLayout::a4_4x10());
        assert_eq!(options.qr_image, QrImageMode::Inline);
        assert!(!options.outline_cells);
        assert_eq!(options.print, PrintSettings::default());
        assert_eq!(options.title, "Suyuan labels");
    }
}
