//! Scan page benchmark: the page a phone opens when it scans a label (`GET /<169 digits>`), under load,
//! beside nginx serving the same page as a static file.
//!
//! ```text
//! cargo bench -p suyuan-server --bench scan                      # SQLite
//! cargo bench -p suyuan-server --bench scan -- --backend both    # SQLite, then PostgreSQL
//! cargo bench -p suyuan-server --bench scan -- --backend postgres --seconds 20 --connections 128
//! ```
//!
//! For each backend the real binary is started as a child process (`suyuan serve --demo --no-gateway` on a
//! free loopback port, in a temporary data folder; PostgreSQL in a fresh schema, dropped at the end). The
//! demo mints 48 labels; the 24 of the first sheet are bound to a batch, so their pages show a genuine,
//! active label. Their paths are requested round-robin with `Accept-Language: zh-CN`, as a phone in China
//! would.
//!
//! - **Full load**: `wrk --threads 2 --connections 64` for `--seconds` after a 2 s warm-up (closed loop: each
//!   connection sends its next request when the previous one is answered). Scans per second and wrk's
//!   latency p50 / p99. Answers other than 200 are counted by a Lua `response` hook (the same script drives
//!   nginx, so both pay for it).
//! - **Paced**: 2,000 scans per second from an open-loop generator in this file: `--paced-connections`
//!   keep-alive connections, each request sent at its scheduled time, latency measured from that scheduled
//!   time (a late answer delays the connection's next request and the delay is counted, so a stall is
//!   not hidden by coordinated omission). The achieved rate is printed.
//! - **Served versus stored**: each page view is logged as a scan by the server's scan log, in batches,
//!   after the answer. After each phase the bench waits until the count of stored scans stops rising, then
//!   compares it with the 200 responses received. A scan is lost when fewer are stored than served. A few
//!   more may be stored than served: wrk drops the requests in flight when it stops (at most one per
//!   connection) although the server answered and logged them.
//! - **nginx**: Debian's `/usr/sbin/nginx` (2 workers, access log off, keep-alive without a request limit)
//!   serves the exact bytes the server returned for one of the labels, for every path, under the same wrk
//!   load. The ratio server ÷ nginx says how far a dynamic, logged page is from the cheapest possible
//!   answer on this machine (wrk shares the 2 cores with whichever server it measures).
//!
//! Targets on this 2-core machine, per backend: at least 5,000 scans per second at full load, p99 under
//! 50 ms at 2,000 scans per second (the rate achieved within 5 % of it), no scan lost (and no answer other
//! than 200).
//!
//! Needs `wrk` and `nginx` (`apt-get install wrk nginx-light`), a CJK font for the demo labels
//! (`fonts-wqy-microhei` or `SUYUAN_LABEL_FONT`), and PostgreSQL at `--postgres` for that backend.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use suyuan_core::db::{self, DatabaseUrl, PoolConfig};
use suyuan_core::store::scans;
use suyuan_core::Database;

/// Scans per second at full load.
const TARGET_RATE: f64 = 5_000.0;
/// p99 at the paced rate, in milliseconds.
const TARGET_P99_MS: f64 = 50.0;
/// Labels of the demo run bound to a batch (its first A4 sheet).
const ACTIVE_LABELS: usize = 24;
/// How long the server may take to seed the demo county and start answering.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the stored count may stay unchanged before it is taken as final.
const SETTLED_AFTER: Duration = Duration::from_secs(2);
/// The longest wait for the scan log to catch up after a phase.
const SETTLE_MAX: Duration = Duration::from_secs(60);
const NGINX: &str = "/usr/sbin/nginx";
const INSTALL: &str = "apt-get install wrk nginx-light";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendArg,
    /// Seconds of each measurement (full load, paced, nginx); each full-load run follows a 2 s warm-up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// wrk connections at full load.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Scans per second of the paced (open-loop) measurement.
    #[arg(long, default_value_t = 2_000)]
    paced_rate: u64,
    /// Keep-alive connections of the paced measurement.
    #[arg(long, default_value_t = 32)]
    paced_connections: usize,
    /// Seconds of warm-up before each full-load measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    #[arg(
        long,
        env = "SUYUAN_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Ignored (cargo bench passes it).
    #[arg(long)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    check_tools()?;
    let dir = tempfile::tempdir()?;
    let backends: &[Backend] = match args.backend {
        BackendArg::Sqlite => &[Backend::Sqlite],
        BackendArg::Postgres => &[Backend::Postgres],
        BackendArg::Both => &[Backend::Sqlite, Backend::Postgres],
    };
    println!(
        "wrk --threads {} --connections {} --duration {}s after {} s of warm-up; paced {} scans/s over {} connections (open loop) for {} s",
        args.threads, args.connections, args.seconds, args.warmup, args.paced_rate, args.paced_connections, args.seconds
    );

    let mut results = Vec::new();
    let mut page: Option<Page> = None;
    let mut paths = Vec::new();
    for &backend in backends {
        println!("\n{}:", backend.title());
        let (result, fetched, active) = run_backend(&args, backend, dir.path())?;
        page.get_or_insert(fetched);
        if paths.is_empty() {
            paths = active;
        }
        results.push(result);
    }
    let page = page.context("no backend measured")?;

    println!("\nnginx serving the page as a file:");
    let nginx = {
        let server = Nginx::start(dir.path(), &page)?;
        let script = WrkScript::write(dir.path(), &paths)?;
        wrk(&args, server.port, &script, args.warmup)?;
        let run = wrk(&args, server.port, &script, args.seconds)?;
        println!("  {}", run.describe());
        run
    };

    summary(&args, &page, &results, &nginx);
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "✔"
    } else {
        "✘"
    }
}

