//! The host's database, in one transaction per job run.

use crate::bindings::floh::plugin::db as host;
pub use crate::bindings::floh::plugin::db::Rows;
use crate::{HostError, Timestamp, Value};

/// Runs a statement that returns rows. Placeholders are `$1, $2, …`.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, HostError> {
    host::query(sql, params)
}

/// Runs a statement; returns the number of rows affected.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, HostError> {
    host::execute(sql, params)
}

/// Commits the work so far and continues in a new transaction.
pub fn commit() -> Result<(), HostError> {
    host::commit()
}

/// Rows changed per statement by [`in_batches`]: small enough that a backlog of 100,000 rows
/// never holds one huge transaction, large enough to keep round trips few.
pub const BATCH: i64 = 500;

/// Calls `batch` with [`BATCH`] and commits after each call, until a call reports fewer rows
/// than that; returns the total. `batch` changes at most the given number of rows and reports
/// how many it changed.
pub fn in_batches(
    mut batch: impl FnMut(i64) -> Result<u64, crate::JobError>,
) -> Result<u64, crate::JobError> {
    let mut total = 0;
    loop {
        let changed = batch(BATCH)?;
        commit()?;
        total += changed;
        if changed < BATCH as u64 {
            return Ok(total);
        }
    }
}

impl Rows {
    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The rows as [`Row`]s, to read columns by name.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(move |values| Row { rows: self, values })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One row of [`Rows`].
pub struct Row<'a> {
    rows: &'a Rows,
    values: &'a [Value],
}

impl Row<'_> {
    /// The value of `column`, or an `invalid` error naming the missing column.
    pub fn get(&self, column: &str) -> Result<&Value, HostError> {
        self.rows
            .index(column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| HostError::Invalid(format!("no column `{column}` in the result")))
    }

    pub fn text(&self, column: &str) -> Result<Option<&str>, HostError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Text(text) | Value::Json(text) => Ok(Some(text)),
            other => Err(mismatch(column, "text", other)),
        }
    }

    pub fn integer(&self, column: &str) -> Result<Option<i64>, HostError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Integer(n) => Ok(Some(*n)),
            other => Err(mismatch(column, "integer", other)),
        }
    }

    pub fn boolean(&self, column: &str) -> Result<Option<bool>, HostError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Boolean(b) => Ok(Some(*b)),
            other => Err(mismatch(column, "boolean", other)),
        }
    }

    /// A column that must not be null, read with `read` (e.g. `Row::text`).
    pub fn required<'r, T>(
        &'r self,
        column: &str,
        read: impl FnOnce(&'r Self, &str) -> Result<Option<T>, HostError>,
    ) -> Result<T, HostError> {
        read(self, column)?.ok_or_else(|| HostError::Invalid(format!("column `{column}` is null")))
    }

    pub fn timestamp(&self, column: &str) -> Result<Option<Timestamp>, HostError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Timestamp(at) => Ok(Some(*at)),
            other => Err(mismatch(column, "timestamp", other)),
        }
    }
}

fn mismatch(column: &str, wanted: &str, got: &Value) -> HostError {
    HostError::Invalid(format!("column `{column}` is {got:?}, not {wanted}"))
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Integer(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// A timestamp parameter (SQL `timestamptz`), e.g. `db::at(clock::now())`.
pub fn at(timestamp: Timestamp) -> Value {
    Value::Timestamp(timestamp)
}
