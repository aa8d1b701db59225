//! `suyuan`: one binary for the whole platform. It only parses the command line and hands over to
//! `suyuan_server::commands`.

use clap::{Parser, Subcommand};
use suyuan_server::commands::{anchor, gateway, keys, labels, migrate, mqtt_auth, serve, verify};

/// 溯源 Suyuan: field-to-table traceability for a county's agricultural products.
#[derive(Debug, Parser)]
#[command(name = "suyuan", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the web pages.
    Serve(serve::ServeArgs),
    /// Run the IoT gateway alone against an external MQTT broker (scaled deployments).
    Gateway(gateway::GatewayArgs),
    /// Apply pending database migrations.
    Migrate(migrate::MigrateArgs),
    /// Write Mosquitto's password and ACL files from the device registry (external broker).
    MqttAuth(mqtt_auth::MqttAuthArgs),
    /// Label signing keys: create, list, rotate, export the public keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Signed QR labels: mint runs as printable PDFs.
    #[command(subcommand)]
    Labels(labels::LabelsCommand),
    /// Sign an anchor of every batch's chain head now (under DATA/anchors and in the database).
    Anchor(anchor::AnchorArgs),
    /// Check stored data against its hash chains.
    #[command(subcommand)]
    Verify(verify::VerifyCommand),
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUYUAN_LOG")
                // The embedded broker (rumqttd) logs every client that disconnects as an error.
                .unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => actix_web::rt::System::new().block_on(serve::run(args))?,
        Command::Gateway(args) => gateway::run(args)?,
        Command::Migrate(args) => migrate::run(args)?,
        Command::MqttAuth(args) => mqtt_auth::run(args)?,
        Command::Keys(cmd) => keys::run(cmd)?,
        Command::Labels(cmd) => labels::run(cmd)?,
        Command::Anchor(args) => anchor::run(args)?,
        Command::Verify(cmd) => {
            if !verify::run(cmd)? {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
