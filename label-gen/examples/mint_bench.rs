//! Throughput of a label run end to end, and of its parts.
//!
//! ```text
//! cargo run --release -p suyuan-label-gen --example mint_bench -- \
//!     [--count 50000] [--layout a4-3x8|a4-4x10|roll-50x30] [--per-file 2400] [--threads N] \
//!     [--host trace.huaning.cn] [--image inline|xobject] [--out /tmp/suyuan-mint-bench] \
//!     [--keep] [--no-micro] [--peer] [--peer-count 10000] [--peer-venv /var/tmp/suyuan-peer-venv]
//! ```
//!
//! Prints labels per second end to end, seconds per phase (summed over worker threads), bytes per
//! label, peak memory (VmHWM), the QR version, raw Ed25519 signing speed on one core and the ratio,
//! and QR encoding speed with a chosen mask versus the all-masks search.
//!
//! `--peer` (or `--peer-count N` with N > 0; 10,000 labels by default) also runs the same job
//! scripted in Python (`bench/peer_mint.py`: PyNaCl, segno, reportlab, A4 3×8, one process) in a
//! virtual environment made with the pinned `bench/requirements.txt` from PyPI, after the Rust run,
//! checks a few of its labels with this crate's verifier, and puts its figures beside Rust's. If
//! Python, venv or pip is missing the bench says why and goes on. A summary table closes the output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use suyuan_label_gen::{
    run, verify, KeyId, LabelCode, LabelFont, LabelSerial, LabelSigningKey, LabelTemplate,
    MaskChoice, MintRequest, PageLayout, PublicKeysDocument, PublishedKey, QrEncoder, QrImageMode,
    RunConfig, SheetOptions, Verdict, FONT_SETTING,
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
    peer_count: u64,
    peer_venv: PathBuf,
}

/// Labels the Python peer mints unless `--peer-count` says otherwise.
const PEER_DEFAULT_COUNT: u64 = 10_000;

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
        peer_count: 0,
        peer_venv: PathBuf::from("/var/tmp/suyuan-peer-venv"),
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
            "--peer" => a.peer_count = PEER_DEFAULT_COUNT,
            "--peer-count" => a.peer_count = value()?.parse()?,
            "--peer-venv" => a.peer_venv = PathBuf::from(value()?),
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
    if args.micro {
        println!(
            "QR encode per code  {:.1} µs with mask 4, {:.1} µs with the all-masks search ({:.0}×)",
            qr_us[0],
            qr_us[1],
            qr_us[1] / qr_us[0]
        );
    } else {
        println!("QR encode per code  not measured (--no-micro)");
    }

    let peer = if args.peer_count > 0 {
        println!();
        println!(
            "python peer         {} labels, A4 3×8, one process (bench/peer_mint.py)",
            args.peer_count
        );
        match run_peer(&args, font.path()) {
            Ok(peer) => {
                println!(
                    "python labels/s     {:.0} end to end ({:.1} s, {:.0} bytes per label, QR version {}, mask: {}); all {} labels verified genuine here",
                    peer.labels_per_s,
                    peer.seconds,
                    peer.bytes_per_label,
                    peer.qr_versions,
                    peer.mask,
                    peer.verified
                );
                println!(
                    "speed ratio         Rust {labels_per_s:.0} labels/s ÷ Python {:.0} labels/s = {:.0}×",
                    peer.labels_per_s,
                    labels_per_s / peer.labels_per_s
                );
                Some(peer)
            }
            Err(e) => {
                println!("python peer skipped: {e:#}");
                None
            }
        }
    } else {
        None
    };

    let rust = Column {
        labels: report.labels as f64,
        labels_per_s,
        phases: [
            p.sign.as_secs_f64(),
            p.encode.as_secs_f64(),
            p.layout.as_secs_f64(),
            p.write.as_secs_f64(),
            p.manifest.as_secs_f64(),
        ],
        bytes_per_label: report.pdf_bytes as f64 / report.labels.max(1) as f64,
        peak_mb: vm_hwm_mb(),
        qr_version: report.qr_version.to_string(),
        raw_sign_per_s,
    };
    print_summary(&args, config.threads, &rust, peer.as_ref());

    if !args.keep {
        std::fs::remove_dir_all(&args.out)?;
    }
    std::hint::black_box(sink);
    Ok(())
}

