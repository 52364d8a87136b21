//! `db`: parameterised SQL in the job's transaction, with typed values both ways.

use chrono::DateTime;

use super::HostState;
use crate::database::{SqlValue, StatementError};
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::db::{Host, Rows};
use crate::plugins::bindings::floh::plugin::types::{HostError, Value};

impl Host for HostState {
    async fn query(&mut self, sql: String, params: Vec<Value>) -> Result<Rows, HostError> {
        let params = params.into_iter().map(to_sql).collect::<Result<_, _>>()?;
        let transaction = self.granted(Capability::Db)?.transaction().await?;
        let rows = transaction.query(&sql, params).await.map_err(statement_error)?;
        Ok(Rows {
            columns: rows.columns,
            rows: rows.rows.into_iter().map(|row| row.into_iter().map(from_sql).collect()).collect(),
        })
    }

    async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<u64, HostError> {
        let params = params.into_iter().map(to_sql).collect::<Result<_, _>>()?;
        let transaction = self.granted(Capability::Db)?.transaction().await?;
        transaction.execute(&sql, params).await.map_err(statement_error)
    }

    async fn commit(&mut self) -> Result<(), HostError> {
        let job = self.granted(Capability::Db)?;
        job.commit().await.map_err(host_error)
    }
}

/// Database errors caused by the statement are the plugin's (`invalid`); the rest are the
/// database's (`unavailable`, worth a retry), as is a SQLite file another writer holds
/// for longer than the busy timeout.
pub fn host_error(error: sqlx::Error) -> HostError {
    match error {
        sqlx::Error::Database(e) if crate::database::is_sqlite_busy(e.as_ref()) => {
            HostError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(e) => HostError::Invalid(e.to_string()),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::TypeNotFound { .. } | sqlx::Error::Encode(_) => {
            HostError::Invalid(error.to_string())
        }
        other => HostError::Unavailable(other.to_string()),
    }
}

fn statement_error(error: StatementError) -> HostError {
    match error {
        StatementError::Sql(e) => host_error(e),
        other => HostError::Invalid(other.to_string()),
    }
}

fn to_sql(value: Value) -> Result<SqlValue, HostError> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Boolean(b) => SqlValue::Boolean(b),
        Value::Integer(n) => SqlValue::Integer(n),
        Value::Float(x) => SqlValue::Float(x),
        Value::Text(text) => SqlValue::Text(text),
        Value::Json(text) => SqlValue::Json(text),
        Value::Bytes(bytes) => SqlValue::Bytes(bytes),
        Value::Timestamp(ms) => SqlValue::Timestamp(
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| HostError::Invalid(format!("timestamp {ms} ms is out of range")))?,
        ),
    })
}

fn from_sql(value: SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Boolean(b) => Value::Boolean(b),
        SqlValue::Integer(n) => Value::Integer(n),
        SqlValue::Float(x) => Value::Float(x),
        SqlValue::Text(text) => Value::Text(text),
        SqlValue::Json(text) => Value::Json(text),
        SqlValue::Bytes(bytes) => Value::Bytes(bytes),
        SqlValue::Timestamp(at) => Value::Timestamp(at.timestamp_millis()),
    }
}
