//! A label run end to end: sign, encode, lay out and write bounded PDF files and a manifest.
//!
//! This is the library's entry point ([`run`]) for the command line, the API's background job and
//! the benchmark. It does not allocate serials: the caller reserves a contiguous range (in the
//! database, so that runs on several replicas never overlap) and passes its first serial and count.
//!
//! Why it is shaped this way:
//!
//! - **Files are independent**, so the run is split into file-sized chunks and worker threads take
//!   chunks in order; each worker signs, encodes, lays out and writes its chunk. The font subset
//!   and the label geometry are made once per run and shared.
//! - **Memory stays bounded** by the file size (labels per file × workers), whatever the run size.
//! - **Files appear complete or not at all**: each is written as `*.part` and renamed.
//! - **The manifest is in serial order** (the main thread reorders what the workers send), one
//!   row per label: serial, short code, URL, file.
//! - **Time is measured per phase** (summed over workers), so a slow phase is visible.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::code::LabelCode;
use crate::pdf::{LabelFont, LabelLayout, LabelTemplate, SheetOptions};
use crate::qr::{MaskChoice, QrEncoder, QrMatrix};
use crate::serial::{LabelSerial, MAX_SEQUENCE};
use crate::sign::LabelSigningKey;
use crate::Error;

/// How a run is produced: host, look, file size, parallelism.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Host name in the label URL (e.g. `trace.example.cn`).
    pub host: String,
    /// Page layout and print settings.
    pub sheet: SheetOptions,
    /// Product name and fields shown on every label of the run.
    pub template: LabelTemplate,
    /// Upper bound on labels per PDF file (rounded down to whole pages, at least one page).
    pub labels_per_file: usize,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// QR mask choice.
    pub mask: MaskChoice,
    /// File names are `<stem>-0001.pdf`, `<stem>-0002.pdf`, … and `<stem>-manifest.csv`.
    pub file_stem: String,
    /// Whether to write the CSV manifest.
    pub write_manifest: bool,
}

impl RunConfig {
    /// Defaults for `host` and `sheet`: 2,400 labels per file, one worker per core, the default mask.
    pub fn new(host: impl Into<String>, sheet: SheetOptions, template: LabelTemplate) -> Self {
        Self {
            host: host.into(),
            sheet,
            template,
            labels_per_file: 2_400,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mask: MaskChoice::default(),
            file_stem: "labels".into(),
            write_manifest: true,
        }
    }
}

/// Which labels to mint and where to put the files.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// First serial of the reserved range.
    pub first: LabelSerial,
    /// Number of labels (consecutive sequence numbers from `first`).
    pub count: u64,
    /// Output directory (created if missing).
    pub out_dir: PathBuf,
}

/// Time spent per phase, summed over worker threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Ed25519 signing.
    pub sign: Duration,
    /// QR encoding (segments, error correction, mask) and 1-bit packing.
    pub encode: Duration,
    /// Adding labels to PDF pages, compressing each page as it fills.
    pub layout: Duration,
    /// Ending the PDFs (page tree, cross-reference stream) and writing them to disk.
    pub write: Duration,
    /// Writing the manifest (main thread).
    pub manifest: Duration,
}