/// One side of the summary table.
struct Column {
    labels: f64,
    labels_per_s: f64,
    /// Seconds for sign, encode QR, lay out, write PDF, manifest.
    phases: [f64; 5],
    bytes_per_label: f64,
    peak_mb: Option<f64>,
    qr_version: String,
    raw_sign_per_s: f64,
}

/// What the Python peer did, from the JSON line it prints last.
struct PeerRun {
    column: Column,
    labels_per_s: f64,
    seconds: f64,
    bytes_per_label: f64,
    qr_versions: String,
    mask: String,
    verified: usize,
}

fn print_summary(args: &Args, threads: usize, rust: &Column, peer: Option<&PeerRun>) {
    let na = || "–".to_owned();
    let peer_col = peer.map(|p| &p.column);
    let cell = |f: &dyn Fn(&Column) -> String| peer_col.map_or_else(na, f);
    let mb = |v: Option<f64>| v.map_or_else(na, |v| format!("{v:.0}"));
    let ratio = |r: f64, p: f64| match r / p {
        x if x >= 0.1 => format!("{x:.2}"),
        x => format!("{x:.4}"),
    };
    let mut rows: Vec<(String, String, String)> = vec![
        (
            "labels".into(),
            format!("{:.0}", rust.labels),
            cell(&|c| format!("{:.0}", c.labels)),
        ),
        (
            "labels/s end to end".into(),
            format!("{:.0}", rust.labels_per_s),
            cell(&|c| format!("{:.0}", c.labels_per_s)),
        ),
    ];
    let phase_names = ["sign", "encode QR", "lay out", "write PDF", "manifest"];
    for (i, name) in phase_names.iter().enumerate() {
        rows.push((
            format!("{name} s"),
            format!("{:.2}", rust.phases[i]),
            cell(&|c| format!("{:.2}", c.phases[i])),
        ));
    }
    rows.extend([
        (
            "bytes/label".into(),
            format!("{:.0}", rust.bytes_per_label),
            cell(&|c| format!("{:.0}", c.bytes_per_label)),
        ),
        (
            "peak memory MB".into(),
            mb(rust.peak_mb),
            cell(&|c| mb(c.peak_mb)),
        ),
        (
            "QR version".into(),
            rust.qr_version.clone(),
            cell(&|c| c.qr_version.clone()),
        ),
        (
            "raw Ed25519 sig/s, one core".into(),
            format!("{:.0}", rust.raw_sign_per_s),
            cell(&|c| format!("{:.0}", c.raw_sign_per_s)),
        ),
        (
            "labels/s ÷ raw sig/s".into(),
            ratio(rust.labels_per_s, rust.raw_sign_per_s),
            cell(&|c| ratio(c.labels_per_s, c.raw_sign_per_s)),
        ),
        (
            "labels/s ÷ Python labels/s".into(),
            cell(&|c| format!("{:.0}×", rust.labels_per_s / c.labels_per_s)),
            peer_col.map_or_else(na, |_| "1×".into()),
        ),
    ]);

    println!();
    println!(
        "summary ({}; phase seconds are CPU time summed over Rust's {threads} threads, wall time in Python's one process)",
        args.layout
    );
    let rust_head = format!("Rust, {threads} threads");
    let peer_head = if peer.is_some() {
        "Python peer, 1 process"
    } else if args.peer_count > 0 {
        "Python peer (did not run)"
    } else {
        "Python peer (--peer)"
    };
    println!("| {:<28} | {:>18} | {:>26} |", "", rust_head, peer_head);
    println!("|{}|{}|{}|", "-".repeat(30), "-".repeat(20), "-".repeat(28));
    for (name, r, p) in rows {
        println!("| {name:<28} | {r:>18} | {p:>26} |");
    }
}

