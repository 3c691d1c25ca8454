//! Query parameters: `?` placeholders (what JDBC and ADBC users write) become DataFusion's `$1, $2, …`,
//! and parameter batches become bound values.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};

/// Rewrites each `?` placeholder to `$n` in order. Tokens, not text: a `?` inside a string literal or a
/// comment stays. Text that does not tokenize is returned as it is (the planner will report the error).
pub fn number_placeholders(sql: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return sql.to_owned();
    };
    if !tokens
        .iter()
        .any(|t| matches!(t, Token::Placeholder(p) if p == "?"))
    {
        return sql.to_owned();
    }
    let mut n = 0;
    let mut out = String::with_capacity(sql.len() + 8);
    for t in tokens {
        match t {
            Token::Placeholder(p) if p == "?" => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// The parameter schema of a plan: fields `$1 … $n`, typed where the planner inferred a type, Utf8 where
/// it did not (a client can always send text).
pub fn parameter_schema(plan: &LogicalPlan) -> Result<Schema> {
    let types = plan.get_parameter_types()?;
    let mut positions: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, t)| {
            name.strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .map(|n| (n, t))
        })
        .collect();
    positions.sort_by_key(|(n, _)| *n);
    let fields: Vec<Field> = positions
        .into_iter()
        .map(|(n, t)| Field::new(format!("${n}"), t.unwrap_or(DataType::Utf8), true))
        .collect();
    Ok(Schema::new(fields))
}

/// The values of row `row` of a parameter batch, in column order.
pub fn row_values(batch: &RecordBatch, row: usize) -> Result<Vec<ScalarValue>> {
    batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, row).map_err(Error::from))
        .collect()
}

/// `plan` with its placeholders replaced by `values`, each cast to the type the planner expects.
pub fn bind(plan: &LogicalPlan, values: &[ScalarValue]) -> Result<LogicalPlan> {
    let types = plan.get_parameter_types()?;
    let mut bound = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let wanted = types.get(&format!("${}", i + 1)).cloned().flatten();
        let v = match wanted {
            Some(t) if !v.is_null() && v.data_type() != t => v.cast_to(&t).map_err(|e| {
                Error::invalid(format!("parameter {}: cannot use {v} as {t}: {e}", i + 1))
            })?,
            Some(t) if v.is_null() => ScalarValue::try_from(&t)?,
            _ => v.clone(),
        };
        bound.push(v);
    }
    let expected = types.len();
    if bound.len() != expected {
        return Err(Error::invalid(format!(
            "the statement has {expected} parameter(s) but {} value(s) were bound",
            bound.len()
        )));
    }
    Ok(plan.clone().with_param_values(bound)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_become_positions() {
        assert_eq!(number_placeholders("SELECT ? + ?"), "SELECT $1 + $2");
        assert_eq!(
            number_placeholders("SELECT '?', x FROM t WHERE a = ? -- ?"),
            "SELECT '?', x FROM t WHERE a = $1 -- ?"
        );
        assert_eq!(number_placeholders("SELECT $1"), "SELECT $1");
        assert_eq!(
            number_placeholders("SELECT 'unterminated ?"),
            "SELECT 'unterminated ?"
        );
    }
}