impl PhaseTimes {
    fn add(&mut self, other: &PhaseTimes) {
        self.sign += other.sign;
        self.encode += other.encode;
        self.layout += other.layout;
        self.write += other.write;
        self.manifest += other.manifest;
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct MintReport {
    /// The PDF files, in serial order.
    pub files: Vec<PathBuf>,
    /// The manifest, if written.
    pub manifest: Option<PathBuf>,
    /// Labels minted.
    pub labels: u64,
    /// Total size of the PDF files in bytes.
    pub pdf_bytes: u64,
    /// The QR version of every code in the run.
    pub qr_version: u8,
    /// Time per phase, summed over workers.
    pub phases: PhaseTimes,
    /// Wall-clock time of the whole run.
    pub wall: Duration,
}

/// Progress of a run, reported after each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Labels written so far.
    pub done: u64,
    /// Labels in the run.
    pub total: u64,
}

struct ChunkDone {
    index: usize,
    labels: u64,
    bytes: u64,
    manifest: Vec<u8>,
    times: PhaseTimes,
}

/// Mints `request.count` labels from `request.first`, signed with `key`, into PDF files.
///
/// `progress` is called from the calling thread after each file is complete. On an error the
/// run stops taking new files and returns the first error; files already complete stay in
/// `out_dir` (the caller decides whether to remove the run).
pub fn run(
    config: &RunConfig,
    request: &MintRequest,
    key: &LabelSigningKey,
    font: &LabelFont,
    progress: &dyn Fn(Progress),
) -> Result<MintReport, Error> {
    let started = Instant::now();
    if request.first.key_id() != key.id() {
        return Err(Error::KeyIdMismatch {
            serial_key: request.first.key_id(),
            signing_key: key.id(),
        });
    }
    let fits = request
        .first
        .sequence()
        .checked_add(request.count.saturating_sub(1))
        .is_some_and(|last| last <= MAX_SEQUENCE);
    if !fits {
        return Err(Error::Serial(crate::SerialError::SequenceOutOfRange(
            request.first.sequence().saturating_add(request.count),
        )));
    }
    let encoder = QrEncoder::new(&config.host, config.mask)?;
    let layout = LabelLayout::new(font, &config.sheet, &config.template, encoder.size())?;
    let per_page = config.sheet.layout.labels_per_page();
    let per_file = (config.labels_per_file / per_page).max(1) * per_page;
    let chunks = usize::try_from(request.count.div_ceil(per_file as u64))
        .map_err(|_| Error::InvalidLayout("run too large".into()))?;

    std::fs::create_dir_all(&request.out_dir).map_err(|source| Error::Io {
        action: "creating directory",
        path: request.out_dir.clone(),
        source,
    })?;
    let file_name = |index: usize| format!("{}-{:04}.pdf", config.file_stem, index + 1);
    let manifest_path = request
        .out_dir
        .join(format!("{}-manifest.csv", config.file_stem));
    let mut manifest = if config.write_manifest {
        let file = File::create(&manifest_path).map_err(|source| Error::Io {
            action: "creating",
            path: manifest_path.clone(),
            source,
        })?;
        let mut w = BufWriter::new(file);
        w.write_all(b"serial,short_code,url,file\n")
            .map_err(|source| Error::Io {
                action: "writing",
                path: manifest_path.clone(),
                source,
            })?;
        Some(w)
    } else {
        None
    };

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Result<ChunkDone, Error>>();
    let threads = config.threads.clamp(1, chunks.max(1));

    let mut phases = PhaseTimes::default();
    let mut pdf_bytes = 0u64;
    let mut done = 0u64;
    let mut first_error = None;

    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, failed, encoder, layout) = (&next, &failed, &encoder, &layout);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= chunks || failed.load(Ordering::Relaxed) {
                    break;
                }
                let start = index as u64 * per_file as u64;
                let count = (request.count - start).min(per_file as u64);
                let name = file_name(index);
                let result = mint_chunk(&ChunkJob {
                    config,
                    key,
                    encoder,
                    layout,
                    first: request.first.sequence() + start,
                    count,
                    index,
                    path: request.out_dir.join(&name),
                    name: &name,
                });
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                if tx.send(result).is_err() {
                    break;
                }
            });
        }
        drop(tx);

        let mut pending: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        let mut next_manifest = 0usize;
        for result in rx {
            match result {
                Ok(chunk) => {
                    phases.add(&chunk.times);
                    pdf_bytes += chunk.bytes;
                    done += chunk.labels;
                    pending.insert(chunk.index, chunk.manifest);
                    let t = Instant::now();
                    while let Some(rows) = pending.remove(&next_manifest) {
                        if let Some(w) = manifest.as_mut() {
                            if let Err(source) = w.write_all(&rows) {
                                failed.store(true, Ordering::Relaxed);
                                first_error.get_or_insert(Error::Io {
                                    action: "writing",
                                    path: manifest_path.clone(),
                                    source,
                                });
                            }
                        }
                        next_manifest += 1;
                    }
                    phases.manifest += t.elapsed();
                    progress(Progress {
                        done,
                        total: request.count,
                    });
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    });

    if let Some(e) = first_error {
        return Err(e);
    }
    let manifest = match manifest {
        Some(mut w) => {
            let t = Instant::now();
            w.flush().map_err(|source| Error::Io {
                action: "writing",
                path: manifest_path.clone(),
                source,
            })?;
            phases.manifest += t.elapsed();
            Some(manifest_path)
        }
        None => None,
    };
    Ok(MintReport {
        files: (0..chunks)
            .map(|i| request.out_dir.join(file_name(i)))
            .collect(),
        manifest,
        labels: done,
        pdf_bytes,
        qr_version: encoder.version(),
        phases,
        wall: started.elapsed(),
    })
}

struct ChunkJob<'a> {
    config: &'a RunConfig,
    key: &'a LabelSigningKey,
    encoder: &'a QrEncoder,
    layout: &'a LabelLayout,
    first: u64,
    count: u64,
    index: usize,
    path: PathBuf,
    name: &'a str,
}