// ---------------------------------------------------------------------------------------------------
// One backend

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn title(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Requests answered and scans stored over one phase.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    /// 200 responses received.
    served: u64,
    /// Scans stored (`None`: the count could not be read).
    stored: Option<u64>,
    non_200: u64,
    /// Connection, read, write errors and timeouts.
    errors: u64,
}

impl Tally {
    fn lost(&self) -> Option<u64> {
        self.stored.map(|s| self.served.saturating_sub(s))
    }

    fn extra(&self) -> Option<u64> {
        self.stored.map(|s| s.saturating_sub(self.served))
    }

    fn add(&mut self, other: &Tally) {
        self.served += other.served;
        self.stored = self.stored.zip(other.stored).map(|(a, b)| a + b);
        self.non_200 += other.non_200;
        self.errors += other.errors;
    }
}

struct BackendResult {
    backend: Backend,
    full: WrkRun,
    paced: PacedRun,
    /// Warm-up, full load and paced together.
    total: Tally,
}

fn run_backend(
    args: &Args,
    backend: Backend,
    dir: &Path,
) -> Result<(BackendResult, Page, Vec<String>)> {
    let data = dir.join(format!("data-{}", backend.tag()));
    std::fs::create_dir_all(&data)?;
    // Declared before the server so that it is dropped after it (the schema outlives its connections).
    let schema = match backend {
        Backend::Postgres => Some(PgSchema::create(&args.postgres)?),
        Backend::Sqlite => None,
    };
    let url = match &schema {
        Some(s) => DatabaseUrl::Postgres(db::pg_url_with_schema(&s.base, &s.name)),
        None => DatabaseUrl::Sqlite {
            path: data.join("suyuan.sqlite"),
            create: true,
        },
    };
    let started = Instant::now();
    let server = Server::start(&data, &url)?;
    println!(
        "  suyuan serve --demo on 127.0.0.1:{} ({}), answering after {:.1} s",
        server.port,
        url.redacted(),
        started.elapsed().as_secs_f64()
    );
    let paths = active_paths(&data).with_context(|| {
        format!(
            "the demo labels (they need a CJK font: apt-get install fonts-wqy-microhei, or SUYUAN_LABEL_FONT); the server said:\n{}",
            tail(&server.log)
        )
    })?;
    let counter = ScanCounter::open(&url)?;
    let script = WrkScript::write(dir, &paths)?;

    let mut total = Tally {
        stored: Some(0),
        ..Tally::default()
    };
    let base = counter.count();
    let page = Page::fetch(server.port, &paths[0])?;
    println!(
        "  page: {} bytes of HTML ({})",
        thousands(page.body.len() as f64),
        page.content_type
    );
    let warm = wrk(args, server.port, &script, args.warmup)?;
    let mut tally = warm.tally();
    tally.served += 1;
    let lag = counter.settle(base, &mut tally);
    report("warm-up", &tally, lag);
    total.add(&tally);

    let base = counter.count();
    let full = wrk(args, server.port, &script, args.seconds)?;
    println!("  full load: {}", full.describe());
    let mut tally = full.tally();
    let lag = counter.settle(base, &mut tally);
    report("full load", &tally, lag);
    total.add(&tally);

    let base = counter.count();
    let paced = paced(
        server.port,
        &paths,
        args.paced_rate,
        args.seconds,
        args.paced_connections,
    )?;
    println!("  paced: {}", paced.describe(args.paced_rate));
    let mut tally = paced.tally;
    let lag = counter.settle(base, &mut tally);
    report("paced", &tally, lag);
    total.add(&tally);

    drop(counter);
    drop(server);
    drop(schema);
    Ok((
        BackendResult {
            backend,
            full,
            paced,
            total,
        },
        page,
        paths,
    ))
}

