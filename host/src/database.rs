//! PostgreSQL: the pool (sized by the DB_POOL_* settings), database creation, migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DatabaseSettings;

/// The schema, embedded at build time from the workspace's `migrations/` folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("could not create the database named in DATABASE_URL: {0}")]
    Create(#[source] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Builds the pool without connecting: the host starts (and reports `degraded`) while the
/// database is down, and connects once it is back.
pub fn connect_lazy(settings: &DatabaseSettings) -> Result<PgPool, DatabaseError> {
    let options = PgConnectOptions::from_str(settings.url.expose()).map_err(DatabaseError::Url)?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.pool_max)
        .min_connections(settings.pool_min)
        .idle_timeout(Some(settings.idle_timeout))
        .acquire_timeout(settings.connection_timeout)
        .connect_lazy_with(options))
}

/// Opens DB_POOL_MIN connections now. A lazy pool only tops itself up to its minimum after
/// reaping an idle connection, so without this the minimum would not hold after start-up.
pub async fn warm_up(pool: &PgPool, min: u32) {
    let mut opened = Vec::new();
    for _ in 0..min {
        match pool.acquire().await {
            Ok(conn) => opened.push(conn),
            Err(e) => {
                tracing::warn!(error = %e, "could not open the pool's minimum connections yet");
                break;
            }
        }
    }
}

/// Creates the database named in the URL if it does not exist yet.
pub async fn ensure_exists(settings: &DatabaseSettings) -> Result<(), DatabaseError> {
    let url = settings.url.expose();
    if sqlx::Postgres::database_exists(url).await.map_err(DatabaseError::Create)? {
        return Ok(());
    }
    match sqlx::Postgres::create_database(url).await {
        Ok(()) => Ok(()),
        // Another replica may have created it in the meantime.
        Err(_) if sqlx::Postgres::database_exists(url).await.unwrap_or(false) => Ok(()),
        Err(e) => Err(DatabaseError::Create(e)),
    }
}

/// Creates the database if needed and applies every pending migration. Safe to run from
/// several replicas at once: sqlx serialises migrations with an advisory lock.
pub async fn migrate(settings: &DatabaseSettings, pool: &PgPool) -> Result<(), DatabaseError> {
    ensure_exists(settings).await?;
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Round-trips one query, bounded by `timeout`.
pub async fn ping(pool: &PgPool, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}
