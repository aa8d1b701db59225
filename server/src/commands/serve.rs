//! `suyuan serve`: the API and pages on one address, SQLite under `./data` unless `DATABASE_URL` says
//! otherwise, with the background label minter; `--demo` seeds the demo county once and prints its
//! accounts and a label in each state.

use std::net::TcpListener;

use crate::demo;
use anyhow::Context;
use clap::Args;

use super::{demo_labels, demo_media, DataArgs};
use crate::exporting::{ExportSettings, Exporter};
use crate::iot::run::{BrokerChoice, RunningGateway};
use crate::minting::{MintSettings, Minter};
use crate::state::AppState;

/// Options of `suyuan serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SUYUAN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Seed the demo county (once) and print its accounts.
    #[arg(long)]
    pub demo: bool,
    /// Mark cookies Secure (always done when the public host is https).
    #[arg(long, env = "SUYUAN_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// The public address: host written into label URLs and links (https://HOST; a bare HOST means https,
    /// which makes cookies Secure; http://HOST for a plain-HTTP test set-up). Default: the listen address,
    /// over http.
    #[arg(long, env = "SUYUAN_PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For names the client for
    /// login throttling; from any other peer the header is ignored.
    #[arg(long, env = "SUYUAN_TRUSTED_PROXIES", value_parser = crate::extract::TrustedProxies::parse, default_value = "")]
    pub trusted_proxies: crate::extract::TrustedProxies,
    /// A CJK TrueType font for printed labels; by default a system font is searched.
    #[arg(long, env = "SUYUAN_LABEL_FONT")]
    pub label_font: Option<std::path::PathBuf>,
    /// Where the embedded MQTT broker listens (devices publish here). When not given, 127.0.0.1:1883,
    /// or a free port printed at start when another broker holds 1883.
    #[arg(long, env = "SUYUAN_MQTT_LISTEN")]
    pub mqtt_listen: Option<std::net::SocketAddr>,
    /// Use this broker (Mosquitto, EMQX) instead of the embedded one: mqtt://[user:pass@]host[:port][?client_id=…].
    #[arg(long, env = "SUYUAN_MQTT_URL")]
    pub mqtt_url: Option<String>,
    /// Run without the IoT gateway (e.g. API replicas beside separate `suyuan gateway` processes).
    #[arg(long)]
    pub no_gateway: bool,
    /// Where a scan's region comes from when the phone shares no location: the built-in ip2region
    /// database by default; a file of your own (CSV lines `start,end,division_code`, IPv4 or IPv6, or an
    /// ip2region `.xdb` file); or `off`.
    #[arg(long, env = "SUYUAN_IP_REGIONS", value_name = "FILE|off", default_value = "",
          hide_default_value = true, value_parser = crate::scans::IpRegionSetting::parse)]
    pub ip_regions: crate::scans::IpRegionSetting,
    /// More distinct devices than this scanning one label opens an alert (possible copied label).
    #[arg(long, env = "SUYUAN_SCAN_MAX_DEVICES", default_value_t = 5)]
    pub scan_max_devices: u32,
    /// Two scans of one label implying a faster journey than this (km/h) open an alert.
    #[arg(long, env = "SUYUAN_SCAN_MAX_SPEED_KMH", default_value_t = 900.0)]
    pub scan_max_speed_kmh: f64,
    /// Shared secret the SMS provider sends in `X-Suyuan-Sms-Token`; the SMS webhook is off without it.
    #[arg(long, env = "SUYUAN_SMS_TOKEN", hide_env_values = true)]
    pub sms_token: Option<String>,
    /// Most label runs one organisation may have queued or minting at once (more: 429).
    #[arg(long, env = "SUYUAN_LABEL_RUNS_PER_ORG", default_value_t = 2, value_parser = clap::value_parser!(i64).range(1..))]
    pub label_runs_per_org: i64,
    /// Most label runs queued or minting at once over all organisations (more: 429).
    #[arg(long, env = "SUYUAN_LABEL_RUNS_MAX", default_value_t = 8, value_parser = clap::value_parser!(i64).range(1..))]
    pub label_runs_max: i64,
    /// How often to sign and publish an anchor of every batch's chain head (`30m`, `1h`, `1d`; `0`: never).
    #[arg(long, env = "SUYUAN_ANCHOR_INTERVAL", default_value = "1h", value_parser = super::anchor::parse_interval)]
    pub anchor_interval: std::time::Duration,
}

impl ServeArgs {
    /// The scanning configuration these options describe.
    pub fn scan_settings(&self) -> crate::scans::ScanSettings {
        crate::scans::ScanSettings {
            rules: suyuan_core::model::ScanRules {
                max_devices: self.scan_max_devices,
                max_speed_kmh: self.scan_max_speed_kmh,
                ..Default::default()
            },
            ip_regions: self.ip_regions.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            sms_token: self.sms_token.clone().filter(|t| !t.is_empty()),
        }
    }
}

