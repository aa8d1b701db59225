//! Writes a sample PDF of each layout, renders the pages at printer resolution and decodes every
//! QR code with an independent decoder, checking that each decoded URL verifies.
//!
//! ```text
//! cargo run --release -p suyuan-label-gen --example sample_pdfs -- [OUT_DIR] [--docs DIR]
//! ```
//!
//! Needs `pdftoppm` (Debian: poppler-utils) and `zbarimg` (Debian: zbar-tools), and a CJK font
//! (`SUYUAN_LABEL_FONT` or Debian's fonts-wqy-microhei). `--docs DIR` also renders the first page
//! of each layout there as `<layout>.png` (1-bit, 203 dpi).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};
use suyuan_label_gen::{
    run, verify, KeyId, LabelFont, LabelSerial, LabelSigningKey, LabelTemplate, MintRequest,
    PageLayout, QrImageMode, RunConfig, SheetOptions, Verdict, VerifyingKeySet, FONT_SETTING,
};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("/tmp/suyuan-label-samples");
    let mut docs = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--docs" => docs = Some(PathBuf::from(args.next().context("--docs needs a dir")?)),
            other => out = PathBuf::from(other),
        }
    }
    let configured = std::env::var_os(FONT_SETTING).map(PathBuf::from);
    let font = LabelFont::load(configured.as_deref())?;
    println!("font: {}", font.path().display());

    let key = LabelSigningKey::generate(KeyId::new(1)?);
    let keys: VerifyingKeySet = [key.verifying_key()].into_iter().collect();
    let template = LabelTemplate {
        product_name: "华宁柑橘 特级果".into(),
        fields: vec![
            "品牌：华宁橘乡".into(),
            "绿色食品 LB-18-2101234567".into(),
            "产地：云南省玉溪市华宁县".into(),
        ],
    };

    let runs = [
        (PageLayout::a4_3x8(), 48u64),
        (PageLayout::a4_4x10(), 80),
        (PageLayout::roll_50x30(), 6),
    ];
    for mode in [QrImageMode::Inline, QrImageMode::XObject] {
        for (layout, count) in runs.clone() {
            let name = layout.name.clone();
            let dir = out.join(format!("{name}-{mode:?}").to_lowercase());
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            let mut sheet = SheetOptions::new(layout);
            sheet.qr_image = mode;
            let config = RunConfig::new("trace.huaning.cn", sheet, template.clone());
            let first = LabelSerial::new(key.id(), 1_000_000)?;
            let report = run(
                &config,
                &MintRequest {
                    first,
                    count,
                    out_dir: dir.clone(),
                },
                &key,
                &font,
                &|_| (),
            )?;
            let expected: BTreeSet<LabelSerial> = (0..count)
                .map(|i| LabelSerial::new(key.id(), first.sequence() + i))
                .collect::<Result<_, _>>()?;

            let mut decoded = BTreeSet::new();
            for pdf in &report.files {
                let prefix = dir.join("page");
                let status = Command::new("pdftoppm")
                    .args(["-r", "203", "-gray", "-png"])
                    .arg(pdf)
                    .arg(&prefix)
                    .status()
                    .context("running pdftoppm (Debian package poppler-utils)")?;
                ensure!(status.success(), "pdftoppm failed on {}", pdf.display());
            }
            let mut pngs: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "png"))
                .collect();
            pngs.sort();
            for png in &pngs {
                for url in zbar(png)? {
                    match verify(&url, &keys) {
                        Verdict::Genuine { serial, .. } => {
                            ensure!(decoded.insert(serial), "{serial} decoded twice");
                        }
                        other => bail!("{}: {url} → {other:?}", png.display()),
                    }
                }
            }
            ensure!(
                decoded == expected,
                "{name}: decoded {} of {} codes",
                decoded.len(),
                expected.len()
            );
            println!(
            "{name} ({mode:?} images): {count} labels, {} file(s), {} pages rendered at 203 dpi, all {} QR codes \
             decoded by zbarimg and genuine; QR version {}, {} bytes ({:.0} per label)",
            report.files.len(),
            pngs.len(),
            decoded.len(),
            report.qr_version,
            report.pdf_bytes,
            report.pdf_bytes as f64 / count as f64
        );
            if let (Some(docs), QrImageMode::Inline) = (&docs, mode) {
                std::fs::create_dir_all(docs)?;
                // First page, 1-bit at 203 dpi: what a thermal printer makes of it; a small file.
                let target = docs.join(format!("{name}.png"));
                let status = Command::new("pdftoppm")
                    .args([
                        "-r",
                        "203",
                        "-mono",
                        "-png",
                        "-f",
                        "1",
                        "-l",
                        "1",
                        "-singlefile",
                    ])
                    .arg(&report.files[0])
                    .arg(target.with_extension(""))
                    .status()?;
                ensure!(status.success(), "pdftoppm failed");
                println!("  first page → {}", target.display());
            }
        }
    }
    Ok(())
}

/// Every QR code zbarimg finds in `png`.
fn zbar(png: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(png)
        .output()
        .context("running zbarimg (Debian package zbar-tools)")?;
    // zbarimg exits 4 when an image has no code; that is reported as a count mismatch above.
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}
