//! The domain database, PostgreSQL or a SQLite file as DATABASE_URL says: the pool (sized by
//! the DB_POOL_* settings), database creation, migrations.
//!
//! Every query is written once, in the subset both databases share, and type-checked against
//! each by [`on_db!`]. Timestamps are bound as `DateTime<Utc>`: `timestamptz` on PostgreSQL,
//! RFC 3339 text in UTC on SQLite, where sqlx writes only the fractional digits a value needs —
//! one canonical text per instant, which sorts in time order because `+` sorts before `.` and
//! every digit.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateDatabase, MigrateError, Migrator};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::config::DatabaseSettings;

mod statement;

pub use statement::{Rows, SqlValue, StatementError};

/// The PostgreSQL schema, embedded at build time from the workspace's `migrations/` folder.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");
/// The same schema for SQLite, kept in lock-step in `migrations/sqlite/`.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// One value per database: a pool, a transaction.
#[derive(Debug, Clone)]
pub enum Either<P, S> {
    Postgres(P),
    Sqlite(S),
}

/// The domain database's pool.
pub type Db = Either<PgPool, SqlitePool>;
/// A transaction on the domain database.
pub type Tx = Either<Transaction<'static, Postgres>, Transaction<'static, Sqlite>>;

/// Evaluates `$body` with `$x` bound to the PostgreSQL or the SQLite value of `$either`, so one
/// query body is compiled for both databases.
#[macro_export]
macro_rules! on_db {
    ($either:expr, $x:ident => $body:expr) => {
        match $either {
            $crate::database::Either::Postgres($x) => $body,
            $crate::database::Either::Sqlite($x) => $body,
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("DATABASE_URL is not a valid database URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("could not create the database named in DATABASE_URL: {0}")]
    Create(#[source] sqlx::Error),
    #[error("could not create the folder of the database file {path}: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] MigrateError),
}

/// Whether DATABASE_URL names a SQLite file.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Builds the pool without connecting: the host starts (and reports `degraded`) while the
/// database is down, and connects once it is back.
pub fn connect_lazy(settings: &DatabaseSettings) -> Result<Db, DatabaseError> {
    let url = settings.url.expose();
    if is_sqlite(url) {
        let options = SqliteConnectOptions::from_str(url).map_err(DatabaseError::Url)?;
        let path = options.get_filename().display().to_string();
        // Writers take turns (see `begin`): one waits for another as long as a job may last.
        let options = sqlite_file(options, settings.lock_wait)
            .map_err(|source| DatabaseError::Folder { path, source })?;
        return Ok(Either::Sqlite(pool_options(settings).connect_lazy_with(options)));
    }
    let options = PgConnectOptions::from_str(url).map_err(DatabaseError::Url)?;
    Ok(Either::Postgres(pool_options(settings).connect_lazy_with(options)))
}

/// How floh opens a SQLite file of its own (the database, the embedded queue): created with
/// its folder when missing, in WAL mode with `synchronous=FULL` so a committed change survives
/// a crash or `kill -9`, a writer waiting up to `lock_wait` for another.
pub fn sqlite_file(
    options: SqliteConnectOptions,
    lock_wait: Duration,
) -> std::io::Result<SqliteConnectOptions> {
    if let Some(folder) = options.get_filename().parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(lock_wait))
}

fn pool_options<DB: sqlx::Database>(settings: &DatabaseSettings) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(settings.pool_max)
        .min_connections(settings.pool_min)
        .idle_timeout(Some(settings.idle_timeout))
        .acquire_timeout(settings.connection_timeout)
}

impl Db {
    /// Starts a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a transaction that read first and wrote later would fail, not wait, when another
    /// connection wrote in between.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Either::Postgres(pool) => Either::Postgres(pool.begin().await?),
            Either::Sqlite(pool) => Either::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Connections open, and how many of them are idle.
    pub fn connections(&self) -> (u32, u32) {
        on_db!(self, pool => (pool.size(), pool.num_idle() as u32))
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }

    /// What `/api/health` shows as the database check's `mode`: `sqlite` for a database
    /// file, nothing for PostgreSQL (the runbook's database).
    pub fn mode(&self) -> Option<&'static str> {
        match self {
            Either::Postgres(_) => None,
            Either::Sqlite(_) => Some("sqlite"),
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        on_db!(self, tx => tx.commit().await)
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        on_db!(self, tx => tx.rollback().await)
    }
}

/// Opens DB_POOL_MIN connections now. A lazy pool only tops itself up to its minimum after
/// reaping an idle connection, so without this the minimum would not hold after start-up.
pub async fn warm_up(db: &Db, min: u32) {
    let mut opened = Vec::new();
    for _ in 0..min {
        let acquired = match db {
            Either::Postgres(pool) => pool.acquire().await.map(Either::Postgres),
            Either::Sqlite(pool) => pool.acquire().await.map(Either::Sqlite),
        };
        match acquired {
            Ok(conn) => opened.push(conn),
            Err(e) => {
                tracing::warn!(error = %e, "could not open the pool's minimum connections yet");
                break;
            }
        }
    }
}

/// Creates the PostgreSQL database named in the URL if it does not exist yet (a SQLite file
/// is created when the pool first opens it).
pub async fn ensure_exists(settings: &DatabaseSettings) -> Result<(), DatabaseError> {
    let url = settings.url.expose();
    if is_sqlite(url) || Postgres::database_exists(url).await.map_err(DatabaseError::Create)? {
        return Ok(());
    }
    match Postgres::create_database(url).await {
        Ok(()) => Ok(()),
        // Another replica may have created it in the meantime.
        Err(_) if Postgres::database_exists(url).await.unwrap_or(false) => Ok(()),
        Err(e) => Err(DatabaseError::Create(e)),
    }
}

/// Creates the database if needed and applies every pending migration. Safe to run from
/// several processes at once: sqlx serialises PostgreSQL migrations with an advisory lock;
/// for SQLite, which sqlx does not lock, one write transaction holds the whole run.
pub async fn migrate(settings: &DatabaseSettings, db: &Db) -> Result<(), DatabaseError> {
    ensure_exists(settings).await?;
    match db {
        Either::Postgres(pool) => MIGRATOR.run(pool).await?,
        Either::Sqlite(pool) => {
            // A file another process is still creating can answer "busy" at once instead of
            // making the writer wait; that run is tried again.
            let deadline = std::time::Instant::now() + settings.lock_wait;
            loop {
                match migrate_sqlite(pool).await {
                    Err(
                        MigrateError::Execute(sqlx::Error::Database(e))
                        | MigrateError::ExecuteMigration(sqlx::Error::Database(e), _),
                    ) if is_sqlite_busy(e.as_ref()) && std::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    done => break done?,
                }
            }
        }
    }
    Ok(())
}

async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), MigrateError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(MigrateError::Execute)?;
    SQLITE_MIGRATOR.run(&mut *tx).await?;
    tx.commit().await.map_err(MigrateError::Execute)
}

