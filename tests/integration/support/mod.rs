//! The test harness: [`TestApp`] starts the real server on `127.0.0.1:0` over its own database (a fresh
//! SQLite file, or a fresh PostgreSQL schema), and [`World`] fills it with the organisations and accounts of
//! a small county.
//!
//! PostgreSQL: `SUYUAN_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`). When it cannot
//! be reached, PostgreSQL tests fail in CI (`CI` or `SUYUAN_REQUIRE_POSTGRES` set) and are skipped with a
//! message elsewhere.

#![allow(dead_code)]

pub mod mqtt;
pub mod world;

use std::net::TcpListener;
use std::sync::mpsc;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::Value;
use suyuan_core::db::{DatabaseUrl, PoolConfig};
use suyuan_core::Database;

pub use world::World;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use.
pub fn postgres_url() -> String {
    std::env::var("SUYUAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn postgres_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("SUYUAN_REQUIRE_POSTGRES").is_some()
}

/// A fresh, empty database of `backend` (migrated), or `None` when PostgreSQL is not reachable here and not
/// required.
pub struct TestDb {
    pub url: DatabaseUrl,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<String>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = DatabaseUrl::Sqlite {
                    path: dir.path().join("test.sqlite"),
                    create: true,
                };
                Some(TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg_schema: None,
                })
            }
            Backend::Postgres => {
                let base = postgres_url();
                let mut admin = match PgConnection::establish(&base) {
                    Ok(c) => c,
                    Err(e) if !postgres_required() => {
                        eprintln!("SKIPPED: PostgreSQL not reachable at {base} ({e}); set SUYUAN_TEST_POSTGRES_URL or start it");
                        return None;
                    }
                    Err(e) => {
                        panic!("PostgreSQL is required here (CI) but not reachable at {base}: {e}")
                    }
                };
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                admin
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                let url =
                    DatabaseUrl::Postgres(format!("{base}{sep}options=-csearch_path%3D{schema}"));
                Some(TestDb {
                    url,
                    backend,
                    _dir: None,
                    pg_schema: Some(schema),
                })
            }
        }
    }

    /// Opens (and migrates) the database.
    pub fn open(&self) -> Database {
        Database::open(
            &self.url,
            &PoolConfig {
                max_size: 4,
                ..Default::default()
            },
        )
        .expect("open database")
    }

    /// Runs raw SQL on a connection of its own (for tampering and inspection in tests).
    pub fn raw(&self, sql: &str) {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .expect("connect")
                .batch_execute(sql)
                .expect("raw sql"),
            DatabaseUrl::Sqlite { path, .. } => {
                diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .expect("connect")
                    .batch_execute(sql)
                    .expect("raw sql")
            }
        }
    }

    /// Like [`raw`](Self::raw) but returns the error text instead of panicking.
    pub fn try_raw(&self, sql: &str) -> Result<(), String> {
        let r = match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .expect("connect")
                .batch_execute(sql),
            DatabaseUrl::Sqlite { path, .. } => {
                diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .expect("connect")
                    .batch_execute(sql)
            }
        };
        r.map_err(|e| e.to_string())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = &self.pg_schema {
            if let Ok(mut admin) = PgConnection::establish(&postgres_url()) {
                let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// The real server on a free port, over a fresh database.
pub struct TestApp {
    pub base: String,
    pub db: Database,
    /// The server's data folder: signing keys under `keys/`, label runs under `label-runs/`, exports under
    /// `exports/`.
    pub data_dir: tempfile::TempDir,
    /// The server's scanning machinery (its scan log is flushed by [`TestApp::flush_scans`]).
    pub scanning: std::sync::Arc<suyuan_server::scans::Scanning>,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
    // Dropped last: the schema or folder goes after the server and pool are gone.
    pub test_db: TestDb,
}

impl TestApp {
    /// Starts the server, or `None` when the backend is not available here (see the module doc).
    pub fn start(backend: Backend) -> Option<TestApp> {
        TestApp::start_with(backend, suyuan_server::scans::ScanSettings::default())
    }

    /// Starts the server with these scanning settings (IP-to-region database, rules, SMS token).
    pub fn start_with(
        backend: Backend,
        scan_settings: suyuan_server::scans::ScanSettings,
    ) -> Option<TestApp> {
        let test_db = TestDb::new(backend)?;
        let db = test_db.open();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let data_dir = tempfile::tempdir().expect("data dir");
        let settings = suyuan_server::minting::MintSettings {
            env_key: None,
            threads: Some(1),
            labels_per_file: 48,
            ..suyuan_server::minting::MintSettings::in_data_dir(data_dir.path())
        };
        let minter = suyuan_server::minting::Minter::start(db.clone(), settings).expect("minter");
        let exporter = suyuan_server::exporting::Exporter::start(
            db.clone(),
            suyuan_server::exporting::ExportSettings::in_data_dir(data_dir.path(), "https://t.cn"),
        )
        .expect("exporter");
        let mut state = suyuan_server::AppState::new(db.clone())
            .expect("app state")
            .with_minter(minter)
            .with_exporter(exporter)
            .with_scan_settings(scan_settings)
            .expect("scan settings");
        state.media_dir = Some(data_dir.path().join("media"));
        let scanning = state.scanning.clone();
        state.public_host = "t.cn".into();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = suyuan_server::run(listener, state).expect("server");
                tx.send(server.handle()).expect("send handle");
                let _ = server.await;
            })
        });
        let handle = rx.recv().expect("server started");
        Some(TestApp {
            base,
            db,
            data_dir,
            scanning,
            handle: Some(handle),
            thread: Some(thread),
            test_db,
        })
    }

    /// A request builder for `path` (relative to the server).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request and returns status and JSON body (`Value::Null` when the body is not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = ureq::request(method, &self.url(path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        response(res)
    }

    /// Sends a raw body with a content type.
    pub fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let mut req = ureq::request(method, &self.url(path)).set("Content-Type", content_type);
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        response(req.send_bytes(body))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call("GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.call("POST", path, token, Some(body))
    }

    /// A GET of raw bytes (PDFs, CSV, pages) with an optional `Accept`: status, content type and body.
    pub fn fetch(
        &self,
        path: &str,
        token: Option<&str>,
        accept: Option<&str>,
    ) -> (u16, String, Vec<u8>) {
        let mut req = ureq::get(&self.url(path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        if let Some(a) = accept {
            req = req.set("Accept", a);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("Content-Type").unwrap_or_default().to_owned();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("read body");
        (status, content_type, body)
    }

    /// Waits until every scan the server has queued so far is stored.
    pub fn flush_scans(&self) {
        actix_web::rt::System::new().block_on(self.scanning.log.flush());
    }

    /// Row counts of every table, to show that a refused request changed nothing.
    pub fn counts(&self) -> Vec<(String, i64)> {
        self.db
            .read(suyuan_core::store::verify::table_counts)
            .expect("counts")
    }
}

fn response(res: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Defines a test that runs once on SQLite and once on PostgreSQL: `both_backends!(name);` for a function
/// `fn name(app: TestApp)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { if let Some(app) = $crate::support::TestApp::start($crate::support::Backend::Sqlite) { super::$name(app) } })*
        }
        mod postgres {
            $(#[test] fn $name() { if let Some(app) = $crate::support::TestApp::start($crate::support::Backend::Postgres) { super::$name(app) } })*
        }
    };
}

/// Percent-encodes a query value (a label URL passed as `?code=`).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A fresh client id.
pub fn cid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An RFC 3339 time `days` days ago.
pub fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339()
}
