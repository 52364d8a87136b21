//! Statements whose SQL and values are only known at run time — a plugin's, the demo seed's —
//! run with the same text and values on PostgreSQL and SQLite.
//!
//! Both take `$N` placeholders. Values are typed both ways; on SQLite, whose values carry only
//! a storage class, a column declared `BOOLEAN` or `DATETIME` reads back as a boolean or a
//! timestamp, and a computed column as its storage class (integer, real, text or blob).

use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::{Stream, TryStreamExt};
use sqlx::postgres::{PgRow, PgTypeInfo};
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Encode, Postgres, Row, Sqlite, Type, TypeInfo, ValueRef};

use super::Tx;
use crate::on_db;

/// A query returning more rows than this fails; callers page with LIMIT instead.
pub const MAX_ROWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    /// JSON, stored as text.
    Json(String),
    Bytes(Vec<u8>),
    Timestamp(DateTime<Utc>),
}

/// A statement's result rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("the statement uses ${used} but {given} parameters were given")]
    MissingParameters { used: usize, given: usize },
    #[error("the query returned more than {MAX_ROWS} rows; page through them with LIMIT")]
    TooManyRows,
    #[error(
        "column `{column}` has type {type_name}, which cannot be read; cast it in SQL (e.g. CAST({column} AS TEXT))"
    )]
    Unreadable { column: String, type_name: String },
}

impl Tx {
    /// Runs a statement that returns rows.
    pub async fn query(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<Rows, StatementError> {
        check_parameters(sql, params.len())?;
        on_db!(self, tx => collect(bind(sqlx::query(sql), params).fetch(&mut **tx)).await)
    }

    /// Runs a statement and returns the number of rows it affected.
    pub async fn execute(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<u64, StatementError> {
        check_parameters(sql, params.len())?;
        Ok(on_db!(self, tx => bind(sqlx::query(sql), params).execute(&mut **tx).await?.rows_affected()))
    }
}

/// SQLite reads a placeholder without a value as NULL; PostgreSQL refuses it. Both refuse here.
fn check_parameters(sql: &str, given: usize) -> Result<(), StatementError> {
    match highest_placeholder(sql) {
        used if used > given => Err(StatementError::MissingParameters { used, given }),
        _ => Ok(()),
    }
}

/// The largest N of the `$N` placeholders in `sql`, outside quotes and comments.
fn highest_placeholder(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let (mut highest, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => {
                let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                if let Ok(n) = sql[i + 1..i + 1 + digits].parse::<usize>() {
                    highest = highest.max(n);
                }
                i += digits;
            }
            _ => {}
        }
        i += 1;
    }
    highest
}

async fn collect<R: TypedRow>(
    mut stream: impl Stream<Item = Result<R, sqlx::Error>> + Unpin,
) -> Result<Rows, StatementError> {
    let mut rows = Rows::default();
    while let Some(row) = stream.try_next().await? {
        if rows.rows.len() == MAX_ROWS {
            return Err(StatementError::TooManyRows);
        }
        if rows.rows.is_empty() {
            rows.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
        }
        rows.rows.push((0..row.len()).map(|i| row.value(i)).collect::<Result<_, _>>()?);
    }
    Ok(rows)
}

/// Binds `params` in order, each as its own type; `NULL` as `DB` best takes an untyped one.
fn bind<'q, DB>(
    mut query: Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    params: Vec<SqlValue>,
) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: Dialect,
    bool: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    for param in params {
        query = match param {
            SqlValue::Null => query.bind(DB::null()),
            SqlValue::Boolean(b) => query.bind(b),
            SqlValue::Integer(n) => query.bind(n),
            SqlValue::Float(x) => query.bind(x),
            SqlValue::Text(text) | SqlValue::Json(text) => query.bind(text),
            SqlValue::Bytes(bytes) => query.bind(bytes),
            SqlValue::Timestamp(at) => query.bind(at),
        };
    }
    query
}

/// A database's NULL parameter: its type is inferred from where it is used, as a literal NULL's.
trait Dialect: sqlx::Database {
    type Null: for<'q> Encode<'q, Self> + Type<Self> + Send + 'static;
    fn null() -> Self::Null;
}

