//! IoT ingestion benchmark: readings published through Mosquitto at controlled rates into the gateway and
//! the database, beside `mosquitto_sub` receiving the same stream, and camera images with thumbnails.
//!
//! ```text
//! cargo bench -p suyuan-server --bench gateway -- --backend both
//! cargo bench -p suyuan-server --bench gateway -- --backend sqlite --seconds 5 --rates 2000,4000,8000
//! ```
//!
//! A Mosquitto of its own is started on a free loopback port (`max_inflight_messages 2000`, twice the
//! gateway's batch,
//! `max_queued_messages 0`: no message dropped for a slow subscriber; the same broker serves both sides).
//! For each rate (messages per second, each message carrying 4 metrics = 4 readings), `--publishers`
//! simulated devices publish at QoS 1 for `--seconds`; every PUBACK is counted, and the rate offered is
//! what the broker acknowledged over the time from the first publish to the last PUBACK. A rate is
//! sustained when every acknowledged message has arrived (received by `mosquitto_sub`, or committed by the
//! gateway) within 1 s of the end of publishing, with none lost. Rates rise until one is not sustained (or
//! the publishers cannot go faster twice in a row: the machine is saturated), then the gap to the last
//! sustained rate is halved a few times (`--refine`). The highest sustained rate offered is the figure. A
//! gateway that fell behind writes its backlog before the next trial starts, and must write all of it.
//!
//! - `mosquitto_sub -q 1` alone, writing to a file: the broker's own limit on this machine;
//! - the gateway (the same code as `suyuan serve`, in-process) into SQLite and into PostgreSQL (a fresh
//!   schema, dropped at the end): readings per second stored, and end-to-end latency (publish → commit)
//!   p50 / p99 at the highest sustained rate, from the device timestamps of committed readings;
//! - images: 200 KB JPEGs (each distinct, so each is decoded, thumbnailed and written) published as fast
//!   as the gateway acknowledges them, images per second stored.
//!
//! Targets on this 2-core machine: the gateway sustains at least 80 % of the broker's rate and at least
//! 50,000 readings per second into each database.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use suyuan_core::db::{self, DatabaseUrl, PoolConfig};
use suyuan_core::model::{
    Actor, DeviceKind, NewDevice, NewOrganisation, NewSite, NewUser, OrgKind, Role, SiteKind,
};
use suyuan_core::store::{iot, orgs, sites, users};
use suyuan_core::Database;
use suyuan_iot_gateway::mqtt::MqttSettings;
use suyuan_iot_gateway::runtime::Gateway;
use suyuan_iot_gateway::{Accepted, AcceptedKind, GatewayConfig, Store};
use suyuan_server::iot::store::CoreStore;