/// Where the embedded broker listens unless told otherwise.
const DEFAULT_MQTT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 1883);

/// Runs the server until Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let db = args.data.open()?;
    let public_url = args
        .public_host
        .clone()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| format!("http://{}", args.listen));
    let public_host = crate::state::public_url(&public_url).1.to_owned();
    let settings = MintSettings {
        font: args.label_font.clone(),
        // Leave a core to the HTTP workers while a run is minted.
        threads: Some(
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .saturating_sub(1)
                .max(1),
        ),
        run_limits: suyuan_core::store::labels::RunLimits {
            per_org: args.label_runs_per_org,
            overall: args.label_runs_max,
        },
        ..MintSettings::in_data_dir(&args.data.data_dir)
    };
    // Before anything else starts: a taken MQTT port stops the start with a clear message.
    let gateway = if args.no_gateway {
        None
    } else {
        let broker = match &args.mqtt_url {
            Some(url) if !url.trim().is_empty() => BrokerChoice::External {
                url: url.clone(),
                share_group: None,
            },
            _ => match args.mqtt_listen {
                Some(addr) => BrokerChoice::Embedded(addr),
                None => BrokerChoice::EmbeddedPreferred(DEFAULT_MQTT_LISTEN.into()),
            },
        };
        let running = RunningGateway::start(
            db.clone(),
            &args.data.data_dir,
            Some(&args.data.media()),
            broker,
        )?;
        if running.broker_moved {
            println!();
            println!(
                "*** MQTT: port {} is taken (another broker?); the embedded broker listens on {} ***",
                DEFAULT_MQTT_LISTEN.1,
                running.broker_url
            );
            println!("*** (choose the port with --mqtt-listen ADDR, or use that broker with SUYUAN_MQTT_URL) ***");
            println!();
        }
        println!("IoT gateway reading from {}", running.broker_url);
        Some(running)
    };
    if args.demo {
        let (db2, settings2, host) = (db.clone(), settings.clone(), public_host.clone());
        let media = args.data.media();
        let (summary, demo_labels) = actix_web::web::block(move || {
            let summary = demo::seed(&db2)?;
            let added = demo_media::ensure(&db2, &media)?;
            if added.readings + added.photos > 0 {
                println!(
                    "Demo history: {} cold-store readings, {} plot photos.",
                    added.readings, added.photos
                );
            }
            let demo_labels = summary
                .showcase_batch
                .map(|batch| demo_labels::ensure(&db2, &settings2, &host, batch));
            anyhow::Ok((summary, demo_labels))
        })
        .await??;
        let local = local_base(&args.listen);
        print_demo(&summary);
        let mqtt = match (&gateway, &args.mqtt_url) {
            (Some(g), None) => g.broker_url.clone(),
            (_, Some(url)) if !url.trim().is_empty() => url.clone(),
            _ => format!(
                "mqtt://{}",
                args.mqtt_listen.unwrap_or(DEFAULT_MQTT_LISTEN.into())
            ),
        };
        print_demo_devices(&summary, &mqtt, args.mqtt_url.is_some());
        let story = match &demo_labels {
            Some(Ok(l)) => {
                print_demo_labels(l, &settings, &local);
                Some(format!("{local}/{}", l.active))
            }
            Some(Err(e)) => {
                println!("Demo labels not minted: {e:#}");
                None
            }
            None => None,
        };
        if let Some(batch) = summary.showcase_batch {
            println!("The demo gift boxes' story, as a consumer sees it after a scan:");
            match story {
                Some(page) => println!("    open on this machine  {page}"),
                None => println!("    as JSON               {local}/api/v1/public/batches/{batch}"),
            }
        }
    }
    let anchorer = if args.anchor_interval.is_zero() {
        None
    } else {
        Some(super::anchor::Anchorer::start(
            db.clone(),
            settings.clone(),
            args.anchor_interval,
        )?)
    };
    let minter = Minter::start(db.clone(), settings)?;
    let exporter = Exporter::start(
        db.clone(),
        ExportSettings::in_data_dir(&args.data.data_dir, &public_base(&public_url)),
    )?;
    let listener = TcpListener::bind(&args.listen).with_context(|| {
        format!(
            "cannot listen on {} (is another server running there? use --listen ADDR)",
            args.listen
        )
    })?;
    let mut state = AppState::new(db)?
        .with_minter(minter)
        .with_exporter(exporter)
        .with_scan_settings(args.scan_settings())?;
    state.media_dir = Some(args.data.media());
    state.secure_cookies = args.secure_cookies;
    state.trusted_proxies = args.trusted_proxies.clone();
    let state = state.with_public_url(&public_url);
    match &state.scanning.ip_regions {
        Some(db) => println!("Scan regions by IP address: {db}"),
        None => println!("Scan regions by IP address: off (only locations that phones share)"),
    }
    println!("溯源 Suyuan serving on http://{}", listener.local_addr()?);
    let scan_log = state.scanning.log.clone();
    crate::run(listener, state)?.await?;
    // Scans queued by the last requests are written before the process ends.
    scan_log.flush().await;
    if let Some(g) = gateway {
        g.stop();
    }
    if let Some(a) = anchorer {
        a.stop();
    }
    Ok(())
}

