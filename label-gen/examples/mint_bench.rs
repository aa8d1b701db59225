//! Throughput of a label run end to end, and of its parts.
//!
//! ```text
//! cargo run --release -p suyuan-label-gen --example mint_bench -- \
//!     [--count 50000] [--layout a4-3x8|a4-4x10|roll-50x30] [--per-file 2400] [--threads N] \
//!     [--host trace.huaning.cn] [--image inline|xobject] [--out /tmp/suyuan-mint-bench] \
//!     [--keep] [--no-micro]
//! ```
//!
//! Prints labels per second end to end, seconds per phase (summed over worker threads), bytes per
//! label, peak memory (VmHWM), the QR version, raw Ed25519 signing speed on one core and the ratio,
//! and QR encoding speed with a chosen mask versus the all-masks search.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use suyuan_label_gen::{
    run, KeyId, LabelCode, LabelFont, LabelSerial, LabelSigningKey, LabelTemplate, MaskChoice,
    MintRequest, PageLayout, QrEncoder, QrImageMode, RunConfig, SheetOptions, FONT_SETTING,
};

struct Args {
    count: u64,
    layout: String,
    per_file: usize,
    threads: Option<usize>,
    host: String,
    out: PathBuf,
    keep: bool,
    micro: bool,
    image: QrImageMode,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        count: 50_000,
        layout: "a4-3x8".into(),
        per_file: 2_400,
        threads: None,
        host: "trace.huaning.cn".into(),
        out: PathBuf::from("/tmp/suyuan-mint-bench"),
        keep: false,
        micro: true,
        image: QrImageMode::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => a.count = value()?.parse()?,
            "--layout" => a.layout = value()?,
            "--per-file" => a.per_file = value()?.parse()?,
            "--threads" => a.threads = Some(value()?.parse()?),
            "--host" => a.host = value()?,
            "--out" => a.out = PathBuf::from(value()?),
            "--keep" => a.keep = true,
            "--no-micro" => a.micro = false,
            "--image" => {
                a.image = match value()?.as_str() {
                    "inline" => QrImageMode::Inline,
                    "xobject" => QrImageMode::XObject,
                    other => anyhow::bail!("--image inline|xobject, not {other}"),
                }
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let configured = std::env::var_os(FONT_SETTING).map(PathBuf::from);
    let font = LabelFont::load(configured.as_deref())?;
    let key = LabelSigningKey::generate(KeyId::new(1)?);
    let layout = PageLayout::by_name(&args.layout).context("unknown layout")?;

    // Raw Ed25519 signing speed, one core.
    let n_raw = 20_000u64;
    let t = Instant::now();
    let mut sink = 0u8;
    for seq in 0..n_raw {
        sink ^= key.sign(LabelSerial::new(key.id(), seq)?)?.as_bytes()[0];
    }
    let raw_sign_per_s = n_raw as f64 / t.elapsed().as_secs_f64();

    // QR encoding: chosen mask vs the all-masks search, one core.
    let codes: Vec<LabelCode> = (0..2_000)
        .map(|seq| LabelCode::mint(&key, LabelSerial::new(key.id(), seq)?))
        .collect::<Result<_, _>>()?;
    let mut qr_us = [f64::NAN, f64::NAN];
    let masks = if args.micro {
        vec![MaskChoice::default(), MaskChoice::Best]
    } else {
        vec![]
    };
    for (i, mask) in masks.into_iter().enumerate() {
        let enc = QrEncoder::new(&args.host, mask)?;
        let t = Instant::now();
        for c in &codes {
            sink ^= enc.encode(c)?.version();
        }
        qr_us[i] = t.elapsed().as_secs_f64() * 1e6 / codes.len() as f64;
    }

    if args.out.exists() {
        std::fs::remove_dir_all(&args.out)?;
    }
    let template = LabelTemplate {
        product_name: "华宁柑橘 特级果".into(),
        fields: vec![
            "品牌：华宁橘乡".into(),
            "绿色食品 LB-18-2101234567".into(),
            "产地：云南省玉溪市华宁县".into(),
        ],
    };
    let mut sheet = SheetOptions::new(layout);
    sheet.qr_image = args.image;
    let mut config = RunConfig::new(args.host.clone(), sheet, template);
    config.labels_per_file = args.per_file;
    if let Some(t) = args.threads {
        config.threads = t;
    }
    let request = MintRequest {
        first: LabelSerial::new(key.id(), 1)?,
        count: args.count,
        out_dir: args.out.clone(),
    };
    let report = run(&config, &request, &key, &font, &|_| ())?;
    let manifest_bytes = match &report.manifest {
        Some(p) => std::fs::metadata(p)?.len(),
        None => 0,
    };

    let wall = report.wall.as_secs_f64();
    let labels_per_s = report.labels as f64 / wall;
    let p = report.phases;
    println!(
        "layout              {} ({} labels per file, {} threads, {:?} QR images)",
        args.layout, args.per_file, config.threads, args.image
    );
    println!("labels              {}", report.labels);
    println!("files               {}", report.files.len());
    println!("wall time           {wall:.2} s");
    println!("labels/s end to end {labels_per_s:.0}");
    println!(
        "phases (CPU s, summed over threads): sign {:.2}, encode QR {:.2}, lay out {:.2}, write PDF {:.2}, manifest {:.2}",
        p.sign.as_secs_f64(),
        p.encode.as_secs_f64(),
        p.layout.as_secs_f64(),
        p.write.as_secs_f64(),
        p.manifest.as_secs_f64()
    );
    println!(
        "PDF bytes           {} ({:.0} per label); manifest {} bytes",
        report.pdf_bytes,
        report.pdf_bytes as f64 / report.labels.max(1) as f64,
        manifest_bytes
    );
    println!(
        "peak RSS (VmHWM)    {}",
        vm_hwm().unwrap_or_else(|| "unknown".into())
    );
    println!(
        "QR version          {} (level M, host {:?})",
        report.qr_version, args.host
    );
    println!("raw Ed25519 signing {raw_sign_per_s:.0} signatures/s on one core");
    println!(
        "ratio               end-to-end labels/s ÷ raw one-core signatures/s = {:.2}",
        labels_per_s / raw_sign_per_s
    );
    println!(
        "QR encode per code  {:.1} µs with mask 4, {:.1} µs with the all-masks search ({:.0}×)",
        qr_us[0],
        qr_us[1],
        qr_us[1] / qr_us[0]
    );
    if !args.keep {
        std::fs::remove_dir_all(&args.out)?;
    }
    std::hint::black_box(sink);
    Ok(())
}

fn vm_hwm() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
}
