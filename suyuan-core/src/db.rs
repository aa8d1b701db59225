//! The database: one connection type over SQLite and PostgreSQL, a pool, and the embedded migrations.
//!
//! SQLite is the embedded default (a file under the data folder, WAL mode, a busy timeout, foreign keys on,
//! `synchronous=FULL` so that a commit acknowledged to a user survives a power cut). SQLite has one writer at
//! a time, so writes share one write connection with group commit ([`crate::writer`]): each runs on its
//! caller's thread in a savepoint of the open transaction, and the last caller in line commits for the group,
//! instead of failing with `SQLITE_BUSY` when two deferred transactions both try to upgrade; readers use the
//! pool and never wait for it. PostgreSQL needs none of this and the code never assumes a single process there:
//! per-batch ordering is kept by row locks (`FOR UPDATE`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{CoreError, CoreResult};
use crate::writer::Writer;

/// Migrations for each backend; the directory names are identical in both folders.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
/// See [`SQLITE_MIGRATIONS`].
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// A connection to either backend. Queries that read the same on both are written once and compiled for each
/// arm by [`on_backend!`](crate::on_backend); the few that differ match on the variant explicitly.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, for deployments beyond one machine.
    Postgresql(PgConnection),
    /// SQLite, the embedded default.
    Sqlite(SqliteConnection),
}

/// Runs the same diesel code against whichever backend `$conn` is, binding the concrete connection to `$c`.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Postgresql($c) => $body,
        }
    };
}

/// Which database a [`DatabaseUrl`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Where the data lives, parsed from `DATABASE_URL` or defaulted to the data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://` or `postgresql://`.
    Postgres(String),
    /// An SQLite file; `create` says whether a missing file may be created.
    Sqlite { path: PathBuf, create: bool },
}

impl DatabaseUrl {
    /// Parses a `DATABASE_URL`. `sqlite://PATH` (or `sqlite:PATH`) may create the file; a bare path is
    /// accepted only when the file already exists, so that a typo never silently becomes a new empty database.
    pub fn parse(url: &str) -> CoreResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(CoreError::Setup(
                    "DATABASE_URL sqlite:// needs a file path".into(),
                ));
            }
            return Ok(DatabaseUrl::Sqlite {
                path: PathBuf::from(path),
                create: true,
            });
        }
        if url.contains("://") {
            return Err(CoreError::Setup(format!(
                "DATABASE_URL scheme not supported: use postgres://… or sqlite://PATH (got {})",
                url.split("://").next().unwrap_or_default()
            )));
        }
        let path = PathBuf::from(url);
        if !path.is_file() {
            return Err(CoreError::Setup(format!(
                "DATABASE_URL {url} is not an existing SQLite file; write sqlite://{url} to create a new database there"
            )));
        }
        Ok(DatabaseUrl::Sqlite {
            path,
            create: false,
        })
    }

    /// The default: `suyuan.sqlite` in the data folder, created on first start.
    pub fn default_in(data_dir: &Path) -> Self {
        DatabaseUrl::Sqlite {
            path: data_dir.join("suyuan.sqlite"),
            create: true,
        }
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// A form safe to print: the password of a PostgreSQL URL is masked.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(s), Some(at)) if at > s => {
                    let creds = &url[s + 3..at];
                    match creds.split_once(':') {
                        Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                        None => url.clone(),
                    }
                }
                _ => url.clone(),
            },
        }
    }
}

