//! `suyuan gateway`: the IoT gateway alone, for scaled deployments: several replicas on several
//! machines, each with its own spool folder and client id, sharing the subscription on one external
//! broker and writing to one PostgreSQL database. Stops gracefully on Ctrl-C or SIGTERM (the batch in
//! hand is written and acknowledged first).

use clap::Args;

use super::DataArgs;
use crate::iot::run::{BrokerChoice, RunningGateway};

/// Options of `suyuan gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The broker: mqtt://[user:pass@]host[:port][?client_id=…]; give each replica its own client id.
    #[arg(long, env = "SUYUAN_MQTT_URL")]
    pub mqtt_url: String,
    /// Data folder: the spool (`DATA/spool`, one per replica) and the media (`DATA/media`, shared by
    /// replicas and the API servers, e.g. over NFS), and the SQLite database unless DATABASE_URL is set.
    #[command(flatten)]
    pub data: DataArgs,
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let db = args.data.open()?;
    let gateway = RunningGateway::start(
        db,
        &args.data.data_dir,
        BrokerChoice::External(args.mqtt_url),
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