fn mint_chunk(job: &ChunkJob<'_>) -> Result<ChunkDone, Error> {
    let mut times = PhaseTimes::default();
    let key_id = job.key.id();

    let t = Instant::now();
    let codes = (job.first..job.first + job.count)
        .map(|seq| LabelCode::mint(job.key, LabelSerial::new(key_id, seq)?))
        .collect::<Result<Vec<_>, Error>>()?;
    times.sign = t.elapsed();

    let t = Instant::now();
    let matrices = codes
        .iter()
        .map(|c| job.encoder.encode(c))
        .collect::<Result<Vec<QrMatrix>, Error>>()?;
    times.encode = t.elapsed();

    let t = Instant::now();
    let mut sheet = job.layout.start_sheet()?;
    for (code, matrix) in codes.iter().zip(&matrices) {
        sheet.add_label(code.serial(), matrix)?;
    }
    drop(matrices);
    times.layout = t.elapsed();

    let t = Instant::now();
    let bytes = sheet.finish()?;
    write_atomically(&job.path, &bytes)?;
    times.write = t.elapsed();

    let mut manifest = Vec::new();
    if job.config.write_manifest {
        manifest.reserve(codes.len() * 220);
        for code in &codes {
            let serial = code.serial();
            // Writing into a Vec cannot fail.
            let _ = writeln!(
                manifest,
                "{serial},{serial:#},{},{}",
                code.to_url(&job.config.host),
                job.name
            );
        }
    }
    Ok(ChunkDone {
        index: job.index,
        labels: job.count,
        bytes: bytes.len() as u64,
        manifest,
        times,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let part = path.with_extension("pdf.part");
    let io = |action, source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    };
    std::fs::write(&part, bytes).map_err(|e| io("writing", e))?;
    std::fs::rename(&part, path).map_err(|e| io("renaming into place", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::fixtures::{font, template};
    use crate::pdf::PageLayout;
    use crate::serial::KeyId;
    use crate::sign::tests::test_key;
    use crate::{verify, Verdict, VerifyingKeySet};
    use std::cell::Cell;

    #[test]
    fn a_run_writes_bounded_files_and_an_ordered_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(3, 3);
        let mut config = RunConfig::new(
            "trace.example.cn",
            SheetOptions::new(PageLayout::a4_4x10()),
            template(),
        );
        config.labels_per_file = 100; // rounded down to 80 (two pages of 40)
        config.threads = 2;
        let request = MintRequest {
            first: LabelSerial::new(KeyId::new(3).unwrap(), 1_000).unwrap(),
            count: 250,
            out_dir: dir.path().join("run"),
        };
        let calls = Cell::new(0);
        let report = run(&config, &request, &key, &font(), &|p| {
            calls.set(calls.get() + 1);
            assert!(p.done <= p.total);
        })
        .unwrap();
        assert_eq!(report.labels, 250);
        assert_eq!(report.files.len(), 4); // 80 + 80 + 80 + 10
        assert_eq!(calls.get(), 4);
        assert_eq!(report.qr_version, 6);
        let total: u64 = report
            .files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum();
        assert_eq!(total, report.pdf_bytes);
        for f in &report.files {
            assert!(std::fs::read(f).unwrap().starts_with(b"%PDF-"));
        }

        let keys: VerifyingKeySet = [key.verifying_key()].into_iter().collect();
        let manifest = std::fs::read_to_string(report.manifest.unwrap()).unwrap();
        let rows: Vec<&str> = manifest.lines().skip(1).collect();
        assert_eq!(rows.len(), 250);
        for (i, row) in rows.iter().enumerate() {
            let cols: Vec<&str> = row.split(',').collect();
            let serial = LabelSerial::parse(cols[0]).unwrap();
            assert_eq!(serial.sequence(), 1_000 + i as u64);
            assert_eq!(cols[1], serial.grouped());
            assert_eq!(cols[3], format!("labels-{:04}.pdf", i / 80 + 1));
            assert_eq!(
                verify(cols[2], &keys),
                Verdict::Genuine {
                    serial,
                    key_id: serial.key_id()
                }
            );
        }
    }

    #[test]
    fn a_run_refuses_a_range_past_the_sequence_space_or_of_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(3, 3);
        let config = RunConfig::new(
            "a.cn",
            SheetOptions::new(PageLayout::roll_50x30()),
            template(),
        );
        let mut request = MintRequest {
            first: LabelSerial::new(KeyId::new(3).unwrap(), MAX_SEQUENCE - 1).unwrap(),
            count: 5,
            out_dir: dir.path().to_owned(),
        };
        assert!(matches!(
            run(&config, &request, &key, &font(), &|_| ()),
            Err(Error::Serial(_))
        ));
        request.first = LabelSerial::new(KeyId::new(4).unwrap(), 1).unwrap();
        assert!(matches!(
            run(&config, &request, &key, &font(), &|_| ()),
            Err(Error::KeyIdMismatch { .. })
        ));
    }
}
