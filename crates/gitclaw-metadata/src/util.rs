//! Conversions between Rust values and their stored form, checked both
//! ways: what goes in must fit the column, what comes out must parse.
//!
//! For: object ids as hex text, `u64` counters as `BIGINT`, booleans that
//! arrive as `BOOLEAN` (PostgreSQL) or `INTEGER` (SQLite), the clock.
//! Not for: anything with business rules.

use gix_hash::ObjectId;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Error, Result};

/// Now, in unix seconds (0 if the clock is before 1970).
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Rows one many-row insert carries: a few hundred placeholders, well within
/// every database's limit, and one round trip for most writes.
pub(crate) const ROWS_PER_INSERT: usize = 300;

/// The rows of a many-row `VALUES` clause of placeholders: each row binds the
/// `shared` values bound first (`$1`…), then `per_row` of its own, numbered on
/// from there — `($1, $2, $3), ($1, $2, $4)` for two rows, two shared, one own.
pub(crate) fn value_rows(rows: usize, shared: usize, per_row: usize) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let own = (0..per_row).map(|k| shared + row * per_row + k + 1);
        let all: Vec<String> = (1..=shared).chain(own).map(|n| format!("${n}")).collect();
        sql.push('(');
        sql.push_str(&all.join(", "));
        sql.push(')');
    }
    sql
}

/// The stored form of an object id: lowercase hex.
pub(crate) fn oid_hex(oid: &ObjectId) -> String {
    oid.to_string()
}

/// Parses a stored object id; `what` names the column for the error.
pub(crate) fn parse_oid(hex: &str, what: &str) -> Result<ObjectId> {
    ObjectId::from_hex(hex.as_bytes())
        .map_err(|e| Error::InvalidData(format!("{what}: {hex:?} is not an object id: {e}")))
}

/// A counter from the caller, checked to fit a signed `BIGINT`.
pub(crate) fn to_db_u64(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| Error::InvalidInput(format!("{what} {value} is too large to store")))
}

/// A counter read back, checked to be non-negative.
pub(crate) fn from_db_u64(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::InvalidData(format!("{what} is negative: {value}")))
}

pub(crate) fn get_str(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(crate) fn get_i64(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn get_u64(row: &AnyRow, col: &str) -> Result<u64> {
    from_db_u64(get_i64(row, col)?, col)
}

pub(crate) fn get_oid(row: &AnyRow, col: &str) -> Result<ObjectId> {
    parse_oid(&get_str(row, col)?, col)
}

/// A nullable non-negative integer column.
pub(crate) fn get_opt_u64(row: &AnyRow, col: &str) -> Result<Option<u64>> {
    row.try_get::<Option<i64>, _>(col)?
        .map(|v| from_db_u64(v, col))
        .transpose()
}

/// A nullable object id column.
pub(crate) fn get_opt_oid(row: &AnyRow, col: &str) -> Result<Option<ObjectId>> {
    row.try_get::<Option<String>, _>(col)?
        .map(|hex| parse_oid(&hex, col))
        .transpose()
}

/// A boolean column: `BOOLEAN` on PostgreSQL, `INTEGER` 0/1 on SQLite (the
/// `Any` driver cannot read SQLite columns declared `BOOLEAN`).
pub(crate) fn get_bool(row: &AnyRow, col: &str) -> Result<bool> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => match row.try_get::<i64, _>(col)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(Error::InvalidData(format!(
                "{col} is {other}, expected a boolean"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::value_rows;

    #[test]
    fn value_rows_number_the_shared_values_then_each_rows_own() {
        assert_eq!(value_rows(2, 2, 1), "($1, $2, $3), ($1, $2, $4)");
        assert_eq!(
            value_rows(3, 1, 2),
            "($1, $2, $3), ($1, $4, $5), ($1, $6, $7)"
        );
        assert_eq!(value_rows(1, 0, 1), "($1)");
        assert_eq!(value_rows(0, 1, 2), "");
    }
}
