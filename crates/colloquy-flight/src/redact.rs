//! Secrets never reach a log line: the value after a secret-looking option or setting name is replaced.
//!
//! `OPTIONS ('aws.secret_access_key' 'abc')`, `SET x.password = 'abc'` and `read_archive(…, 'aws.token',
//! 'abc')` all write a name followed by its value; the tokenizer finds such names (`*secret*`,
//! `*password*`, `*token*`, `*_key`, `*credential*`, `*sas*`: [`is_secret_name`]) and the value after
//! them is masked.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

const MASK: &str = "'***'";

/// Whether a setting or option name holds a secret: one of its words is `secret`, `password`, `token`,
/// `credential(s)` or `sas`, or its last word is `key` (`aws.secret_access_key`, `azure.storage_account_key`,
/// but not `datafusion.optimizer.filter_null_join_keys` or `…min_key_density`).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let words: Vec<&str> = n
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().any(|w| {
        matches!(
            *w,
            "secret" | "password" | "passwd" | "token" | "credential" | "credentials" | "sas"
        )
    }) || words.last() == Some(&"key")
}

/// `sql` with the value of every secret-looking option or setting masked.
pub fn redact_sql(sql: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        // Cannot tell names from values: log nothing of it rather than a secret.
        return format!("<{} bytes of SQL that does not tokenize>", sql.len());
    };
    let mut out = String::with_capacity(sql.len());
    let mut mask_next = false;
    let mut dotted = String::new();
    let mut after_period = false;
    for t in &tokens {
        if mask_next && matches!(t, Token::Word(w) if w.keyword == Keyword::TO) {
            out.push_str(&t.to_string());
            continue;
        }
        let is_value = matches!(
            t,
            Token::SingleQuotedString(_)
                | Token::DoubleQuotedString(_)
                | Token::Number(..)
                | Token::Word(_)
        );
        if mask_next && is_value {
            out.push_str(MASK);
            mask_next = false;
            dotted.clear();
            continue;
        }
        out.push_str(&t.to_string());
        match t {
            Token::Whitespace(_) => {}
            Token::Eq | Token::Comma if mask_next => {}
            Token::Period => {
                dotted.push('.');
                after_period = true;
            }
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => {
                mask_next = is_secret_name(s);
                dotted.clear();
                after_period = false;
            }
            Token::Word(w) => {
                if !after_period {
                    dotted.clear();
                }
                dotted.push_str(&w.value);
                after_period = false;
                mask_next = is_secret_name(&dotted);
            }
            _ => {
                mask_next = false;
                dotted.clear();
                after_period = false;
            }
        }
    }
    out
}

/// `sql` with every string and number literal replaced by `?`: on a governed server a literal may be a
/// masked value that a cleared user typed (`WHERE text LIKE '%+44 7700%'`), and the audit trail must not
/// hold it. Names, keywords and structure are kept.
pub fn elide_literals(sql: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return format!("<{} bytes of SQL that does not tokenize>", sql.len());
    };
    tokens
        .iter()
        .map(|t| match t {
            Token::SingleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::DollarQuotedString(_)
            | Token::Number(..) => "?".to_string(),
            other => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_elided() {
        let r = elide_literals("SELECT text FROM messages WHERE text LIKE '%+44 7700%' AND n > 42");
        assert_eq!(r, "SELECT text FROM messages WHERE text LIKE ? AND n > ?");
        assert!(!elide_literals("SELECT $$secret$$").contains("secret"));
    }

    #[test]
    fn secret_names() {
        for secret in [
            "aws.secret_access_key",
            "aws.session_token",
            "azure.storage_account_key",
            "google_service_account_key",
            "http.password",
            "x.api_key",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "datafusion.optimizer.filter_null_join_keys",
            "datafusion.execution.perfect_hash_join_min_key_density",
            "datafusion.spark.map_key_dedup_policy",
            "aws.access_key_id",
            "format",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }

    #[test]
    fn masks_secret_values() {
        let sql = "CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION 's3://b/' OPTIONS ('aws.access_key_id' 'AKIA1', 'aws.secret_access_key' 'hunter2', 'format' 'jsonl')";
        let r = redact_sql(sql);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(
            r.contains("'format' 'jsonl'") && r.contains("s3://b/"),
            "{r}"
        );
        let r = redact_sql(
            "SELECT * FROM read_archive('s3://b/', 'jsonl', 'aws.session_token', 'tok123')",
        );
        assert!(!r.contains("tok123"), "{r}");
        let r = redact_sql("SET colloquy.api.password = 'pw1'");
        assert!(!r.contains("pw1"), "{r}");
        let r = redact_sql("SET colloquy.api_key TO pw2");
        assert!(!r.contains("pw2"), "{r}");
        assert_eq!(redact_sql("SELECT 1 AS one"), "SELECT 1 AS one");
        assert!(!redact_sql("SELECT 'unterminated secret").contains("secret"));
    }
}