/// Opens connections of the right variant for the pool; connection strings are never guessed.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgresql)
                .map_err(diesel::r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite { path, .. } => {
                let path = path.to_string_lossy();
                let mut c = SqliteConnection::establish(&path)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                c.batch_execute(
                    // The busy timeout first: switching a new file to WAL takes a lock that the
                    // pool's other connections, opening at the same moment, must wait for.
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        on_backend!(conn, c => c.batch_execute("SELECT 1")).map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A connection left inside a broken transaction is dropped instead of going back to the pool.
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Pool size and timeouts.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most connections open at once.
    pub max_size: u32,
    /// How long a request waits for a connection before it fails with "database unavailable".
    pub connection_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 16,
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// The shared handle to the database: cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool<Manager>,
    backend: Backend,
    /// The SQLite writer thread; `None` on PostgreSQL.
    writer: Option<std::sync::Arc<Writer>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Database {
    /// Opens (creating an SQLite file only where the URL allows it), then runs pending migrations.
    pub fn open(url: &DatabaseUrl, config: &PoolConfig) -> CoreResult<Self> {
        if let DatabaseUrl::Sqlite { path, create } = url {
            if !*create && !path.is_file() {
                return Err(CoreError::Setup(format!(
                    "SQLite file {} does not exist",
                    path.display()
                )));
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dirs(dir)?;
            }
            private_database_files(path)?;
        }
        if url.backend() == Backend::Sqlite {
            // Switch a new file to WAL on one connection before the pool opens several at once (the
            // switch needs the file to itself; the pool's connections then find it done).
            Manager { url: url.clone() }.connect().map_err(|e| {
                CoreError::Setup(format!("cannot open database {}: {e}", url.redacted()))
            })?;
        }
        let pool = Pool::builder()
            .max_size(config.max_size)
            // Open connections as load needs them rather than all at start.
            .min_idle(Some(config.max_size.min(2)))
            // No `SELECT 1` before every checkout (two per request); a connection that broke fails its query,
            // which is answered as an error, and `has_broken` keeps it out of the pool.
            .test_on_check_out(false)
            .connection_timeout(config.connection_timeout)
            .build(Manager { url: url.clone() })
            .map_err(|e| {
                CoreError::Setup(format!("cannot open database {}: {e}", url.redacted()))
            })?;
        let backend = url.backend();
        let mut db = Database {
            pool,
            backend,
            writer: None,
        };
        db.migrate()?;
        if backend == Backend::Sqlite {
            let conn = Manager { url: url.clone() }.connect().map_err(|e| {
                CoreError::Setup(format!("cannot open database {}: {e}", url.redacted()))
            })?;
            db.writer = Some(std::sync::Arc::new(Writer::new(conn)));
        }
        Ok(db)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs the pending migrations of this backend.
    pub fn migrate(&self) -> CoreResult<Vec<String>> {
        let mut conn = self.pool.get()?;
        run_migrations(&mut conn)
    }

    /// A connection for reads (and for callers that manage their own transaction).
    pub fn conn(&self) -> CoreResult<diesel::r2d2::PooledConnection<Manager>> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` in one write transaction and returns once it is committed. On SQLite it runs on the calling
    /// thread, in a savepoint of the shared write connection's open transaction, and returns after the group
    /// commit that covers it (see [`crate::writer`]).
    pub fn write<T>(&self, f: impl FnOnce(&mut DbConnection) -> CoreResult<T>) -> CoreResult<T> {
        match &self.writer {
            Some(writer) => writer.write(f),
            None => {
                let mut conn = self.pool.get()?;
                DbConnection::transaction(&mut conn, f)
            }
        }
    }

    /// Runs `f` on a pooled connection without a transaction of its own.
    pub fn read<T>(&self, f: impl FnOnce(&mut DbConnection) -> CoreResult<T>) -> CoreResult<T> {
        let mut conn = self.pool.get()?;
        f(&mut conn)
    }
}

/// Creates `dir` and its missing parents readable by the owner only (0700); folders that exist are left
/// as they are (the database may live in a shared folder such as `/tmp`).
pub fn create_private_dirs(dir: &Path) -> CoreResult<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| CoreError::Setup(format!("cannot create {}: {e}", dir.display())))
}

/// Makes a folder of Suyuan's own (the data folder) owner-only: creates it 0700, or takes group and
/// others' access away from one that exists.
pub fn private_dir(dir: &Path) -> CoreResult<()> {
    create_private_dirs(dir)?;
    owner_only(dir, 0o700)
}

/// Takes group and others' access away from `path` when it has any (unix; elsewhere nothing to do).
fn owner_only(path: &Path, mode: u32) -> CoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| CoreError::Setup(format!("cannot read {}: {e}", path.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            // Not ours to change (another owner): say so, and go on as before.
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
                tracing::warn!(
                    "cannot make {} readable by its owner only: {e}",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The SQLite file is created owner-only (0600) before SQLite opens it, and an existing one (with its
/// `-wal`, `-shm` and `-journal`) is made so: SQLite gives the files it creates beside the database the
/// database's own mode, so the write-ahead log and shared memory stay private too.
fn private_database_files(path: &Path) -> CoreResult<()> {
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(CoreError::Setup(format!(
                    "cannot create {}: {e}",
                    path.display()
                )))
            }
        }
    }
    owner_only(path, 0o600)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            owner_only(&side, 0o600)?;
        }
    }
    Ok(())
}

/// Runs the pending migrations on one connection and returns their names.
pub fn run_migrations(conn: &mut DbConnection) -> CoreResult<Vec<String>> {
    let done = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(names),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(names),
    };
    done.map_err(|e| CoreError::Setup(format!("migration failed: {e}")))
}

/// Reverts every applied migration, newest first (used by the up-down-up test and `suyuan migrate --revert-all`).
pub fn revert_all_migrations(conn: &mut DbConnection) -> CoreResult<Vec<String>> {
    let done = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(names),
        DbConnection::Postgresql(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(names),
    };
    done.map_err(|e| CoreError::Setup(format!("migration revert failed: {e}")))
}

fn names(versions: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    versions.into_iter().map(|v| v.to_string()).collect()
}

#[cfg(feature = "test-support")]
/// Checks that `name` can be spliced into SQL as a schema name: lowercase ASCII letters, digits and `_`, not
/// starting with a digit, at most 63 bytes. Identifiers cannot be bound as parameters, so this is what keeps
/// [`create_pg_schema`] and [`drop_pg_schema`] free of injection.
fn pg_schema_name(name: &str) -> CoreResult<&str> {
    let ok = (1..=63).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(CoreError::Setup(format!(
            "{name:?} is not a usable schema name (lowercase letters, digits, _)"
        )))
    }
}

#[cfg(feature = "test-support")]
/// Creates a PostgreSQL schema, so that a benchmark or a test run gets tables of its own on a shared server.
/// Open the database with [`pg_url_with_schema`] to use it; migrations then create the tables there.
pub fn create_pg_schema(url: &str, name: &str) -> CoreResult<()> {
    let name = pg_schema_name(name)?;
    PgConnection::establish(url)
        .map_err(|e| CoreError::Setup(format!("cannot connect to PostgreSQL: {e}")))?
        .batch_execute(&format!("CREATE SCHEMA {name}"))?;
    Ok(())
}

#[cfg(feature = "test-support")]
/// Drops a schema made by [`create_pg_schema`] with everything in it.
pub fn drop_pg_schema(url: &str, name: &str) -> CoreResult<()> {
    let name = pg_schema_name(name)?;
    PgConnection::establish(url)
        .map_err(|e| CoreError::Setup(format!("cannot connect to PostgreSQL: {e}")))?
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))?;
    Ok(())
}

#[cfg(feature = "test-support")]
/// `url` with its connections' `search_path` set to `schema` (a libpq `options` parameter).
pub fn pg_url_with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}
