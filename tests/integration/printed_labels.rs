//! Printed labels scan back: a run of each layout, rendered as a thermal printer would print it and
//! read by an independent decoder, yields every label of the manifest exactly once, genuine.
//!
//! The pages go through `pdftoppm -r 203 -mono` (203 dpi is the thermal printers' resolution, and
//! 1-bit is what they print: no grey to help the decoder) and `zbarimg`, which is not the decoder
//! label-gen's unit tests use. No server and no database: it runs `suyuan_label_gen::run` as the
//! command line does. Both tools and a CJK font are required when `CI` or
//! `SUYUAN_REQUIRE_TOOLS` is set; elsewhere the test says why it is skipped and passes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use suyuan_label_gen::{
    run, verify, KeyId, LabelFont, LabelSerial, LabelSigningKey, LabelTemplate, MintRequest,
    PageLayout, RunConfig, SheetOptions, Verdict, VerifyingKeySet, FONT_SETTING,
};

const HOST: &str = "trace.huaning.cn";

/// What the test needs from the machine, or why it cannot run.
fn prerequisites() -> Result<LabelFont, String> {
    let mut missing = Vec::new();
    for (tool, package) in [("pdftoppm", "poppler-utils"), ("zbarimg", "zbar-tools")] {
        // Both print their usage for -h; only a missing program fails to start.
        if Command::new(tool).arg("-h").output().is_err() {
            missing.push(format!("{tool} (Debian package {package})"));
        }
    }
    let configured = std::env::var_os(FONT_SETTING).map(PathBuf::from);
    let font = LabelFont::load(configured.as_deref());
    if let Err(e) = &font {
        missing.push(format!("a CJK font: {e}"));
    }
    match font {
        Ok(font) if missing.is_empty() => Ok(font),
        _ => Err(missing.join("; ")),
    }
}

/// The font, or `None` after saying why the test is skipped; panics where the tools are required.
fn font_or_skip(test: &str) -> Option<LabelFont> {
    match prerequisites() {
        Ok(font) => Some(font),
        Err(missing) => {
            let required = ["CI", "SUYUAN_REQUIRE_TOOLS"]
                .into_iter()
                .find(|v| std::env::var_os(v).is_some());
            if let Some(setting) = required {
                panic!("{test}: {setting} is set, so these are required but missing: {missing}");
            }
            // Straight to stderr, past the test harness's capture, so that a skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: missing {missing} (set CI or SUYUAN_REQUIRE_TOOLS to make this a failure)"
            );
            None
        }
    }
}

/// One manifest row.
#[derive(Debug)]
struct Row {
    serial: LabelSerial,
    short_code: String,
    url: String,
    file: String,
}

fn read_manifest(path: &Path) -> anyhow::Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("serial,short_code,url,file"));
    lines
        .map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!(cols.len(), 4, "{line}");
            Ok(Row {
                serial: LabelSerial::parse(cols[0]).with_context(|| line.to_owned())?,
                short_code: cols[1].to_owned(),
                url: cols[2].to_owned(),
                file: cols[3].to_owned(),
            })
        })
        .collect()
}

/// Renders every page of `pdf` 1-bit at 203 dpi into `dir` and returns the page images in order.
fn render(pdf: &Path, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let stem = file_name(pdf)?.trim_end_matches(".pdf").to_owned();
    let prefix = dir.join(&stem);
    let status = Command::new("pdftoppm")
        .args(["-r", "203", "-mono"])
        .arg(pdf)
        .arg(&prefix)
        .status()
        .context("running pdftoppm")?;
    assert!(status.success(), "pdftoppm failed on {}", pdf.display());
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    pages.retain(|p| {
        p.extension().is_some_and(|e| e == "pbm")
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{stem}-")))
    });
    pages.sort();
    assert!(
        !pages.is_empty(),
        "pdftoppm wrote no pages for {}",
        pdf.display()
    );
    Ok(pages)
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    Ok(path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?
        .to_string_lossy()
        .into_owned())
}