/// Readings per second into each database.
const TARGET_READINGS_PER_S: f64 = 50_000.0;
/// Share of the broker's own rate.
const TARGET_SHARE: f64 = 0.8;
/// How long after publishing ends everything must have arrived: short beside the 10 s of publishing, so
/// that a consumer more than about a tenth slower than the publishers cannot pass by catching up later.
const GRACE: Duration = Duration::from_secs(1);
/// How long a gateway that fell behind gets to write its backlog before the next trial.
const CATCH_UP: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    backend: BackendArg,
    /// Seconds of publishing per rate.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Messages per second to try, ascending (4 readings each).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,20000,30000,40000,50000,60000,70000,80000,90000,100000,110000,120000,140000,160000"
    )]
    rates: Vec<u64>,
    /// Times the gap between the last rate kept up with and the first one that was not is halved.
    #[arg(long, default_value_t = 3)]
    refine: u32,
    /// Messages per database transaction in the gateway.
    #[arg(long, default_value_t = suyuan_server::iot::run::BATCH_MESSAGES)]
    batch: usize,
    /// The broker's `max_inflight_messages` (QoS 1 messages out to one subscriber, unacknowledged).
    #[arg(long, default_value_t = 2 * suyuan_server::iot::run::BATCH_MESSAGES)]
    inflight: usize,
    /// Devices publishing at once.
    #[arg(long, default_value_t = 20)]
    publishers: usize,
    /// Readings generated for the range-query measurement on PostgreSQL (0 skips it).
    #[arg(long, default_value_t = 20_000_000)]
    scale_rows: i64,
    /// Batches of 500 messages written by the store alone, without MQTT (more for profiling it).
    #[arg(long, default_value_t = 100)]
    alone_batches: i64,
    /// Images to publish (200 KB each).
    #[arg(long, default_value_t = 150)]
    images: usize,
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let broker = Mosquitto::start(dir.path(), args.inflight)?;
    println!(
        "Mosquitto on 127.0.0.1:{} (max_inflight_messages {}, max_queued_messages 0); gateway batches of {} messages",
        broker.port, args.inflight, args.batch
    );
    println!(
        "{} s per rate, {} devices publishing, 4 readings per message\n",
        args.seconds, args.publishers
    );

    println!("mosquitto_sub -q 1 alone:");
    let sub = sweep(&args, |rate| {
        let mut sub = MosquittoSub::start(broker.port, dir.path())?;
        let published = rt.block_on(publish(broker.port, &args, rate, "sub"))?;
        let received = sub.wait_for(published.acked, published.ended + GRACE)?;
        Ok(Trial {
            acked: published.acked,
            publishing: published.took,
            arrived: received,
            latencies: Vec::new(),
        })
    })?;

    let mut rows = Vec::new();
    let backends: &[&str] = match args.backend {
        BackendArg::Sqlite => &["sqlite"],
        BackendArg::Postgres => &["postgres"],
        BackendArg::Both => &["sqlite", "postgres"],
    };
    for backend in backends {
        println!("\ngateway → {backend}:");
        let db = BenchDb::new(backend, dir.path(), &args.postgres)?;
        let (site, devices) = register(&db.db, args.publishers)?;
        let core = CoreStore::new(db.db.clone(), suyuan_iot_gateway::RuleConfig::default());
        let alone = store_alone(&core, &devices, site, args.alone_batches)?;
        println!("  the store alone (batches of 500 messages, no MQTT): {alone:.0} readings/s");
        let counting = Arc::new(CountingStore::new(core));
        let data = dir.path().join(format!("gw-{backend}"));
        let mut config = GatewayConfig::under_data(&data);
        config.topics.share_group = None;
        config.runtime.batch_max_messages = args.batch;
        let mqtt = MqttSettings::from_url(&format!(
            "mqtt://127.0.0.1:{}?client_id=bench-gw-{backend}",
            broker.port
        ))?;
        let handle = rt.block_on(Gateway::start(config, mqtt, counting.clone()))?;
        std::thread::sleep(Duration::from_millis(500));
        let result = sweep(&args, |rate| {
            counting.reset();
            let published = rt.block_on(publish(broker.port, &args, rate, "gw"))?;
            let stored = counting.wait_for(published.acked, published.ended + GRACE);
            let latencies = counting.latencies();
            // A trial that fell behind leaves a backlog with the broker: the next one starts once it is
            // written (and so shows that nothing acknowledged was lost, only late).
            let caught_up = counting.wait_for(published.acked, Instant::now() + CATCH_UP);
            anyhow::ensure!(
                caught_up == published.acked,
                "the gateway stored {caught_up} of {} acknowledged messages {} s after publishing ended",
                published.acked,
                CATCH_UP.as_secs()
            );
            Ok(Trial {
                acked: published.acked,
                publishing: published.took,
                arrived: stored,
                latencies,
            })
        })?;
        let stats = handle.stats();
        println!(
            "  gateway: {} received, {} stored, {} refused, {} spooled, {} acknowledged",
            stats.received, stats.stored, stats.refused, stats.spooled, stats.acked
        );
        let images = rt.block_on(publish_images(
            broker.port,
            site,
            &devices[0],
            args.images,
            &counting,
        ))?;
        rt.block_on(handle.shutdown());
        let stored_rows = db.db.read(|c| {
            let (points, _) = iot::site_readings(
                c,
                &db.operator,
                suyuan_core::SiteId(site),
                0,
                i64::MAX,
                None,
                None,
                1,
            )?;
            Ok(points.len())
        })?;
        anyhow::ensure!(stored_rows > 0, "no readings stored");
        if *backend == "postgres" && args.scale_rows > 0 {
            scale_queries(&db, args.scale_rows)?;
        }
        rows.push((backend.to_string(), result, images, alone));
        db.drop_schema();
    }

    println!("\n== Summary (this machine, one run) ==");
    let broker_rate = sub.best.map_or(0.0, |b| b.rate as f64);
    println!(
        "broker (mosquitto_sub -q 1): {:>8.0} msg/s = {:>8.0} readings/s sustained{}",
        broker_rate,
        broker_rate * 4.0,
        limited_by(&sub)
    );
    for (backend, r, images, alone) in &rows {
        let rate = r.best.map_or(0.0, |b| b.rate as f64);
        let readings = rate * 4.0;
        let ratio = if broker_rate > 0.0 {
            rate / broker_rate
        } else {
            0.0
        };
        let (p50, p99) = r.best.map_or((0.0, 0.0), |b| (b.p50_ms, b.p99_ms));
        println!(
            "gateway → {backend:<8}: {rate:>8.0} msg/s = {readings:>8.0} readings/s sustained ({:.0} % of the broker) {}; latency publish→commit p50 {p50:.0} ms, p99 {p99:.0} ms; images {images:.1}/s (200 KB, with thumbnails); the store alone {alone:.0} readings/s{}",
            ratio * 100.0,
            verdict(readings >= TARGET_READINGS_PER_S && ratio >= TARGET_SHARE),
            limited_by(r),
        );
    }
    if let Ok(Some((n, p50, p99))) = SCALE.lock().map(|s| *s) {
        println!("PostgreSQL range query, one site's day among {n} readings (monthly partitions): median {p50:.1} ms, p99 {p99:.1} ms");
    }
    println!("targets: ≥ {TARGET_READINGS_PER_S:.0} readings/s into each database and ≥ {:.0} % of the broker's rate", TARGET_SHARE * 100.0);
    Ok(())
}