/// `lag`: when the last scan of the phase was stored, after the load stopped.
fn report(phase: &str, t: &Tally, lag: Option<Duration>) {
    let stored = t
        .stored
        .map_or_else(|| "?".to_owned(), |s| thousands(s as f64));
    let mut line = format!(
        "  {phase}: {} served, {stored} scans stored",
        thousands(t.served as f64)
    );
    if let Some(lag) = lag.filter(|_| t.stored.is_some_and(|s| s > 0)) {
        line += &format!(
            " (the count last rose {:.1} s after the load stopped)",
            lag.as_secs_f64()
        );
    }
    if let Some(lost) = t.lost().filter(|&l| l > 0) {
        line += &format!(", {} LOST", thousands(lost as f64));
    }
    if let Some(extra) = t.extra().filter(|&e| e > 0) {
        line += &format!(", {extra} more stored than served (in flight when the client stopped)");
    }
    if t.non_200 > 0 || t.errors > 0 {
        line += &format!(", {} non-200, {} socket errors", t.non_200, t.errors);
    }
    println!("{line}");
}

// ---------------------------------------------------------------------------------------------------
// Summary

fn summary(args: &Args, page: &Page, results: &[BackendResult], nginx: &WrkRun) {
    println!(
        "\n== Scan page under load (this machine, one run; the page is {} bytes of HTML) ==",
        thousands(page.body.len() as f64)
    );
    println!(
        "full load: wrk -t{} -c{}, {} s; paced: {} scans/s offered, open loop over {} connections, {} s",
        args.threads,
        args.connections,
        args.seconds,
        thousands(args.paced_rate as f64),
        args.paced_connections,
        args.seconds
    );
    println!(
        "{:<22} {:<29}   {:<30}   scans: served, stored, lost; non-200 answers",
        "", "full load (wrk)", "paced (open loop)"
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9}   {:>10} {:>9} {:>9}   {:>9} {:>9} {:>8} {:>8}",
        "", "scans/s", "p50", "p99", "scans/s", "p50", "p99", "served", "stored", "lost", "non-200"
    );
    for r in results {
        let t = &r.total;
        println!(
            "{:<22} {:>9} {:>9} {:>9}   {:>10} {:>9} {:>9}   {:>9} {:>9} {:>8} {:>8}",
            format!("suyuan · {}", r.backend.title()),
            thousands(r.full.rate),
            ms(r.full.p50_us),
            ms(r.full.p99_us),
            thousands(r.paced.achieved),
            ms(r.paced.p50_us),
            ms(r.paced.p99_us),
            thousands(t.served as f64),
            t.stored.map_or_else(|| "?".into(), |s| thousands(s as f64)),
            t.lost().map_or_else(|| "?".into(), |l| thousands(l as f64)),
            t.non_200,
        );
    }
    println!(
        "{:<22} {:>9} {:>9} {:>9}",
        "nginx · static file",
        thousands(nginx.rate),
        ms(nginx.p50_us),
        ms(nginx.p99_us),
    );
    for r in results {
        println!(
            "suyuan · {} ÷ nginx: {:.2} × the rate, p50 {:.1} ×, p99 {:.1} ×",
            r.backend.title(),
            ratio(r.full.rate, nginx.rate),
            ratio(r.full.p50_us, nginx.p50_us),
            ratio(r.full.p99_us, nginx.p99_us),
        );
    }
    println!("targets:");
    for r in results {
        let t = &r.total;
        let lost = t.lost();
        println!(
            "  {:<10} ≥ {} scans/s: {} {}   p99 < {TARGET_P99_MS:.0} ms at {} scans/s: {} {}   zero scans lost: {} {}",
            r.backend.title(),
            thousands(TARGET_RATE),
            thousands(r.full.rate),
            verdict(r.full.rate >= TARGET_RATE),
            thousands(args.paced_rate as f64),
            ms(r.paced.p99_us),
            verdict(
                r.paced.p99_us / 1000.0 < TARGET_P99_MS
                    && r.paced.achieved >= args.paced_rate as f64 * 0.95
            ),
            lost.map_or_else(|| "? (count unreadable)".into(), |l| {
                format!("{} lost, {} non-200", thousands(l as f64), t.non_200)
            }),
            verdict(lost == Some(0) && t.non_200 == 0 && t.served > 0),
        );
    }
    let extra: u64 = results.iter().filter_map(|r| r.total.extra()).sum();
    if extra > 0 {
        println!(
            "  ({extra} scans stored beyond the responses received: requests in flight when wrk stopped, answered and logged by the server)"
        );
    }
    if results.iter().any(|r| r.total.stored == Some(0)) {
        println!("  no scans stored at all: does the page log its scans yet?");
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn ms(us: f64) -> String {
    if us >= 100_000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// `12,345`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64
}

// ---------------------------------------------------------------------------------------------------
// wrk

/// The Lua script: the active labels' paths round-robin (each thread from its own offset), the language
/// header, and a summary line with wrk's own counts and percentiles.
struct WrkScript(PathBuf);

impl WrkScript {
    fn write(dir: &Path, paths: &[String]) -> Result<WrkScript> {
        let list: Vec<String> = paths.iter().map(|p| format!("  \"{p}\",")).collect();
        let script = format!(
            r#"-- Written by the scan benchmark (server/benches/scan.rs).
local paths = {{
{}
}}
wrk.headers["Accept-Language"] = "zh-CN"

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads * 7)
end

function init(args)
  i = offset or 0
end

function request()
  i = i + 1
  return wrk.format(nil, paths[(i % #paths) + 1])
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = (non200 or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non200") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "SUYUAN-WRK requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f non200=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect, e.read, e.write, e.timeout))
end
"#,
            list.join("\n")
        );
        let path = dir.join("scan.lua");
        std::fs::write(&path, script)?;
        Ok(WrkScript(path))
    }
}

/// One wrk measurement.
#[derive(Debug, Clone, Copy, Default)]
struct WrkRun {
    requests: u64,
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    non_200: u64,
    errors: u64,
}

impl WrkRun {
    fn tally(&self) -> Tally {
        Tally {
            served: self.requests - self.non_200.min(self.requests),
            stored: None,
            non_200: self.non_200,
            errors: self.errors,
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{} requests, {}/s, latency p50 {}, p99 {}",
            thousands(self.requests as f64),
            thousands(self.rate),
            ms(self.p50_us),
            ms(self.p99_us)
        );
        if self.non_200 > 0 || self.errors > 0 {
            s += &format!("; {} non-200, {} socket errors", self.non_200, self.errors);
        }
        s
    }
}

fn wrk(args: &Args, port: u16, script: &WrkScript, seconds: u64) -> Result<WrkRun> {
    let out = Command::new("wrk")
        .arg("--threads")
        .arg(args.threads.to_string())
        .arg("--connections")
        .arg(args.connections.to_string())
        .arg("--duration")
        .arg(format!("{seconds}s"))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency")
        .arg("--script")
        .arg(&script.0)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running wrk ({INSTALL})"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SUYUAN-WRK "))
        .with_context(|| {
            format!(
                "wrk gave no summary (exit {}):\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let fields: HashMap<&str, f64> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    let get = |k: &str| fields.get(k).copied().unwrap_or(0.0);
    let secs = get("duration_us") / 1e6;
    Ok(WrkRun {
        requests: get("requests") as u64,
        rate: if secs > 0.0 {
            get("requests") / secs
        } else {
            0.0
        },
        p50_us: get("p50_us"),
        p99_us: get("p99_us"),
        non_200: get("non200") as u64,
        errors: (get("connect") + get("read") + get("write") + get("timeout")) as u64,
    })
}

fn check_tools() -> Result<()> {
    if let Err(e) = Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        bail!("wrk not found ({e}): {INSTALL}");
    }
    if !Path::new(NGINX).is_file() {
        bail!("{NGINX} not found: {INSTALL}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// The paced (open-loop) generator

struct PacedRun {
    tally: Tally,
    /// Requests not sent because the server fell too far behind.
    unsent: u64,
    achieved: f64,
    p50_us: f64,
    p99_us: f64,
}

impl PacedRun {
    fn describe(&self, offered: u64) -> String {
        let mut s = format!(
            "{} requests at {} offered, {}/s achieved, latency from the scheduled send p50 {}, p99 {}",
            thousands(self.tally.served as f64),
            thousands(offered as f64),
            thousands(self.achieved),
            ms(self.p50_us),
            ms(self.p99_us)
        );
        if self.unsent > 0 {
            s += &format!("; {} not sent (fell behind)", thousands(self.unsent as f64));
        }
        if self.tally.non_200 > 0 || self.tally.errors > 0 {
            s += &format!(
                "; {} non-200, {} socket errors",
                self.tally.non_200, self.tally.errors
            );
        }
        s
    }
}

#[derive(Default)]
struct ConnResult {
    ok: u64,
    non_200: u64,
    errors: u64,
    unsent: u64,
    latencies_us: Vec<u64>,
    last_done: Option<Instant>,
}

/// Sends `rate × seconds` requests, request `i` at `start + i / rate`, spread over `conns` keep-alive
/// connections (request `i` on connection `i mod conns`), one request in flight per connection.
fn paced(port: u16, paths: &[String], rate: u64, seconds: u64, conns: usize) -> Result<PacedRun> {
    let total = rate * seconds;
    let conns = conns.max(1) as u64;
    let start = Instant::now() + Duration::from_millis(300);
    // A server that falls this far behind the schedule is not keeping up; stop rather than wait forever.
    let give_up = start + Duration::from_secs(seconds + 30);
    let results: Vec<Result<ConnResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|c| {
                s.spawn(move || -> Result<ConnResult> {
                    let mut conn = HttpConn::connect(port)?;
                    let mut r = ConnResult {
                        latencies_us: Vec::with_capacity((total / conns + 1) as usize),
                        ..ConnResult::default()
                    };
                    let mut i = c;
                    while i < total {
                        let at = start + Duration::from_secs_f64(i as f64 / rate as f64);
                        let now = Instant::now();
                        if now >= give_up {
                            r.unsent += (total - i).div_ceil(conns);
                            break;
                        }
                        if at > now {
                            std::thread::sleep(at - now);
                        }
                        match conn.get(&paths[(i as usize) % paths.len()]) {
                            Ok(resp) => {
                                let done = Instant::now();
                                r.latencies_us
                                    .push(done.duration_since(at).as_micros() as u64);
                                r.last_done = Some(done);
                                if resp.status == 200 {
                                    r.ok += 1;
                                } else {
                                    r.non_200 += 1;
                                }
                                if resp.close {
                                    conn = HttpConn::connect(port)?;
                                }
                            }
                            Err(_) => {
                                r.errors += 1;
                                conn = HttpConn::connect(port)?;
                            }
                        }
                        i += conns;
                    }
                    Ok(r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a load thread panicked")))
            })
            .collect()
    });
    let mut tally = Tally::default();
    let (mut unsent, mut latencies, mut last) = (0, Vec::new(), start);
    for r in results {
        let r = r?;
        tally.served += r.ok;
        tally.non_200 += r.non_200;
        tally.errors += r.errors;
        unsent += r.unsent;
        latencies.extend(r.latencies_us);
        if let Some(done) = r.last_done {
            last = last.max(done);
        }
    }
    latencies.sort_unstable();
    let secs = last.duration_since(start).as_secs_f64();
    Ok(PacedRun {
        achieved: if secs > 0.0 {
            (tally.served + tally.non_200) as f64 / secs
        } else {
            0.0
        },
        p50_us: percentile(&latencies, 0.5),
        p99_us: percentile(&latencies, 0.99),
        tally,
        unsent,
    })
}

// ---------------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (keep-alive, Content-Length or chunked bodies)

struct HttpConn {
    reader: BufReader<TcpStream>,
}

struct Response {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    /// The server will close the connection after this response.
    close: bool,
}

impl HttpConn {
    fn connect(port: u16) -> Result<HttpConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(HttpConn {
            reader: BufReader::with_capacity(64 * 1024, stream),
        })
    }

    fn get(&mut self, path: &str) -> std::io::Result<Response> {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: zh-CN\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes())?;
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("status line"))?;
        let (mut length, mut chunked, mut close, mut content_type) = (None, false, false, None);
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                return Err(bad("header"));
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = Some(value.parse().map_err(|_| bad("length"))?),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "content-type" => content_type = Some(value.to_owned()),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = line.trim_end().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16).map_err(|_| bad("chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        line.clear();
                        if self.reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let at = body.len();
                body.resize(at + size, 0);
                self.reader.read_exact(&mut body[at..])?;
                let mut crlf = [0u8; 2];
                self.reader.read_exact(&mut crlf)?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
        } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
            self.reader.read_to_end(&mut body)?;
            close = true;
        }
        Ok(Response {
            status,
            content_type,
            body,
            close,
        })
    }
}

/// The page as the server returned it for one active label.
struct Page {
    body: Vec<u8>,
    content_type: String,
}

impl Page {
    fn fetch(port: u16, path: &str) -> Result<Page> {
        let resp = HttpConn::connect(port)?
            .get(path)
            .with_context(|| format!("GET {path}"))?;
        if resp.status != 200 {
            bail!(
                "GET {path} answered {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            );
        }
        Ok(Page {
            body: resp.body,
            content_type: resp
                .content_type
                .unwrap_or_else(|| "no Content-Type".into()),
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// The server, the demo labels, the scan count

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `suyuan serve --demo` as a child process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(data: &Path, url: &DatabaseUrl) -> Result<Server> {
        let port = free_port()?;
        let database_url = match url {
            DatabaseUrl::Postgres(u) => u.clone(),
            DatabaseUrl::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
        };
        let log_path = data.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_suyuan"));
        // The command line says everything: no setting of the caller's environment leaks in, but the font
        // the demo labels are printed with.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if (name.starts_with("SUYUAN_") && name != "SUYUAN_LABEL_FONT")
                || name == "DATABASE_URL"
            {
                cmd.env_remove(name.as_ref());
            }
        }
        let child = cmd
            .args(["serve", "--demo", "--no-gateway", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(data)
            .arg("--database-url")
            .arg(&database_url)
            .env("SUYUAN_LOG", "warn,rumqttd=off")
            .env("RUST_LOG", "warn")
            .current_dir(data)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting suyuan serve")?;
        let mut server = Server {
            child,
            port,
            log: log_path.clone(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "suyuan serve exited ({status}) before answering:\n{}",
                    tail(&log_path)
                );
            }
            let health = HttpConn::connect(port)
                .ok()
                .and_then(|mut c| c.get("/api/v1/health").ok());
            if health.is_some_and(|r| r.status == 200) {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                bail!(
                    "suyuan serve did not answer GET /api/v1/health within {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    tail(&log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The paths of the demo run's active labels, from its manifest (`serial,short_code,url,file`, in
/// serial order; the first sheet is bound to the showcase batch).
fn active_paths(data: &Path) -> Result<Vec<String>> {
    let runs = data.join("label-runs");
    let mut manifests = Vec::new();
    for run in std::fs::read_dir(&runs).with_context(|| format!("reading {}", runs.display()))? {
        let run = run?.path();
        if !run.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&run)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "csv") {
                manifests.push(file);
            }
        }
    }
    manifests.sort();
    let manifest = manifests.first().with_context(|| {
        format!(
            "no manifest under {} (did --demo mint its labels?)",
            runs.display()
        )
    })?;
    let text = std::fs::read_to_string(manifest)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = header
        .iter()
        .position(|h| h.trim() == "url")
        .with_context(|| format!("no url column in {}", manifest.display()))?;
    let paths: Vec<String> = lines
        .filter_map(|l| l.split(',').nth(column))
        .filter_map(|url| {
            let rest = url.trim().split_once("://").map_or(url, |(_, r)| r);
            rest.find('/').map(|slash| rest[slash..].to_owned())
        })
        .take(ACTIVE_LABELS)
        .collect();
    if paths.len() < ACTIVE_LABELS {
        bail!(
            "{} lists {} labels, expected at least {ACTIVE_LABELS}",
            manifest.display(),
            paths.len()
        );
    }
    Ok(paths)
}

/// Counts the scans stored, through the same database as the server.
struct ScanCounter {
    db: Database,
}

impl ScanCounter {
    fn open(url: &DatabaseUrl) -> Result<ScanCounter> {
        let config = PoolConfig {
            max_size: 2,
            ..PoolConfig::default()
        };
        Ok(ScanCounter {
            db: Database::open(url, &config).context("opening the database to count scans")?,
        })
    }

    /// `None` (with a warning) when the count cannot be read.
    fn count(&self) -> Option<u64> {
        match self.db.read(scans::count) {
            Ok(n) => Some(n.max(0) as u64),
            Err(e) => {
                println!("  cannot count the stored scans: {e}");
                None
            }
        }
    }

    /// Sets `tally.stored` to the scans stored since `base`, once the count stops rising (or reaches the
    /// requests served and holds); returns how long after the call the count last rose.
    fn settle(&self, base: Option<u64>, tally: &mut Tally) -> Option<Duration> {
        tally.stored = None;
        let base = base?;
        let started = Instant::now();
        let mut last = self.count()?.saturating_sub(base);
        let mut changed = started;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let n = self.count()?.saturating_sub(base);
            if n != last {
                last = n;
                changed = Instant::now();
            }
            let quiet = changed.elapsed();
            if (n >= tally.served && quiet >= Duration::from_millis(300))
                || quiet >= SETTLED_AFTER
                || started.elapsed() >= SETTLE_MAX
            {
                tally.stored = Some(n);
                return Some(changed.duration_since(started));
            }
        }
    }
}

/// A PostgreSQL schema of this run, dropped with everything in it when dropped.
struct PgSchema {
    base: String,
    name: String,
}

impl PgSchema {
    fn create(base: &str) -> Result<PgSchema> {
        let name = format!("bench_scan_{}", std::process::id());
        db::create_pg_schema(base, &name)
            .with_context(|| format!("creating schema {name} (PostgreSQL at {base})"))?;
        Ok(PgSchema {
            base: base.to_owned(),
            name,
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = db::drop_pg_schema(&self.base, &self.name);
    }
}

// ---------------------------------------------------------------------------------------------------
// nginx

/// Debian's nginx serving `page` for every path, in a prefix folder of its own; stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
    prefix: PathBuf,
    conf: PathBuf,
}

impl Nginx {
    fn start(base: &Path, page: &Page) -> Result<Nginx> {
        use std::os::unix::fs::PermissionsExt;
        let port = free_port()?;
        let prefix = &base.join("nginx");
        let www = prefix.join("www");
        std::fs::create_dir_all(&www)?;
        std::fs::create_dir_all(prefix.join("tmp"))?;
        std::fs::write(www.join("page.html"), &page.body)?;
        // The workers run as another user when started as root: let them read the page (the folders from
        // the bench's temporary folder down, which is private to this user).
        for d in [base, prefix, www.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::set_permissions(
            www.join("page.html"),
            std::fs::Permissions::from_mode(0o644),
        )?;
        let p = prefix.display();
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                r#"worker_processes 2;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {p}/tmp/client_body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=16;
    types {{ }}
    default_type text/html;
    charset utf-8;
    server {{
        listen 127.0.0.1:{port};
        root {p}/www;
        location / {{ try_files /page.html =404; }}
    }}
}}
"#
            ),
        )?;
        let log = std::fs::File::create(prefix.join("stderr.log"))?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {NGINX} ({INSTALL})"))?;
        let mut nginx = Nginx {
            child,
            port,
            prefix: prefix.to_owned(),
            conf,
        };
        for _ in 0..100 {
            if let Some(status) = nginx.child.try_wait()? {
                bail!(
                    "nginx exited ({status}):\n{}\n{}",
                    tail(&prefix.join("stderr.log")),
                    tail(&prefix.join("error.log"))
                );
            }
            if let Ok(resp) = HttpConn::connect(port).and_then(|mut c| Ok(c.get("/")?)) {
                if resp.status != 200 || resp.body != page.body {
                    bail!(
                        "nginx answered {} with {} bytes, not the page:\n{}",
                        resp.status,
                        resp.body.len(),
                        tail(&prefix.join("error.log"))
                    );
                }
                println!(
                    "  nginx on 127.0.0.1:{port}: 2 workers, {} bytes, {}",
                    thousands(resp.body.len() as f64),
                    resp.content_type.unwrap_or_default()
                );
                return Ok(nginx);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("nginx did not answer on 127.0.0.1:{port}")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A graceful stop takes the workers with the master (a killed master would leave them running).
        let _ = Command::new(NGINX)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.conf)
            .arg("-e")
            .arg(self.prefix.join("error.log"))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
