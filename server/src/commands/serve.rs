//! `suyuan serve`: the API and pages on one address, SQLite under `./data` unless `DATABASE_URL` says
//! otherwise; `--demo` seeds the demo county once and prints its accounts.

use std::net::TcpListener;

use anyhow::Context;
use clap::Args;
use suyuan_core::demo;

use super::DataArgs;
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
    /// Mark cookies Secure (when served behind HTTPS).
    #[arg(long, env = "SUYUAN_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

/// Runs the server until Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let db = args.data.open()?;
    if args.demo {
        let db2 = db.clone();
        let summary = actix_web::web::block(move || demo::seed(&db2)).await??;
        print_demo(&summary, &args.listen);
    }
    let listener = TcpListener::bind(&args.listen).with_context(|| {
        format!(
            "cannot listen on {} (is another server running there? use --listen ADDR)",
            args.listen
        )
    })?;
    let mut state = AppState::new(db);
    state.secure_cookies = args.secure_cookies;
    println!("溯源 Suyuan serving on http://{}", listener.local_addr()?);
    crate::run(listener, state)?.await?;
    Ok(())
}

fn print_demo(summary: &demo::DemoSummary, listen: &str) {
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
    if let Some(batch) = summary.showcase_batch {
        println!(
            "Public story of the demo gift boxes: http://{listen}/api/v1/public/batches/{batch}"
        );
    }
}
