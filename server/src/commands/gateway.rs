//! `suyuan gateway`: the IoT gateway alone, for scaled deployments: several replicas on several
//! machines, each with its own spool folder and client id, sharing the subscription on one external
//! broker and writing to one PostgreSQL database. Stops gracefully on Ctrl-C or SIGTERM (the batch in
//! hand is written and acknowledged first).

use clap::Args;
use sha2::Digest;

use super::DataArgs;
use crate::iot::run::{BrokerChoice, RunningGateway};

/// Options of `suyuan gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The broker: mqtt://[user:pass@]host[:port][?client_id=…]. Without a client id, one is made from the
    /// host name and the data folder (stable across restarts, different per replica).
    #[arg(long, env = "SUYUAN_MQTT_URL")]
    pub mqtt_url: String,
    /// Split the stream with the other replicas through this shared-subscription group
    /// (`$share/GROUP/...`; e.g. `suyuan`). Without it the gateway subscribes plainly, which survives a
    /// Mosquitto restart (Mosquitto does not keep shared subscriptions across restarts).
    #[arg(long, env = "SUYUAN_MQTT_SHARE_GROUP")]
    pub share_group: Option<String>,
    /// Data folder: the spool (`DATA/spool`, one per replica) and the media (`DATA/media`, shared by
    /// replicas and the API servers, e.g. over NFS), and the SQLite database unless DATABASE_URL is set.
    #[command(flatten)]
    pub data: DataArgs,
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let db = args.data.open()?;
    let url = with_client_id(&args.mqtt_url, &args.data.data_dir);
    let share_group = args.share_group.filter(|g| !g.trim().is_empty());
    let gateway = RunningGateway::start(
        db,
        &args.data.data_dir,
        Some(&args.data.media()),
        BrokerChoice::External { url, share_group },
    )?;
    println!("IoT gateway reading from {}", gateway.broker_url);
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r?,
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await?;
        anyhow::Ok(())
    })?;
    if let Some(stats) = gateway.stats() {
        println!(
            "stopping: {} received, {} stored, {} refused, {} spooled",
            stats.received, stats.stored, stats.refused, stats.spooled
        );
    }
    gateway.stop();
    Ok(())
}

/// The broker URL with this replica's client id: the one given (`?client_id=`), or one made from the
/// host name and the data folder, stable across restarts (the broker keeps the replica's session, and its
/// unacknowledged messages, under that id) and different for every replica.
fn with_client_id(url: &str, data_dir: &std::path::Path) -> String {
    if url.contains("client_id=") {
        return url.to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let folder = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = sha2::Sha256::digest(folder.to_string_lossy().as_bytes());
    let id = format!("suyuan-gw-{host}-{}", hex::encode(&digest[..4]));
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}client_id={id}")
}