fn print_demo(summary: &demo::DemoSummary) {
    if summary.seeded {
        println!("Demo county seeded (华宁县 530424).");
    } else {
        println!("Demo county already present.");
    }
    println!("Demo accounts (password: {}):", demo::DEMO_PASSWORD);
    for a in &summary.accounts {
        println!(
            "  {:<10} {:<10} {}",
            a.username,
            a.role.as_str(),
            a.organisation
        );
    }
}

/// `scheme://host` of the public address, as `AppState::public_base` gives it.
fn public_base(public_url: &str) -> String {
    let (scheme, host) = crate::state::public_url(public_url);
    format!("{scheme}://{host}")
}

/// `http://{listen}` as a browser on this machine opens it (the loopback address for 0.0.0.0 or ::).
fn local_base(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            format!("http://127.0.0.1:{}", addr.port())
        }
        Ok(addr) => format!("http://{addr}"),
        Err(_) => format!("http://{listen}"),
    }
}

fn print_demo_labels(l: &demo_labels::DemoLabels, settings: &MintSettings, local: &str) {
    println!(
        "Demo labels (run {}, {} labels; PDFs in {}):",
        l.run.id,
        l.run.count,
        settings.run_dir(l.run.id).display()
    );
    for (what, digits) in [
        ("genuine, active", &l.active),
        ("genuine, not yet activated", &l.unactivated),
        ("genuine, void", &l.void),
    ] {
        println!("  {what}:");
        println!("    open on this machine  {local}/{digits}");
        println!("    printed on the label  https://{}/{digits}", l.run.host);
    }
    println!(
        "  (A phone opens a printed URL only if it reaches {} over HTTPS; labels are minted once, with \
         the host of --public-host HOST at the first --demo run.)",
        l.run.host
    );
}

fn print_demo_devices(summary: &demo::DemoSummary, mqtt_url: &str, external: bool) {
    if summary.devices.is_empty() {
        return;
    }
    let (host, port) = host_port(mqtt_url);
    println!(
        "Demo devices on {host}:{port} (user name = client id, password {}{}):",
        demo::DEMO_PASSWORD,
        if external {
            "; give your broker their logins with `suyuan mqtt-auth`"
        } else {
            ""
        }
    );
    for d in &summary.devices {
        let base = format!("suyuan/v1/{}/{}", d.site_id, d.client_id);
        println!(
            "  {} ({}, site {}):",
            d.client_id,
            d.kind.as_str(),
            d.site_id
        );
        let (topic, message) = match d.kind {
            suyuan_core::model::DeviceKind::Sensor => (
                format!("{base}/telemetry"),
                r#"-m "{\"ts\": $(date +%s%3N), \"values\": {\"temp_c\": 4.2, \"rh_pct\": 86}}""#
                    .to_owned(),
            ),
            suyuan_core::model::DeviceKind::Camera => (
                format!("{base}/image/jpeg/$(date +%s%3N)"),
                "-f photo.jpg".to_owned(),
            ),
        };
        println!(
            "    mosquitto_pub -h {host} -p {port} -q 1 -i {id} -u {id} -P {pw} -t \"{topic}\" {message}",
            id = d.client_id,
            pw = demo::DEMO_PASSWORD,
        );
    }
}

/// Host and port of an `mqtt://[user:pass@]host[:port][?…]` URL, for `mosquitto_pub -h … -p …`.
fn host_port(url: &str) -> (String, u16) {
    let rest = url.strip_prefix("mqtt://").unwrap_or(url);
    let rest = rest.split(['?', '/']).next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port.parse().unwrap_or(1883),
        ),
        _ => (rest.to_owned(), 1883),
    }
}

#[cfg(test)]
mod tests {
    use super::{host_port, local_base};

    #[test]
    fn a_person_opens_the_loopback_address() {
        assert_eq!(local_base("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(local_base("127.0.0.1:18080"), "http://127.0.0.1:18080");
        assert_eq!(local_base("[::]:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn mosquitto_pub_gets_the_brokers_host_and_port() {
        assert_eq!(
            host_port("mqtt://127.0.0.1:40001"),
            ("127.0.0.1".into(), 40001)
        );
        assert_eq!(
            host_port("mqtt://gw:secret@broker.example:8883?client_id=x"),
            ("broker.example".into(), 8883)
        );
        assert_eq!(
            host_port("mqtt://broker.example"),
            ("broker.example".into(), 1883)
        );
        assert_eq!(host_port("mqtt://[::1]:1884"), ("::1".into(), 1884));
    }
}
