//! What the PDF tests and the run's tests share: the font, a sample template, and reading printed
//! pages back (rendered with pdftoppm, decoded with rqrr).

use std::path::PathBuf;

use super::{LabelFont, LabelTemplate, PageLayout, FONT_SETTING, MM_PER_INCH};

/// The font the tests print with: the configured one, else the system search (as a run does).
pub(crate) fn font() -> LabelFont {
    let configured = std::env::var_os(FONT_SETTING).map(PathBuf::from);
    LabelFont::load(configured.as_deref()).unwrap()
}

/// A sample template: a two-part product name and three fields, in Chinese.
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
