//! `suyuan migrate`: runs pending migrations (they also run at every start) and lists them.

use clap::Args;

use super::DataArgs;

/// Options of `suyuan migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

/// Opens the database, which applies what is pending, and reports.
pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let url = args.data.url()?;
    let db = suyuan_core::Database::open(
        &url,
        &suyuan_core::db::PoolConfig {
            max_size: 1,
            ..Default::default()
        },
    )?;
    let pending = db.migrate()?;
    println!(
        "database {} is at the latest schema{}",
        url.redacted(),
        if pending.is_empty() {
            ""
        } else {
            " (applied now)"
        }
    );
    Ok(())
}