/// SQLITE_BUSY and SQLITE_LOCKED, with their extended codes (the low byte is the primary code).
pub fn is_sqlite_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && error.code().and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Round-trips one query, bounded by `timeout`.
pub async fn ping(db: &Db, timeout: Duration) -> Result<(), String> {
    let ping = async { on_db!(db, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)) };
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::config::Secret;

    /// Two hosts starting on the same new file at once both end up with the whole schema.
    #[tokio::test]
    async fn hosts_migrating_one_sqlite_file_at_once_take_turns() {
        let dir = std::env::temp_dir().join(format!("floh-migrate-{}", uuid::Uuid::new_v4()));
        let settings = DatabaseSettings {
            url: Secret::new(format!("sqlite://{}", dir.join("floh.db").display())),
            pool_max: 2,
            pool_min: 0,
            idle_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(5),
            lock_wait: Duration::from_secs(30),
        };
        let (first, second) = (connect_lazy(&settings).unwrap(), connect_lazy(&settings).unwrap());
        let (a, b) = tokio::join!(migrate(&settings, &first), migrate(&settings, &second));
        a.unwrap();
        b.unwrap();
        let Either::Sqlite(pool) = &first else { unreachable!() };
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(pool).await.unwrap();
        assert_eq!(applied, SQLITE_MIGRATOR.iter().count() as i64);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The text sqlx writes for a timestamp on SQLite sorts in time order whatever fractional
    /// digits each value needs, which is what every `ORDER BY` and `<` on a timestamp relies on.
    #[tokio::test]
    async fn sqlite_timestamps_sort_in_time_order() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (at DATETIME NOT NULL)").execute(&pool).await.unwrap();
        let base = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().with_timezone(&Utc);
        let offsets_ns =
            [0, 1, 999, 1_000, 100_000_000, 120_000_000, 999_999_999, 1_000_000_000, 1_000_000_001];
        let instants: Vec<DateTime<Utc>> =
            offsets_ns.iter().map(|ns| base + chrono::Duration::nanoseconds(*ns)).collect();
        for at in instants.iter().rev() {
            sqlx::query("INSERT INTO t (at) VALUES ($1)").bind(at).execute(&pool).await.unwrap();
        }
        let sorted: Vec<DateTime<Utc>> =
            sqlx::query_scalar("SELECT at FROM t ORDER BY at").fetch_all(&pool).await.unwrap();
        assert_eq!(sorted, instants);
        let later: i64 = sqlx::query_scalar("SELECT count(*) FROM t WHERE at > $1")
            .bind(base + chrono::Duration::milliseconds(100))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(later, 4, "120 ms, 999.999999 ms, 1 s and 1 s + 1 ns are after 100 ms");
    }
}