/// Every QR code zbarimg reads in `image`, as the text it carries.
fn zbar(image: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(image)
        .output()
        .context("running zbarimg")?;
    // zbarimg exits 4 when it finds no code; the count check below reports that page's labels.
    assert!(
        matches!(out.status.code(), Some(0 | 4)),
        "zbarimg failed on {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Mints `count` labels in `layout` with a fresh key, renders and scans every page, and checks
/// the scans against the manifest.
fn scan_a_printed_run(
    layout: PageLayout,
    count: u64,
    labels_per_file: usize,
) -> anyhow::Result<()> {
    let test = format!("printed {} labels scan back", layout.name);
    let Some(font) = font_or_skip(&test) else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let key = LabelSigningKey::generate(KeyId::new(7)?);
    let keys: VerifyingKeySet = [key.verifying_key()].into_iter().collect();
    let template = LabelTemplate {
        product_name: "华宁柑橘 特级果".into(),
        fields: vec![
            "品牌：华宁橘乡".into(),
            "绿色食品 LB-18-2101234567".into(),
            "产地：云南省玉溪市华宁县".into(),
        ],
    };
    let mut config = RunConfig::new(HOST, SheetOptions::new(layout.clone()), template);
    config.labels_per_file = labels_per_file;
    let request = MintRequest {
        first: LabelSerial::new(key.id(), 4_200_000)?,
        count,
        out_dir: dir.path().join("run"),
    };
    let report = run(&config, &request, &key, &font, &|_| ())?;
    assert_eq!(report.labels, count);
    assert!(report.files.len() > 1, "the run should span several files");

    let rows = read_manifest(report.manifest.as_deref().context("no manifest")?)?;
    assert_eq!(rows.len() as u64, count);

    // Serial → (URL scanned, file it was printed in), each serial at most once.
    let mut scanned: BTreeMap<LabelSerial, (String, String)> = BTreeMap::new();
    let pages_dir = dir.path().join("pages");
    std::fs::create_dir(&pages_dir)?;
    for pdf in &report.files {
        let file = file_name(pdf)?;
        for page in render(pdf, &pages_dir)? {
            for content in zbar(&page)? {
                let serial = match verify(&content, &keys) {
                    Verdict::Genuine { serial, key_id } => {
                        assert_eq!(key_id, key.id());
                        serial
                    }
                    other => panic!("{}: {content} → {other:?}", page.display()),
                };
                let previous = scanned.insert(serial, (content, file.clone()));
                assert!(previous.is_none(), "{serial} scanned twice");
            }
        }
    }

    for row in &rows {
        let (content, file) = scanned
            .get(&row.serial)
            .unwrap_or_else(|| panic!("{} ({}) was not scanned", row.serial, row.short_code));
        assert_eq!(row.short_code, row.serial.grouped());
        assert_eq!(&row.file, file, "{} is in another file", row.serial);
        // The QR carries `HTTPS://HOST/` in upper case (alphanumeric mode); the manifest has the
        // link as people see it. Scheme and host compare without case, the path exactly.
        let (scanned_base, scanned_path) = split_path(content);
        let (manifest_base, manifest_path) = split_path(&row.url);
        assert!(
            scanned_base.eq_ignore_ascii_case(manifest_base),
            "{content} vs {}",
            row.url
        );
        assert_eq!(scanned_path, manifest_path);
        assert!(matches!(
            verify(&row.url, &keys),
            Verdict::Genuine { serial, .. } if serial == row.serial
        ));
    }
    let manifest_serials: Vec<LabelSerial> = rows.iter().map(|r| r.serial).collect();
    let scanned_serials: Vec<LabelSerial> = scanned.keys().copied().collect();
    let mut expected = manifest_serials.clone();
    expected.sort();
    assert_eq!(
        scanned_serials, expected,
        "scanned serials differ from the manifest"
    );
    Ok(())
}

/// `scheme://host` and the path after it.
fn split_path(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let slash = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url.split_at(slash)
}

#[test]
fn a4_3x8_labels_scan_back_from_the_printed_sheets() -> anyhow::Result<()> {
    scan_a_printed_run(PageLayout::a4_3x8(), 50, 24)
}

#[test]
fn a4_4x10_labels_scan_back_from_the_printed_sheets() -> anyhow::Result<()> {
    scan_a_printed_run(PageLayout::a4_4x10(), 50, 40)
}

#[test]
fn roll_50x30_labels_scan_back_from_the_printed_roll() -> anyhow::Result<()> {
    scan_a_printed_run(PageLayout::roll_50x30(), 30, 12)
}
