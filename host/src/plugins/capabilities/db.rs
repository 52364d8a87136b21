//! `db`: parameterised SQL in the job's transaction, with typed values both ways.

use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgRow, PgTypeInfo, PgValueRef};
use sqlx::query::Query;
use sqlx::{Column, Postgres, Row, TypeInfo, ValueRef};

use super::HostState;
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::db::{Host, Rows};
use crate::plugins::bindings::floh::plugin::types::{HostError, Value};

/// A query returning more rows than this fails; plugins page with LIMIT instead.
pub const MAX_ROWS: usize = 10_000;

impl Host for HostState {
    async fn query(&mut self, sql: String, params: Vec<Value>) -> Result<Rows, HostError> {
        let transaction = self.granted(Capability::Db)?.transaction().await?;
        let mut stream = bind_all(sqlx::query(&sql), params).fetch(&mut **transaction);
        let mut columns = None;
        let mut rows = Vec::new();
        while let Some(row) = stream.try_next().await.map_err(host_error)? {
            if rows.len() == MAX_ROWS {
                return Err(HostError::Invalid(format!(
                    "the query returned more than {MAX_ROWS} rows; page through them with LIMIT"
                )));
            }
            columns.get_or_insert_with(|| row.columns().iter().map(|c| c.name().to_owned()).collect());
            rows.push(decode_row(&row)?);
        }
        Ok(Rows { columns: columns.unwrap_or_default(), rows })
    }

    async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<u64, HostError> {
        let transaction = self.granted(Capability::Db)?.transaction().await?;
        let done =
            bind_all(sqlx::query(&sql), params).execute(&mut **transaction).await.map_err(host_error)?;
        Ok(done.rows_affected())
    }

    async fn commit(&mut self) -> Result<(), HostError> {
        let job = self.granted(Capability::Db)?;
        job.commit().await.map_err(host_error)
    }
}

/// Database errors caused by the statement are the plugin's (`invalid`); the rest are the
/// database's (`unavailable`, worth a retry).
pub fn host_error(error: sqlx::Error) -> HostError {
    match error {
        sqlx::Error::Database(e) => HostError::Invalid(e.to_string()),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::TypeNotFound { .. } | sqlx::Error::Encode(_) => {
            HostError::Invalid(error.to_string())
        }
        other => HostError::Unavailable(other.to_string()),
    }
}

fn bind_all(
    mut query: Query<'_, Postgres, PgArguments>,
    params: Vec<Value>,
) -> Query<'_, Postgres, PgArguments> {
    for param in params {
        query = match param {
            Value::Null => query.bind(UntypedNull),
            Value::Boolean(b) => query.bind(b),
            Value::Integer(n) => query.bind(n),
            Value::Float(x) => query.bind(x),
            Value::Text(text) | Value::Json(text) => query.bind(text),
            Value::Bytes(bytes) => query.bind(bytes),
            Value::Timestamp(ms) => query.bind(DateTime::<Utc>::from_timestamp_millis(ms)),
        };
    }
    query
}

/// A NULL whose type PostgreSQL infers from where it is used, as a literal NULL would be.
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn decode_row(row: &PgRow) -> Result<Vec<Value>, HostError> {
    (0..row.len()).map(|i| decode_column(row, i)).collect()
}

fn decode_column(row: &PgRow, i: usize) -> Result<Value, HostError> {
    let raw: PgValueRef<'_> = row.try_get_raw(i).map_err(host_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_name = raw.type_info().name().to_owned();
    let get = |e: sqlx::Error| host_error(e);
    Ok(match type_name.as_str() {
        "BOOL" => Value::Boolean(row.try_get(i).map_err(get)?),
        "INT2" => Value::Integer(row.try_get::<i16, _>(i).map_err(get)?.into()),
        "INT4" => Value::Integer(row.try_get::<i32, _>(i).map_err(get)?.into()),
        "INT8" => Value::Integer(row.try_get(i).map_err(get)?),
        "FLOAT4" => Value::Float(row.try_get::<f32, _>(i).map_err(get)?.into()),
        "FLOAT8" => Value::Float(row.try_get(i).map_err(get)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => Value::Text(row.try_get(i).map_err(get)?),
        "BYTEA" => Value::Bytes(row.try_get(i).map_err(get)?),
        "TIMESTAMPTZ" => {
            Value::Timestamp(row.try_get::<DateTime<Utc>, _>(i).map_err(get)?.timestamp_millis())
        }
        "TIMESTAMP" => {
            Value::Timestamp(row.try_get::<NaiveDateTime, _>(i).map_err(get)?.and_utc().timestamp_millis())
        }
        "JSON" | "JSONB" => Value::Json(row.try_get::<serde_json::Value, _>(i).map_err(get)?.to_string()),
        "VOID" => Value::Null,
        other => {
            let column = row.columns()[i].name();
            return Err(HostError::Invalid(format!(
                "column `{column}` has type {other}, which plugins cannot read; cast it in SQL (e.g. {column}::text)"
            )));
        }
    })
}
