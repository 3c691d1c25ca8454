//! The resource limits every client statement is held to, and the settings clients may not change.
//!
//! Defaults protect a 2-core, 4 GB host; the operator raises them in `[server]`.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest statement text accepted, in bytes (`max_sql_bytes`).
    pub max_sql_bytes: usize,
    /// Deepest expression nesting accepted (`max_expression_depth`), estimated from the tokens before
    /// parsing: a deep expression tree makes the planner recurse once per level.
    pub max_expression_depth: usize,
    /// Open sessions at once (`max_sessions`).
    pub max_sessions: usize,
    /// Queries a user runs at once (`max_queries_per_user`); an anonymous client counts per session.
    pub max_queries_per_user: usize,
    /// Most partitions a client may ask for with `SET datafusion.execution.target_partitions`.
    pub max_target_partitions: usize,
    /// Most bytes one bulk ingest (DoPut) may upload.
    pub max_ingest_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sql_bytes: 1 << 20,
            max_expression_depth: 256,
            max_sessions: 256,
            max_queries_per_user: 16,
            max_target_partitions: 16,
            max_ingest_bytes: 512 << 20,
        }
    }
}

/// Settings no client may change: they decide memory, disk, parsing depth or which files load.
const OPERATOR_ONLY: &[&str] = &[
    "datafusion.runtime.",
    "datafusion.sql_parser.recursion_limit",
    "datafusion.catalog.location",
    "datafusion.catalog.format",
    "datafusion.catalog.has_header",
];

/// Words that start a new expression: the nesting count of their level starts again there.
const EXPRESSION_STARTS: &[Keyword] = &[
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::HAVING,
    Keyword::ORDER,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::UNION,
    Keyword::EXCEPT,
    Keyword::INTERSECT,
    Keyword::JOIN,
    Keyword::ON,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::END,
    Keyword::AS,
    Keyword::VALUES,
    Keyword::SET,
];

/// Words that join two expressions into a deeper one.
const OPERATOR_WORDS: &[Keyword] = &[
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::IS,
    Keyword::LIKE,
    Keyword::ILIKE,
    Keyword::BETWEEN,
    Keyword::IN,
];

impl Limits {
    /// Refuses statements too long or nested too deep to plan safely. Runs on the text alone (the
    /// tokenizer does not recurse), before any parser or planner sees it.
    pub fn check_sql(&self, sql: &str) -> Result<()> {
        if sql.len() > self.max_sql_bytes {
            return Err(Error::ResourceExhausted(format!(
                "the statement is {} bytes; this server accepts at most {} (max_sql_bytes in [server])",
                sql.len(),
                self.max_sql_bytes
            )));
        }
        let depth = expression_depth(sql);
        if depth > self.max_expression_depth {
            return Err(Error::invalid(format!(
                "the statement nests expressions about {depth} levels deep; this server accepts {} (max_expression_depth in [server]): use fewer chained operators or split the statement",
                self.max_expression_depth
            )));
        }
        Ok(())
    }

    /// `SET name = value` from a client: operator-only settings are refused, sizes are capped.
    pub fn check_setting(&self, name: &str, value: Option<&str>) -> Result<()> {
        let key = name.trim().to_ascii_lowercase();
        if let Some(rule) = OPERATOR_ONLY
            .iter()
            .find(|p| key == **p || (p.ends_with('.') && key.starts_with(**p)))
        {
            return Err(Error::PermissionDenied(format!(
                "clients of colloquy serve cannot change '{name}' ({rule}… belongs to the operator: memory_limit, query_memory_limit, max_expression_depth and the locations are set in [server]) (rule: limits)"
            )));
        }
        let cap = match key.as_str() {
            "datafusion.execution.target_partitions"
            | "datafusion.execution.planning_concurrency"
            | "datafusion.execution.meta_fetch_concurrency"
            | "colloquy.onnx.intra_threads" => Some(self.max_target_partitions),
            "datafusion.execution.batch_size" => Some(1 << 16),
            _ => None,
        };
        if let (Some(cap), Some(value)) = (cap, value)
            && let Ok(n) = value.trim().parse::<u64>()
            && n > cap as u64
        {
            return Err(Error::PermissionDenied(format!(
                "SET {name} = {n}: this server allows at most {cap} (max_target_partitions in [server]) (rule: limits)"
            )));
        }
        Ok(())
    }
}