impl Dialect for Postgres {
    type Null = PgNull;
    fn null() -> PgNull {
        PgNull
    }
}

/// SQLite values carry no declared type, so any NULL will do.
impl Dialect for Sqlite {
    type Null = Option<i64>;
    fn null() -> Option<i64> {
        None
    }
}

/// A result row whose columns read as typed values.
trait TypedRow: Row {
    fn value(&self, i: usize) -> Result<SqlValue, StatementError>;
}

/// PostgreSQL's "unknown" type (oid 0), which the server resolves from the context.
struct PgNull;

impl Type<Postgres> for PgNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl Encode<'_, Postgres> for PgNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

impl TypedRow for PgRow {
    fn value(&self, i: usize) -> Result<SqlValue, StatementError> {
        let raw = self.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(SqlValue::Null);
        }
        let type_name = raw.type_info().name().to_owned();
        Ok(match type_name.as_str() {
            "BOOL" => SqlValue::Boolean(self.try_get(i)?),
            "INT2" => SqlValue::Integer(self.try_get::<i16, _>(i)?.into()),
            "INT4" => SqlValue::Integer(self.try_get::<i32, _>(i)?.into()),
            "INT8" => SqlValue::Integer(self.try_get(i)?),
            "FLOAT4" => SqlValue::Float(self.try_get::<f32, _>(i)?.into()),
            "FLOAT8" => SqlValue::Float(self.try_get(i)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => SqlValue::Text(self.try_get(i)?),
            "BYTEA" => SqlValue::Bytes(self.try_get(i)?),
            "TIMESTAMPTZ" => SqlValue::Timestamp(self.try_get(i)?),
            "TIMESTAMP" => SqlValue::Timestamp(self.try_get::<NaiveDateTime, _>(i)?.and_utc()),
            "JSON" | "JSONB" => SqlValue::Json(self.try_get::<serde_json::Value, _>(i)?.to_string()),
            "VOID" => SqlValue::Null,
            _ => return Err(unreadable(self, i, type_name)),
        })
    }
}

impl TypedRow for SqliteRow {
    /// By declared type first (a stored value only knows its storage class).
    fn value(&self, i: usize) -> Result<SqlValue, StatementError> {
        let raw = self.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(SqlValue::Null);
        }
        let storage = raw.type_info().name().to_owned();
        Ok(match (self.columns()[i].type_info().name(), storage.as_str()) {
            ("BOOLEAN", _) => SqlValue::Boolean(self.try_get(i)?),
            ("DATETIME", _) => SqlValue::Timestamp(self.try_get(i)?),
            (_, "INTEGER") => SqlValue::Integer(self.try_get(i)?),
            (_, "REAL") => SqlValue::Float(self.try_get(i)?),
            (_, "TEXT") => SqlValue::Text(self.try_get(i)?),
            (_, "BLOB") => SqlValue::Bytes(self.try_get(i)?),
            _ => return Err(unreadable(self, i, storage)),
        })
    }
}

fn unreadable(row: &impl Row, i: usize, type_name: String) -> StatementError {
    StatementError::Unreadable { column: row.columns()[i].name().to_owned(), type_name }
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> Self {
        SqlValue::Text(text.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(text: String) -> Self {
        SqlValue::Text(text)
    }
}

impl From<i64> for SqlValue {
    fn from(n: i64) -> Self {
        SqlValue::Integer(n)
    }
}

impl From<bool> for SqlValue {
    fn from(b: bool) -> Self {
        SqlValue::Boolean(b)
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(bytes: Vec<u8>) -> Self {
        SqlValue::Bytes(bytes)
    }
}

impl From<DateTime<Utc>> for SqlValue {
    fn from(at: DateTime<Utc>) -> Self {
        SqlValue::Timestamp(at)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlValue::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted_outside_quotes_and_comments() {
        assert_eq!(highest_placeholder("SELECT 1"), 0);
        assert_eq!(highest_placeholder("UPDATE t SET a = $2 WHERE b = $1 AND c = $10"), 10);
        assert_eq!(highest_placeholder("SELECT '$9', \"$8\" FROM t WHERE a = $1 -- $7\n AND b = $2"), 2);
        assert_eq!(highest_placeholder("SELECT '$5"), 0);
    }
}
