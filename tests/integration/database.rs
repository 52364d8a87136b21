//! A fresh, migrated domain database on either backend, spoken to the way plugins speak to
//! it: portable SQL with `$N` placeholders and typed values (floh's own statement runner).

use chrono::{DateTime, Utc};
use floh::config::DatabaseSettings;
use floh::config::Secret;
use floh::database::{Db, SqlValue};

use crate::helpers::TestDb;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Generates `postgres::<name>` and `sqlite::<name>` tests for each `async fn <name>(Backend)`,
/// with `#[tokio::test]` or the test attribute given first.
macro_rules! on_both_databases {
    (#[$test:meta] $($name:ident),* $(,)?) => {
        /// On PostgreSQL, with Redis for the queue.
        mod postgres {
            $(#[$test]
            async fn $name() {
                $crate::services::needs!(Postgres, Redis);
                super::$name($crate::database::Backend::Postgres).await
            })*
        }
        /// On a SQLite file, with the embedded queue: nothing to install.
        mod sqlite {
            $(#[$test]
            async fn $name() {
                super::$name($crate::database::Backend::Sqlite).await
            })*
        }
    };
    ($($name:ident),* $(,)?) => {
        on_both_databases!(#[tokio::test] $($name),*);
    };
}
pub(crate) use on_both_databases;

/// Statement parameters: `params![id, at, None::<&str>]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => { vec![$(floh::database::SqlValue::from($value)),*] };
}
pub(crate) use params;

pub struct Database {
    pub pool: Db,
    url: String,
    /// The PostgreSQL database or the SQLite file's folder, removed when the test ends.
    _owned: (Option<TestDb>, Option<tempfile::TempDir>),
}

impl Database {
    pub async fn migrated(backend: Backend) -> Self {
        let (url, owned) = match backend {
            Backend::Postgres => {
                let db = TestDb::create().await;
                (db.url(), (Some(db), None))
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                (format!("sqlite://{}", dir.path().join("floh.db").display()), (None, Some(dir)))
            }
        };
        Self::open(url, owned).await
    }

    async fn open(url: String, owned: (Option<TestDb>, Option<tempfile::TempDir>)) -> Self {
        let settings = DatabaseSettings {
            url: Secret::new(url.clone()),
            pool_max: 4,
            pool_min: 0,
            idle_timeout: std::time::Duration::from_secs(30),
            connection_timeout: std::time::Duration::from_secs(5),
            lock_wait: std::time::Duration::from_secs(30),
        };
        let pool = floh::database::connect_lazy(&settings).unwrap();
        floh::database::migrate(&settings, &pool).await.unwrap();
        Self { pool, url, _owned: owned }
    }

    /// The migrated database at `url`, left in place when the test ends.
    pub async fn at(url: &str) -> Self {
        Self::open(url.to_owned(), (None, None)).await
    }

    /// DATABASE_URL of this database.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Runs a statement in a transaction of its own; returns the rows it affected.
    pub async fn exec(&self, sql: &str, params: Vec<SqlValue>) -> u64 {
        let mut tx = self.pool.begin().await.unwrap();
        let affected = tx.execute(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        tx.commit().await.unwrap();
        affected
    }

    /// Every row of a query, each read as `T` (a tuple of column types).
    pub async fn rows<T: FromValues>(&self, sql: &str, params: Vec<SqlValue>) -> Vec<T> {
        let mut tx = self.pool.begin().await.unwrap();
        let rows = tx.query(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        tx.commit().await.unwrap();
        rows.rows.into_iter().map(T::from_values).collect()
    }

    /// The one row of a query.
    pub async fn one<T: FromValues>(&self, sql: &str, params: Vec<SqlValue>) -> T {
        let mut rows = self.rows(sql, params).await;
        assert_eq!(rows.len(), 1, "{sql}: expected one row");
        rows.remove(0)
    }

    /// The first column of every row.
    pub async fn column<T: FromSql>(&self, sql: &str, params: Vec<SqlValue>) -> Vec<T> {
        self.rows::<(T,)>(sql, params).await.into_iter().map(|(value,)| value).collect()
    }

    /// The one value of a query.
    pub async fn scalar<T: FromSql>(&self, sql: &str, params: Vec<SqlValue>) -> T {
        self.one::<(T,)>(sql, params).await.0
    }
}

/// A Rust value read from one column.
pub trait FromSql: Sized {
    fn from_sql(value: SqlValue) -> Self;
}

impl FromSql for String {
    fn from_sql(value: SqlValue) -> Self {
        match value {
            SqlValue::Text(text) | SqlValue::Json(text) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

impl FromSql for i64 {
    fn from_sql(value: SqlValue) -> Self {
        match value {
            SqlValue::Integer(n) => n,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
}

impl FromSql for bool {
    fn from_sql(value: SqlValue) -> Self {
        match value {
            SqlValue::Boolean(b) => b,
            other => panic!("expected a boolean, got {other:?}"),
        }
    }
}

impl FromSql for Vec<u8> {
    fn from_sql(value: SqlValue) -> Self {
        match value {
            SqlValue::Bytes(bytes) => bytes,
            other => panic!("expected bytes, got {other:?}"),
        }
    }
}

impl FromSql for DateTime<Utc> {
    fn from_sql(value: SqlValue) -> Self {
        match value {
            SqlValue::Timestamp(at) => at,
            other => panic!("expected a timestamp, got {other:?}"),
        }
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(value: SqlValue) -> Self {
        match value {
            SqlValue::Null => None,
            value => Some(T::from_sql(value)),
        }
    }
}

/// A row read as a tuple.
pub trait FromValues {
    fn from_values(row: Vec<SqlValue>) -> Self;
}

macro_rules! tuple_from_values {
    ($($t:ident),+) => {
        impl<$($t: FromSql),+> FromValues for ($($t,)+) {
            fn from_values(row: Vec<SqlValue>) -> Self {
                let width = row.len();
                let mut values = row.into_iter();
                let tuple = ($($t::from_sql(values.next().expect("a column per tuple field")),)+);
                assert!(values.next().is_none(), "the row has {width} columns, more than the tuple");
                tuple
            }
        }
    };
}

tuple_from_values!(A);
tuple_from_values!(A, B);
tuple_from_values!(A, B, C);
tuple_from_values!(A, B, C, D);
tuple_from_values!(A, B, C, D, E);
tuple_from_values!(A, B, C, D, E, F);
tuple_from_values!(A, B, C, D, E, F, G);
tuple_from_values!(A, B, C, D, E, F, G, H);