/// Makes (once) a virtual environment with the pinned requirements, runs the peer, and verifies
/// every label of its manifest with this crate: the peer must have done the same job.
fn run_peer(args: &Args, font: &Path) -> anyhow::Result<PeerRun> {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    let python = args.peer_venv.join("bin").join("python");
    if !python.exists() {
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&args.peer_venv)
            .output()
            .context("python3 is not available (Debian: python3, python3-venv)")?;
        ensure!(
            out.status.success(),
            "python3 -m venv {} failed (Debian: python3-venv): {}",
            args.peer_venv.display(),
            tail(&out.stderr)
        );
    }
    let started = Instant::now();
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(bench.join("requirements.txt"))
        .output()
        .context("running pip in the peer's virtual environment")?;
    ensure!(
        out.status.success(),
        "pip install -r bench/requirements.txt failed: {}",
        tail(&out.stderr)
    );
    println!(
        "python environment  {} (requirements checked in {:.1} s)",
        args.peer_venv.display(),
        started.elapsed().as_secs_f64()
    );

    let out = Command::new(&python)
        .arg(bench.join("peer_mint.py"))
        .arg("--count")
        .arg(args.peer_count.to_string())
        .arg("--out")
        .arg(args.out.join("peer"))
        .arg("--host")
        .arg(&args.host)
        .arg("--font")
        .arg(font)
        .output()
        .context("running bench/peer_mint.py")?;
    ensure!(
        out.status.success(),
        "bench/peer_mint.py failed: {}",
        tail(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout)?;
    let line = stdout.lines().last().context("the peer printed nothing")?;
    let json: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("the peer's last line: {line}"))?;
    let num = |key: &str| {
        json.get(key)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("the peer's output has no number {key:?}"))
    };
    let phases = json.get("phases_s").context("no phases_s")?;
    let phase = |key: &str| {
        phases
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("no phase {key:?}"))
    };
    let text = |key: &str| json.get(key).map_or_else(String::new, ToString::to_string);

    // The peer's labels must verify here, with its public key read as a verifier reads the
    // published keys document.
    let published = PublicKeysDocument {
        keys: vec![PublishedKey {
            key_id: u8::try_from(num("key_id")? as u64)?,
            algorithm: "Ed25519".into(),
            public_key: text("public_key_hex").trim_matches('"').to_owned(),
            created_at: String::new(),
            retired_at: None,
        }],
    };
    let keys = published.verifying_keys()?;
    let manifest = json
        .get("manifest")
        .and_then(|v| v.as_str())
        .context("no manifest")?;
    let mut verified = 0usize;
    for row in std::fs::read_to_string(manifest)?.lines().skip(1) {
        let mut cols = row.split(',');
        let (Some(serial), Some(short), Some(url)) = (cols.next(), cols.next(), cols.next()) else {
            bail!("peer manifest row {row:?}");
        };
        let serial = LabelSerial::parse(serial)?;
        ensure!(short == serial.grouped(), "peer short code {short:?}");
        match verify(url, &keys) {
            Verdict::Genuine { serial: s, .. } if s == serial => verified += 1,
            other => bail!("peer label {url} → {other:?}"),
        }
    }
    ensure!(
        verified as u64 == args.peer_count,
        "the peer's manifest has {verified} labels, not {}",
        args.peer_count
    );

    let qr_versions = json
        .get("qr_versions")
        .and_then(|v| v.as_array())
        .map(|v| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let column = Column {
        labels: num("labels")?,
        labels_per_s: num("labels_per_s")?,
        phases: [
            phase("sign")?,
            phase("encode")?,
            phase("layout")?,
            phase("write")?,
            phase("manifest")?,
        ],
        bytes_per_label: num("bytes_per_label")?,
        peak_mb: num("peak_rss_mb").ok(),
        qr_version: qr_versions.clone(),
        raw_sign_per_s: num("raw_sign_per_s")?,
    };
    Ok(PeerRun {
        labels_per_s: column.labels_per_s,
        seconds: num("seconds")?,
        bytes_per_label: column.bytes_per_label,
        qr_versions,
        mask: text("mask").trim_matches('"').to_owned(),
        verified,
        column,
    })
}

/// The last lines of a tool's error output, for a message.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn vm_hwm_mb() -> Option<f64> {
    let kb: f64 = vm_hwm()?.trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

fn vm_hwm() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
}