/// An upper estimate of how deep the expression tree of `sql` goes: per parenthesis level, the operators
/// chained since the last comma or clause keyword, summed over the open levels. Left-deep chains such as
/// `1+1+…+1` are flat text but one tree level per operator.
pub fn expression_depth(sql: &str) -> usize {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        // The parser reports the error with its position.
        return 0;
    };
    let mut levels: Vec<usize> = vec![0];
    let mut total = 0usize;
    let mut deepest = 0usize;
    for t in &tokens {
        match t {
            Token::Whitespace(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::Period
            | Token::Placeholder(_)
            | Token::EOF => {}
            Token::LParen | Token::LBracket | Token::LBrace => levels.push(0),
            Token::RParen | Token::RBracket | Token::RBrace => {
                if levels.len() > 1 {
                    total -= levels.pop().unwrap_or(0);
                }
            }
            Token::Comma | Token::SemiColon => {
                if let Some(l) = levels.last_mut() {
                    total -= *l;
                    *l = 0;
                }
            }
            Token::Word(w) if EXPRESSION_STARTS.contains(&w.keyword) => {
                if let Some(l) = levels.last_mut() {
                    total -= *l;
                    *l = 0;
                }
            }
            Token::Word(w) if !OPERATOR_WORDS.contains(&w.keyword) => {}
            // Every other token is an operator: arithmetic, comparison, concatenation, casts, AND/OR.
            _ => {
                if let Some(l) = levels.last_mut() {
                    *l += 1;
                    total += 1;
                }
            }
        }
        deepest = deepest.max(total + levels.len() - 1);
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_chains_not_lists() {
        let chain = format!("SELECT 1{}", "+1".repeat(2000));
        assert!(expression_depth(&chain) >= 2000);
        let list = format!("SELECT x IN ({}) FROM t", vec!["1"; 5000].join(", "));
        assert!(expression_depth(&list) < 5);
        let case = format!(
            "SELECT CASE {} END FROM t",
            (0..500)
                .map(|i| format!("WHEN a = {i} THEN 'x'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(expression_depth(&case) < 5);
        let parens = format!("SELECT {}1{}", "(".repeat(30), ")".repeat(30));
        assert_eq!(expression_depth(&parens), 30);
        let ordinary = "SELECT channel, count(*) FROM messages WHERE a = 1 AND b > 2 OR c LIKE 'x%' GROUP BY channel";
        assert!(expression_depth(ordinary) < 10);
    }

    #[test]
    fn sql_limits() {
        let l = Limits::default();
        assert!(l.check_sql("SELECT 1").is_ok());
        let deep = format!("SELECT 1{}", "+1".repeat(2000));
        let e = l.check_sql(&deep).expect_err("deep");
        assert!(e.to_string().contains("max_expression_depth"), "{e}");
        let long = format!("SELECT '{}'", "x".repeat(2 << 20));
        let e = l.check_sql(&long).expect_err("long");
        assert!(e.to_string().contains("max_sql_bytes"), "{e}");
    }

    #[test]
    fn settings() {
        let l = Limits::default();
        for name in [
            "datafusion.runtime.memory_limit",
            "DataFusion.Runtime.temp_directory",
            "datafusion.sql_parser.recursion_limit",
            "datafusion.catalog.location",
        ] {
            assert!(
                matches!(
                    l.check_setting(name, Some("1")),
                    Err(Error::PermissionDenied(_))
                ),
                "{name}"
            );
        }
        assert!(
            l.check_setting("datafusion.execution.target_partitions", Some("100000"))
                .is_err()
        );
        assert!(
            l.check_setting("datafusion.execution.target_partitions", Some("4"))
                .is_ok()
        );
        assert!(
            l.check_setting("datafusion.execution.time_zone", Some("+02:00"))
                .is_ok()
        );
        assert!(
            l.check_setting("colloquy.language.candidates", Some("en,es"))
                .is_ok()
        );
    }
}