/// What ended a sweep, for the summary.
fn limited_by(sweep: &Sweep) -> &'static str {
    if sweep.saturated {
        " (the publishers could go no faster: the machine, not this consumer, set the limit)"
    } else {
        ""
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

// ---------------------------------------------------------------------------------------------------
// The rate sweep

struct Trial {
    acked: u64,
    /// From the first publish to the last PUBACK: the rate actually offered is `acked / publishing`, which
    /// falls below the asked rate when the publishers or the broker cannot keep the pace.
    publishing: Duration,
    arrived: u64,
    latencies: Vec<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Best {
    /// Messages per second the broker acknowledged over the publishing time (not the rate asked for).
    rate: u64,
    p50_ms: f64,
    p99_ms: f64,
}

struct Sweep {
    best: Option<Best>,
    /// Whether the climb ended because the publishers could not go faster (the machine was saturated),
    /// with the consumer never falling behind: then the consumer's own limit lies above `best`.
    saturated: bool,
}

/// Rates rise through `--rates` until the consumer falls behind or the publishers cannot go faster twice in
/// a row (the broker acknowledges less than 90 % of the rate asked: the machine is saturated); then the gap between
/// the last rate kept up with and the first one that was not is halved `--refine` times. A trial kept up
/// with counts at the rate actually offered, whether or not that reached the rate asked, so both sides of
/// the ratio are measured alike: what flowed from the publishers through the broker and was consumed, all
/// of it, in time.
fn sweep(args: &Args, mut trial: impl FnMut(u64) -> Result<Trial>) -> Result<Sweep> {
    let mut best: Option<Best> = None;
    let mut run = |rate: u64, best: &mut Option<Best>| -> Result<Outcome> {
        let t = trial(rate)?;
        let kept_up = t.arrived >= t.acked && t.acked > 0;
        let offered = t.acked as f64 / t.publishing.as_secs_f64().max(args.seconds as f64);
        let (p50, p99) = percentiles(t.latencies);
        println!(
            "  {rate:>6} msg/s asked: {:>7} acknowledged by the broker ({offered:>7.0}/s), {:>7} arrived within {} s  {}{}",
            t.acked,
            t.arrived,
            GRACE.as_secs(),
            if kept_up { "kept up" } else { "FELL BEHIND" },
            if p50 > 0.0 { format!("  latency p50 {p50:.0} ms p99 {p99:.0} ms") } else { String::new() },
        );
        if t.arrived > t.acked {
            bail!(
                "more arrived ({}) than was acknowledged ({}): duplicates",
                t.arrived,
                t.acked
            );
        }
        if !kept_up {
            return Ok(Outcome::FellBehind);
        }
        if best.is_none_or(|b| offered > b.rate as f64) {
            *best = Some(Best {
                rate: offered.round() as u64,
                p50_ms: p50,
                p99_ms: p99,
            });
        }
        Ok(if offered < rate as f64 * 0.9 {
            Outcome::Saturated
        } else {
            Outcome::KeptUp
        })
    };
    let mut fell_behind_at = None;
    let mut saturated = false;
    // One saturated trial may be a moment of the machine's noise; two in a row end the climb.
    let mut saturated_in_a_row = 0;
    for &rate in &args.rates {
        match run(rate, &mut best)? {
            Outcome::KeptUp => saturated_in_a_row = 0,
            Outcome::Saturated => {
                saturated_in_a_row += 1;
                if saturated_in_a_row == 2 {
                    saturated = true;
                    break;
                }
            }
            Outcome::FellBehind => {
                fell_behind_at = Some(rate);
                break;
            }
        }
    }
    saturated |= fell_behind_at.is_none() && saturated_in_a_row > 0;
    if let Some(mut high) = fell_behind_at {
        for _ in 0..args.refine {
            let low = best.map_or(0, |b| b.rate);
            let mid = (low + high) / 2;
            if high <= low || high - low < 2_000 {
                break;
            }
            match run(mid, &mut best)? {
                Outcome::FellBehind => high = mid,
                // The consumer's limit was found already; the publishers merely did not reach `mid`.
                Outcome::Saturated => break,
                Outcome::KeptUp => {}
            }
        }
    }
    Ok(Sweep { best, saturated })
}

/// How one trial went.
enum Outcome {
    /// Everything arrived in time, at about the rate asked.
    KeptUp,
    /// Everything arrived in time, but the broker acknowledged well below the rate asked.
    Saturated,
    /// Not everything arrived in time.
    FellBehind,
}

fn percentiles(mut v: Vec<i64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64;
    (at(0.5), at(0.99))
}

/// Range queries over a readings table of `rows` rows: 20 sites with 10 devices each, two metrics every
/// 5 minutes over months (so across monthly partitions); then one site's day, 50 times at random.
fn scale_queries(db: &BenchDb, rows: i64) -> Result<()> {
    let (sites_n, per_site) = (20usize, 10usize);
    let per_device = rows / (sites_n * per_site * 2) as i64;
    let step = 5 * 60_000i64;
    let to = now_ms() - 86_400_000;
    let from = to - per_device * step;
    let mut devices = Vec::new();
    let org = db.db.write(|c| {
        orgs::create(
            c,
            &NewOrganisation {
                name: "规模测试冷链".into(),
                kind: OrgKind::Logistics,
                credit_code: None,
                division_code: "530424".into(),
                address: None,
                public_contact: None,
            },
        )
    })?;
    for s in 0..sites_n {
        let site = db.db.write(|c| {
            sites::create_site(
                c,
                org.id,
                &NewSite {
                    name: format!("冷库{s}"),
                    kind: SiteKind::ColdStore,
                    division_code: "530424".into(),
                    address: None,
                    latitude: None,
                    longitude: None,
                    area_mu: None,
                },
            )
        })?;
        for d in 0..per_site {
            let id = format!("scale-{s:02}-{d:02}");
            let dev = db.db.write(|c| {
                iot::register_device(
                    c,
                    &db.operator,
                    &NewDevice {
                        site_id: site.id,
                        client_id: id.clone(),
                        kind: DeviceKind::Sensor,
                        name: id.clone(),
                    },
                )
            })?;
            devices.push((dev.device.id, site.id));
        }
    }
    let t = Instant::now();
    let mut n = 0;
    for chunk in devices.chunks(10) {
        n += db
            .db
            .write(|c| iot::generate_readings(c, chunk, from, step, per_device))?;
    }
    db.db.write(iot::analyze_readings)?;
    println!(
        "  range queries: {n} readings generated ({} sites × {per_site} devices × 2 metrics, every 5 min over {:.0} days) in {:.0} s",
        sites_n,
        (to - from) as f64 / 86_400_000.0,
        t.elapsed().as_secs_f64()
    );
    let mut lat = Vec::new();
    let mut points = 0;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..50 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (_, site) = devices[(rng % devices.len() as u64) as usize];
        let day = from + (rng % ((to - from) as u64 / 86_400_000).max(1)) as i64 * 86_400_000;
        let t = Instant::now();
        let (p, _) = db.db.read(|c| {
            iot::site_readings(
                c,
                &db.operator,
                site,
                day,
                day + 86_400_000,
                None,
                None,
                20_000,
            )
        })?;
        lat.push(t.elapsed().as_micros() as i64);
        points += p.len();
    }
    let (p50, p99) = percentiles(lat);
    println!(
        "  one site's day out of {n} readings: median {:.1} ms, p99 {:.1} ms ({} points per query)",
        p50 / 1000.0,
        p99 / 1000.0,
        points / 50
    );
    SCALE
        .lock()
        .map(|mut s| *s = Some((n, p50 / 1000.0, p99 / 1000.0)))
        .ok();
    Ok(())
}

static SCALE: Mutex<Option<(u64, f64, f64)>> = Mutex::new(None);

/// Readings per second `Store::write` takes on its own: `batches` batches of 500 messages of 4 readings, as the
/// pipeline hands them over, without MQTT.
fn store_alone(store: &CoreStore, devices: &[String], site: i64, batches: i64) -> Result<f64> {
    let ids: Vec<i64> = store
        .devices()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|d| devices.iter().any(|x| x == &d.client_id.to_string()))
        .map(|d| d.id)
        .collect();
    let t0 = now_ms() - 3_600_000;
    let site = suyuan_iot_gateway::SiteId(site);
    let mut n = 0u64;
    let start = Instant::now();
    for b in 0..batches {
        let batch: Vec<Accepted> = (0..500i64)
            .map(|i| {
                let id = &ids[(i as usize) % ids.len()];
                let ts = t0 + b * 500 + i;
                let values = [
                    ("temp_c", 4.0),
                    ("rh_pct", 85.0),
                    ("co2_ppm", 420.0),
                    ("light_lux", 900.0),
                ];
                Accepted {
                    received_at_ms: ts,
                    device_id: *id,
                    site,
                    what: AcceptedKind::Telemetry(vec![suyuan_iot_gateway::Reading {
                        ts_ms: ts,
                        seq: Some(-2 - (b * 500 + i)),
                        values: values.iter().map(|(m, v)| ((*m).into(), *v)).collect(),
                    }]),
                }
            })
            .collect();
        store.write(&batch).map_err(|e| anyhow::anyhow!("{e}"))?;
        n += 2_000;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------------
// Publishing

struct Published {
    acked: u64,
    took: Duration,
    ended: Instant,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `publishers` devices publish `rate` messages per second in all for `seconds`; returns how many the
/// broker acknowledged.
async fn publish(port: u16, args: &Args, rate: u64, tag: &str) -> Result<Published> {
    let acked = Arc::new(AtomicU64::new(0));
    let per_device = (rate as f64 / args.publishers as f64).max(1.0);
    let total_per_device = (per_device * args.seconds as f64) as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    static RUN: AtomicU64 = AtomicU64::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    for d in 0..args.publishers {
        let acked = acked.clone();
        let client_id = format!("dev-{d:03}");
        let topic = format!("suyuan/v1/{SITE_PLACEHOLDER}/{client_id}/telemetry");
        let mut opts = MqttOptions::new(format!("pub-{tag}-{run}-{d}"), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_inflight(1000);
        tasks.push(tokio::spawn(async move {
            let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
            let poller = tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            n += 1;
                            acked.fetch_add(1, Ordering::Relaxed);
                            if n == total_per_device {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            });
            let start = tokio::time::Instant::now();
            let interval = Duration::from_secs_f64(1.0 / per_device);
            let base_seq = run * 10_000_000;
            for i in 0..total_per_device {
                tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
                let payload = format!(
                    r#"{{"ts":{},"seq":{},"values":{{"temp_c":{:.1},"rh_pct":{:.1},"co2_ppm":{},"light_lux":{}}}}}"#,
                    now_ms(),
                    base_seq + i,
                    3.0 + (i % 20) as f64 * 0.1,
                    80.0 + (i % 10) as f64,
                    400 + i % 50,
                    1000 + i % 300,
                );
                let topic = topic.replace(SITE_PLACEHOLDER, &SITE.load(Ordering::Relaxed).to_string());
                if client.publish(topic, QoS::AtLeastOnce, false, payload).await.is_err() {
                    break;
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), poller).await;
            let _ = client.disconnect().await;
        }));
    }
    for t in tasks {
        t.await?;
    }
    let ended = Instant::now();
    Ok(Published {
        acked: acked.load(Ordering::Relaxed),
        took: ended - started,
        ended,
    })
}

const SITE_PLACEHOLDER: &str = "{site}";
static SITE: AtomicU64 = AtomicU64::new(0);

/// Publishes `count` distinct 200 KB JPEGs from one camera, as fast as the gateway takes them; images
/// stored per second.
async fn publish_images(
    port: u16,
    site: i64,
    camera: &str,
    count: usize,
    store: &CountingStore,
) -> Result<f64> {
    let images: Vec<Vec<u8>> =
        tokio::task::spawn_blocking(move || (0..count).map(jpeg_200k).collect()).await?;
    let avg = images.iter().map(Vec::len).sum::<usize>() / images.len().max(1);
    store.reset();
    let mut opts = MqttOptions::new("pub-images", "127.0.0.1", port);
    opts.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
    opts.set_inflight(20);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let poller = tokio::spawn(async move {
        loop {
            if let Err(_e) = eventloop.poll().await {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let start = Instant::now();
    let base = now_ms() - 60_000;
    for (i, img) in images.into_iter().enumerate() {
        let topic = format!(
            "suyuan/v1/{site}/{camera}-cam/image/jpeg/{}",
            base + i as i64
        );
        client.publish(topic, QoS::AtLeastOnce, false, img).await?;
    }
    let stored = store.wait_images(count as u64, Instant::now() + Duration::from_secs(120));
    let secs = start.elapsed().as_secs_f64();
    poller.abort();
    println!(
        "  images: {stored} of {count} stored ({} KB each) in {secs:.1} s",
        avg / 1024
    );
    Ok(stored as f64 / secs)
}

/// A distinct JPEG of about 200 KB (noise compresses badly, so the size is reached at a modest resolution).
fn jpeg_200k(seed: usize) -> Vec<u8> {
    use image::codecs::jpeg::JpegEncoder;
    let (w, h) = (800u32, 600u32);
    let mut state = seed as u32 * 2_654_435_761 + 1;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 64) as u8;
        image::Rgb([(x / 4) as u8 ^ n, (y / 3) as u8 ^ n, 120 ^ n])
    });
    let mut out = Vec::new();
    let _ = JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img);
    out
}

// ---------------------------------------------------------------------------------------------------
// The store, counted

/// The real store, counting committed readings and images and the publish → commit latency of a sample.
struct CountingStore {
    inner: CoreStore,
    readings: AtomicU64,
    images: AtomicU64,
    latencies: Mutex<Vec<i64>>,
}

impl CountingStore {
    fn new(inner: CoreStore) -> Self {
        CountingStore {
            inner,
            readings: AtomicU64::new(0),
            images: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
        }
    }

    fn reset(&self) {
        self.readings.store(0, Ordering::SeqCst);
        self.images.store(0, Ordering::SeqCst);
        self.latencies.lock().map(|mut l| l.clear()).ok();
    }

    /// Messages (4 readings each) committed, waiting until `expected` or `deadline`.
    fn wait_for(&self, expected: u64, deadline: Instant) -> u64 {
        loop {
            let n = self.readings.load(Ordering::SeqCst) / 4;
            if n >= expected || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_images(&self, expected: u64, deadline: Instant) -> u64 {
        loop {
            let n = self.images.load(Ordering::SeqCst);
            if n >= expected || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn latencies(&self) -> Vec<i64> {
        self.latencies.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Store for CountingStore {
    fn device(
        &self,
        id: &suyuan_iot_gateway::ClientId,
    ) -> Result<Option<suyuan_iot_gateway::DeviceInfo>, suyuan_iot_gateway::StoreError> {
        self.inner.device(id)
    }
    fn devices(
        &self,
    ) -> Result<Vec<suyuan_iot_gateway::DeviceInfo>, suyuan_iot_gateway::StoreError> {
        self.inner.devices()
    }
    fn write(&self, batch: &[Accepted]) -> Result<(), suyuan_iot_gateway::StoreError> {
        self.inner.write(batch)?;
        let committed = now_ms();
        let (mut readings, mut images) = (0u64, 0u64);
        let mut lat = Vec::new();
        for m in batch {
            match &m.what {
                AcceptedKind::Telemetry(rs) => {
                    readings += rs.iter().map(|r| r.values.len() as u64).sum::<u64>();
                    if let Some(r) = rs.first() {
                        lat.push(committed - r.ts_ms);
                    }
                }
                AcceptedKind::Image { .. } => images += 1,
                AcceptedKind::Status(_) => {}
            }
        }
        self.readings.fetch_add(readings, Ordering::SeqCst);
        self.images.fetch_add(images, Ordering::SeqCst);
        if let Ok(mut l) = self.latencies.lock() {
            l.extend(lat);
        }
        Ok(())
    }
    fn add_refusals(
        &self,
        counts: &suyuan_iot_gateway::CounterSnapshot,
        recent: &[suyuan_iot_gateway::RefusalEntry],
    ) -> Result<(), suyuan_iot_gateway::StoreError> {
        self.inner.add_refusals(counts, recent)
    }
    fn tick(&self, now_ms: i64) -> Result<(), suyuan_iot_gateway::StoreError> {
        self.inner.tick(now_ms)
    }
}

// ---------------------------------------------------------------------------------------------------
// Database, devices, broker, subscriber

struct BenchDb {
    db: Database,
    operator: Actor,
    pg: Option<(String, String)>,
}

impl BenchDb {
    fn new(backend: &str, dir: &Path, pg_base: &str) -> Result<BenchDb> {
        let (url, pg) = if backend == "postgres" {
            let schema = format!("bench_gw_{}", std::process::id());
            db::create_pg_schema(pg_base, &schema).context("PostgreSQL")?;
            (
                DatabaseUrl::Postgres(db::pg_url_with_schema(pg_base, &schema)),
                Some((pg_base.to_owned(), schema)),
            )
        } else {
            (
                DatabaseUrl::Sqlite {
                    path: dir.join("bench-gw.sqlite"),
                    create: true,
                },
                None,
            )
        };
        let db = Database::open(&url, &PoolConfig::default())?;
        let operator = db.write(|c| {
            let org = orgs::create(
                c,
                &NewOrganisation {
                    name: "运营中心".into(),
                    kind: OrgKind::Operator,
                    credit_code: None,
                    division_code: "530424".into(),
                    address: None,
                    public_contact: None,
                },
            )?;
            let u = users::create(
                c,
                &NewUser {
                    org_id: org.id,
                    username: "bench-operator".into(),
                    display_name: "bench".into(),
                    phone: None,
                    role: Role::Operator,
                    password: "bench-password-2026".into(),
                },
            )?;
            Ok(Actor {
                user_id: u.id,
                org_id: org.id,
                role: Role::Operator,
            })
        })?;
        Ok(BenchDb { db, operator, pg })
    }

    fn drop_schema(&self) {
        if let Some((base, schema)) = &self.pg {
            let _ = db::drop_pg_schema(base, schema);
        }
    }
}

/// A cold store with `n` sensors `dev-000…` and one camera `dev-000-cam`; returns the site id and client ids.
fn register(db: &Database, n: usize) -> Result<(i64, Vec<String>)> {
    let site = db.write(|c| {
        let org = orgs::create(
            c,
            &NewOrganisation {
                name: "冷链物流".into(),
                kind: OrgKind::Logistics,
                credit_code: None,
                division_code: "530424".into(),
                address: None,
                public_contact: None,
            },
        )?;
        sites::create_site(
            c,
            org.id,
            &NewSite {
                name: "1号冷库".into(),
                kind: SiteKind::ColdStore,
                division_code: "530424".into(),
                address: None,
                latitude: None,
                longitude: None,
                area_mu: None,
            },
        )
    })?;
    let operator = db.read(|c| {
        let u = users::list(c, None, suyuan_core::store::Page::FIRST)?;
        let u = u
            .items
            .into_iter()
            .find(|u| u.role == Role::Operator)
            .ok_or(suyuan_core::CoreError::NotFound { what: "operator" })?;
        Ok(Actor {
            user_id: u.id,
            org_id: u.org_id,
            role: u.role,
        })
    })?;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("dev-{i:03}");
        db.write(|c| {
            iot::register_device(
                c,
                &operator,
                &NewDevice {
                    site_id: site.id,
                    client_id: id.clone(),
                    kind: DeviceKind::Sensor,
                    name: id.clone(),
                },
            )
        })?;
        ids.push(id);
    }
    db.write(|c| {
        iot::register_device(
            c,
            &operator,
            &NewDevice {
                site_id: site.id,
                client_id: "dev-000-cam".into(),
                kind: DeviceKind::Camera,
                name: "camera".into(),
            },
        )
    })?;
    SITE.store(site.id.0 as u64, Ordering::Relaxed);
    Ok((site.id.0, ids))
}

struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start(dir: &Path, inflight: usize) -> Result<Mosquitto> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf: PathBuf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages {inflight}\nmax_queued_messages 0\nmessage_size_limit 0\nlog_type error\n"
            ),
        )?;
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mosquitto (Debian package mosquitto)")?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Mosquitto { child, port });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("mosquitto did not start on port {port}")
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_sub -q 1` counting the messages it prints.
/// `mosquitto_sub -q 1` writing what it receives to a file: a file, not a pipe, so that no reader in this
/// process is woken for every message and the reference consumer is as light as mosquitto_sub can be.
struct MosquittoSub {
    child: Child,
    out: std::fs::File,
}

impl MosquittoSub {
    fn start(port: u16, dir: &Path) -> Result<MosquittoSub> {
        let path = dir.join("mosquitto_sub.out");
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-t",
                "suyuan/v1/+/+/telemetry",
            ])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .context("starting mosquitto_sub (Debian package mosquitto-clients)")?;
        let out = std::fs::File::open(&path)?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(MosquittoSub { child, out })
    }

    /// Messages received (one line each: the payloads are single-line JSON), waiting until `expected` or
    /// `deadline`; the file is read on from where the last look stopped.
    fn wait_for(&mut self, expected: u64, deadline: Instant) -> Result<u64> {
        use std::io::Read;
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            loop {
                let got = self.out.read(&mut buf)?;
                if got == 0 {
                    break;
                }
                n += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
            }
            if n >= expected || Instant::now() >= deadline {
                return Ok(n);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MosquittoSub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
