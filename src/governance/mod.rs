//! Who may read what on a shared server: roles and their members, grants, row policies and column
//! masks, written by an operator as plain SQL in the server's configuration.
//!
//! [`Governance::apply`] shapes one client session for its user when the session is created:
//! - tables no role of the user is granted are removed from the session (so they are in no listing,
//!   `information_schema` or metadata call either);
//! - a table with row or column policies is replaced by a [`table::GovernedTable`] that applies them
//!   inside the scan, under every query, view and function of the session;
//! - the analytics views are planned again over what is left, so they inherit the policies;
//! - the locations behind hidden and governed tables are protected in the session's access policy, so
//!   `read_archive`, `CREATE EXTERNAL TABLE` or an ONNX model URL cannot read them around the table;
//! - `archive_errors()` (which can quote raw records) is removed where a table is governed;
//! - what the user may do besides reading ([`SessionGrants`]) is left on the session for the server's
//!   gate: writes, ingest, `CREATE FUNCTION`, `EXPLAIN ANALYZE`.
//!
//! Every user has the role `public`. Without any rule the server is not governed and nothing changes.

pub mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::{Expr, ExprSchemable, cast, col, lit};
use datafusion::prelude::SessionContext;

use colloquy_store::AccessPolicy;

use crate::analytics;
use table::{GovernedTable, OutputColumn};

/// The role every user has.
pub const PUBLIC: &str = "public";

/// What a column policy shows a role without clearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// The column is not there at all.
    Hide,
    /// NULL of the column's type.
    Null,
    /// The SHA-256 of the value, hex: rows can still be joined and counted by it (text columns only).
    Hash,
    /// A SQL expression over the table's columns, e.g. `redact_pii(text)`; cast to the column's type.
    Sql(String),
}

impl Mask {
    /// `hide`, `null`, `hash`, or any other text as a SQL expression.
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "hide" => Mask::Hide,
            "null" => Mask::Null,
            "hash" => Mask::Hash,
            _ => Mask::Sql(text.to_string()),
        }
    }
}

/// What a role is granted.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    pub role: String,
    /// Tables (and views) the role may read; `*` for all.
    pub select: Vec<String>,
    /// `COPY`, `INSERT` and bulk ingest (still within the server's `write` locations).
    pub write: bool,
    /// `CREATE FUNCTION` (ONNX models) and `DROP FUNCTION`.
    pub create_function: bool,
}

/// Rows of `table` the roles may see: those where `using` is true.
#[derive(Debug, Clone)]
pub struct RowPolicy {
    pub table: String,
    pub roles: Vec<String>,
    pub using: String,
}

/// How `column` of `table` looks to every role not in `except`.
#[derive(Debug, Clone)]
pub struct ColumnPolicy {
    pub table: String,
    pub column: String,
    pub mask: Mask,
    pub except: Vec<String>,
}

/// The operator's rules, as read from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// role → its members (user names; a static token's user name counts).
    pub roles: BTreeMap<String, Vec<String>>,
    pub grants: Vec<Grant>,
    pub row_policies: Vec<RowPolicy>,
    pub column_policies: Vec<ColumnPolicy>,
    /// Where the configured tables' data lives (table → location), protected from direct reads.
    pub locations: BTreeMap<String, String>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
            && self.grants.is_empty()
            && self.row_policies.is_empty()
            && self.column_policies.is_empty()
    }
}

/// What one session's user may do besides reading the tables left in its session.
#[derive(Debug, Clone, Default)]
pub struct SessionGrants {
    pub user: String,
    pub roles: Vec<String>,
    pub write: bool,
    pub create_function: bool,
    /// Tables of the session shaped by row or column policies.
    pub governed: Vec<String>,
    /// Tables removed from the session.
    pub hidden: Vec<String>,
}

impl SessionGrants {
    /// Whether some table of the session is filtered or masked: then statements that show plan
    /// metrics (`EXPLAIN ANALYZE`) could count the rows the policy holds back.
    pub fn is_governed(&self) -> bool {
        !self.governed.is_empty()
    }
}

/// The rules, checked and ready to shape sessions.
#[derive(Debug, Clone)]
pub struct Governance {
    rules: Rules,
}

/// A table name compared as SQL compares unquoted names.
fn norm(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

impl Governance {
    /// Checks the rules that can be checked without a session (names, roles that exist).
    pub fn new(rules: Rules) -> std::result::Result<Self, String> {
        let known: BTreeSet<&str> = rules
            .roles
            .keys()
            .map(String::as_str)
            .chain([PUBLIC])
            .collect();
        let check_role = |r: &str, what: &str| {
            if known.contains(r) {
                Ok(())
            } else {
                Err(format!(
                    "{what} names the role '{r}', which [server.roles] does not define (roles: {})",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ))
            }
        };
        for g in &rules.grants {
            check_role(&g.role, "a grant")?;
        }
        for p in &rules.row_policies {
            if p.roles.is_empty() {
                return Err(format!("the row policy on '{}' names no roles", p.table));
            }
            for r in &p.roles {
                check_role(r, &format!("the row policy on '{}'", p.table))?;
            }
        }
        for p in &rules.column_policies {
            for r in &p.except {
                check_role(
                    r,
                    &format!("the column policy on '{}.{}'", p.table, p.column),
                )?;
            }
        }
        Ok(Self { rules })
    }

    /// How many roles the rules define (besides `public`).
    pub fn role_count(&self) -> usize {
        self.rules.roles.len()
    }

    pub fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The roles of `user`: `public` and every role that lists them.
    pub fn roles_of(&self, user: &str) -> Vec<String> {
        let mut roles = vec![PUBLIC.to_string()];
        for (role, members) in &self.rules.roles {
            if role != PUBLIC && members.iter().any(|m| m == user) {
                roles.push(role.clone());
            }
        }
        roles
    }

    /// Whether `user`'s roles are granted SELECT on `table`.
    pub fn may_read(&self, user: &str, table: &str) -> bool {
        self.may_select(&self.roles_of(user), table)
    }

    fn may_select(&self, roles: &[String], table: &str) -> bool {
        self.rules.grants.iter().any(|g| {
            roles.contains(&g.role)
                && g.select
                    .iter()
                    .any(|t| t.trim() == "*" || norm(t) == norm(table))
        })
    }

    /// Shapes `ctx` (a fresh session with the operator's tables) for `user`, and puts `policy`, with
    /// the locations of hidden and governed tables protected, on it.
    pub async fn apply(
        &self,
        ctx: &SessionContext,
        user: &str,
        policy: Option<&AccessPolicy>,
    ) -> Result<SessionGrants> {
        let roles = self.roles_of(user);
        let mut grants = SessionGrants {
            user: user.to_string(),
            roles: roles.clone(),
            write: self
                .rules
                .grants
                .iter()
                .any(|g| roles.contains(&g.role) && g.write),
            create_function: self
                .rules
                .grants
                .iter()
                .any(|g| roles.contains(&g.role) && g.create_function),
            ..SessionGrants::default()
        };
        let views: BTreeSet<&str> = analytics::VIEWS.iter().map(|v| v.name).collect();
        let names: Vec<String> = ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        for name in names {
            // The library's views are planned again below, over what this session may read.
            if views.contains(name.as_str()) {
                continue;
            }
            if !self.may_select(&roles, &name) {
                ctx.deregister_table(name.as_str())?;
                grants.hidden.push(name);
                continue;
            }
            if let Some(governed) = self.govern(ctx, &name, user, &roles).await? {
                ctx.deregister_table(name.as_str())?;
                ctx.register_table(name.as_str(), Arc::new(governed))?;
                grants.governed.push(name);
            }
        }
        // Configured tables that a session does not have (yet) are protected too.
        let mut protected: BTreeSet<String> = grants
            .hidden
            .iter()
            .chain(&grants.governed)
            .map(|t| norm(t))
            .collect();
        for table in self.rules.locations.keys() {
            if !self.may_select(&roles, table) || self.has_policies(table) {
                protected.insert(norm(table));
            }
        }
        analytics::install_views_and_warn(ctx).await?;
        // The library views a role is not granted by name are still shown: they read only `messages`
        // (and the identity map), whose policies they inherit.
        if let Some(policy) = policy {
            let mut policy = policy.clone();
            for (table, location) in &self.rules.locations {
                if protected.contains(&norm(table)) {
                    policy
                        .protect(location, table)
                        .map_err(DataFusionError::Configuration)?;
                }
            }
            crate::restrict(ctx, Arc::new(policy));
        }
        if grants.is_governed() {
            ctx.deregister_udtf("archive_errors");
        }
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(grants.clone()));
        Ok(grants)
    }

    fn has_policies(&self, table: &str) -> bool {
        self.rules
            .row_policies
            .iter()
            .any(|p| norm(&p.table) == norm(table))
            || self
                .rules
                .column_policies
                .iter()
                .any(|p| norm(&p.table) == norm(table))
    }

    /// The governed form of `name` for `roles`, or `None` when no policy touches it.
    async fn govern(
        &self,
        ctx: &SessionContext,
        name: &str,
        user: &str,
        roles: &[String],
    ) -> Result<Option<GovernedTable>> {
        if !self.has_policies(name) {
            return Ok(None);
        }
        let inner = ctx.table_provider(name).await?;
        let schema = inner.schema();
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let rows: Vec<&RowPolicy> = self
            .rules
            .row_policies
            .iter()
            .filter(|p| norm(&p.table) == norm(name))
            .collect();
        let predicate = if rows.is_empty() {
            None
        } else {
            let mut any: Option<Expr> = None;
            for (p, role) in rows
                .iter()
                .flat_map(|p| p.roles.iter().map(move |r| (p, r)))
                .filter(|(_, r)| roles.contains(r))
            {
                let using = bind_identity(&p.using, user, role);
                let e = self.parse(ctx, &df_schema, &using, name, "row policy")?;
                if e.get_type(&df_schema)? != DataType::Boolean {
                    return plan_err!(
                        "the row policy on '{name}' ({}) is not a condition",
                        p.using
                    );
                }
                any = Some(match any {
                    Some(a) => a.or(e),
                    None => e,
                });
            }
            // A table with row policies shows a role none of them names no rows at all.
            Some(any.unwrap_or_else(|| lit(false)))
        };
        let mut columns = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        for field in schema.fields() {
            let policy =
                self.rules.column_policies.iter().find(|p| {
                    norm(&p.table) == norm(name) && norm(&p.column) == norm(field.name())
                });
            let cleared = |p: &ColumnPolicy| p.except.iter().any(|r| roles.contains(r));
            let column = col(datafusion::common::Column::from_name(field.name()));
            let (expr, masked) = match policy {
                None => (column, false),
                Some(p) if cleared(p) => (column, false),
                Some(p) => match &p.mask {
                    Mask::Hide => continue,
                    Mask::Null => (lit(ScalarValue::try_from(field.data_type())?), true),
                    Mask::Hash => {
                        if !matches!(
                            field.data_type(),
                            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                        ) {
                            return plan_err!(
                                "the column policy on '{name}.{}' hashes a column of type {}; 'hash' masks text columns, use 'null' or an expression",
                                field.name(),
                                field.data_type()
                            );
                        }
                        let sql = format!(
                            "encode(sha256(\"{}\"), 'hex')",
                            field.name().replace('"', "\"\"")
                        );
                        (
                            self.parse(ctx, &df_schema, &sql, name, "column policy")?,
                            true,
                        )
                    }
                    Mask::Sql(sql) => {
                        // In a mask, current_role() is the user's first role after `public`.
                        let role = roles.get(1).map_or(PUBLIC, String::as_str);
                        let sql = bind_identity(sql, user, role);
                        (
                            self.parse(ctx, &df_schema, &sql, name, "column policy")?,
                            true,
                        )
                    }
                },
            };
            let expr = if expr.get_type(&df_schema)? == *field.data_type() {
                expr
            } else {
                cast(expr, field.data_type().clone())
            };
            columns.push(OutputColumn { expr, masked });
            fields.push(Field::new(field.name(), field.data_type().clone(), true));
        }
        Ok(Some(GovernedTable {
            name: name.to_string(),
            inner,
            predicate,
            columns,
            schema: Arc::new(Schema::new(fields)),
        }))
    }

    fn parse(
        &self,
        ctx: &SessionContext,
        schema: &DFSchema,
        sql: &str,
        table: &str,
        what: &str,
    ) -> Result<Expr> {
        ctx.parse_sql_expr(sql, schema)
            .map_err(|e| DataFusionError::Plan(format!("the {what} on '{table}' ({sql}): {e}")))
    }

    /// Shapes a throwaway session for one member of every role, so that a policy that does not parse
    /// or names a missing column fails when the server starts, not when a client connects.
    pub async fn validate(
        &self,
        make: impl AsyncFn() -> Result<SessionContext>,
    ) -> std::result::Result<(), String> {
        let mut users: Vec<String> = vec![String::new()];
        for (role, members) in &self.rules.roles {
            match members.first() {
                Some(m) => users.push(m.clone()),
                None => warn_role_without_members(role),
            }
        }
        for user in users {
            let ctx = make().await.map_err(|e| e.to_string())?;
            self.apply(&ctx, &user, None)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// `current_user()` and `current_role()` in a policy, replaced by the session's user and the role the
/// policy is applied for, as string literals. A row policy that names several roles is applied once per
/// role of the user it names, so `team = current_role()` lets each team see its own rows.
fn bind_identity(sql: &str, user: &str, role: &str) -> String {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        // Left as written: parsing it reports the error with the policy named.
        return sql.to_string();
    };
    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let skip_space = |mut j: usize| {
        while matches!(tokens.get(j), Some(Token::Whitespace(_))) {
            j += 1;
        }
        j
    };
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < tokens.len() {
        let value = match &tokens[i] {
            Token::Word(w) if w.quote_style.is_none() => {
                match w.value.to_ascii_lowercase().as_str() {
                    "current_user" => Some(user),
                    "current_role" => Some(role),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(value) = value {
            // `current_user()`, and the SQL standard's bare `current_user`.
            let open = skip_space(i + 1);
            let next = if matches!(tokens.get(open), Some(Token::LParen)) {
                let close = skip_space(open + 1);
                matches!(tokens.get(close), Some(Token::RParen)).then_some(close + 1)
            } else {
                Some(i + 1)
            };
            if let Some(next) = next {
                out.push_str(&quote(value));
                i = next;
                continue;
            }
        }
        out.push_str(&tokens[i].to_string());
        i += 1;
    }
    out
}

/// On standard error, like the other start-up warnings of the server (this crate does not log).
fn warn_role_without_members(role: &str) {
    eprintln!("warning: the role '{role}' has no members");
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::datasource::MemTable;

    fn rules() -> Rules {
        Rules {
            roles: BTreeMap::from([
                ("emea".to_string(), vec!["ana".to_string()]),
                ("analyst".to_string(), vec!["carol".to_string()]),
            ]),
            grants: vec![
                Grant {
                    role: "emea".into(),
                    select: vec!["t".into()],
                    ..Grant::default()
                },
                Grant {
                    role: "analyst".into(),
                    select: vec!["*".into()],
                    ..Grant::default()
                },
            ],
            row_policies: vec![RowPolicy {
                table: "t".into(),
                roles: vec!["emea".into()],
                using: "channel = 'sms'".into(),
            }],
            column_policies: vec![
                ColumnPolicy {
                    table: "t".into(),
                    column: "text".into(),
                    mask: Mask::Sql("upper(text)".into()),
                    except: vec!["analyst".into()],
                },
                ColumnPolicy {
                    table: "t".into(),
                    column: "secret".into(),
                    mask: Mask::Hide,
                    except: vec!["analyst".into()],
                },
            ],
            locations: BTreeMap::new(),
        }
    }

    fn session() -> SessionContext {
        let ctx = crate::new_context();
        let s = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as _;
        let batch = RecordBatch::try_from_iter(vec![
            ("channel", s(&["sms", "webchat"])),
            ("text", s(&["hi", "hidden"])),
            ("secret", s(&["x", "y"])),
        ])
        .expect("batch");
        let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).expect("table");
        ctx.register_table("t", Arc::new(table)).expect("t");
        let other = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("table");
        ctx.register_table("other", Arc::new(other)).expect("other");
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<String>> {
        let batches = ctx.sql(sql).await?.collect().await?;
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
        Ok(text.lines().map(str::to_string).collect())
    }

    #[tokio::test]
    async fn a_role_sees_its_rows_masked_and_its_tables_only() -> Result<()> {
        let g = Governance::new(rules()).expect("rules");
        let ctx = session();
        let grants = g.apply(&ctx, "ana", None).await?;
        assert_eq!(grants.roles, ["public", "emea"]);
        assert_eq!(grants.hidden, ["other"]);
        assert!(grants.is_governed() && !grants.write && !grants.create_function);
        let got = rows(&ctx, "SELECT * FROM t").await?.join("\n");
        assert!(got.contains("| sms     | HI   |"), "{got}");
        assert!(!got.contains("webchat") && !got.contains("secret"), "{got}");
        assert!(ctx.sql("SELECT secret FROM t").await.is_err());
        assert!(ctx.sql("SELECT * FROM other").await.is_err());
        // The user's filter runs above the policy: it never sees the hidden row.
        let got = rows(
            &ctx,
            "SELECT count(*) AS n FROM t WHERE 1 / (CASE WHEN text = 'HIDDEN' THEN 0 ELSE 1 END) = 1",
        )
        .await?;
        assert!(got.iter().any(|l| l.contains("| 1 |")), "{got:?}");

        let ctx = session();
        let grants = g.apply(&ctx, "carol", None).await?;
        assert!(grants.hidden.is_empty());
        // No row policy names analyst: a table with row policies shows such a role nothing.
        let got = rows(&ctx, "SELECT count(*) AS n FROM t").await?;
        assert!(got.iter().any(|l| l.contains("| 0 |")), "{got:?}");
        let got = rows(&ctx, "SELECT text, secret FROM other ORDER BY text").await?;
        assert!(got.iter().any(|l| l.contains("hidden")), "{got:?}");
        Ok(())
    }

    #[test]
    fn identity_functions_become_literals() {
        assert_eq!(
            bind_identity(
                "team = current_role() OR owner = CURRENT_USER",
                "o'neil",
                "emea"
            ),
            "team = 'emea' OR owner = 'o''neil'"
        );
        assert_eq!(
            bind_identity("note = 'current_role()'", "a", "b"),
            "note = 'current_role()'"
        );
    }

    #[tokio::test]
    async fn each_team_sees_its_rows_through_current_role() -> Result<()> {
        let mut r = rules();
        r.roles.insert("sms".into(), vec!["ana".into()]);
        r.roles.insert("webchat".into(), vec!["bob".into()]);
        r.grants.push(Grant {
            role: "webchat".into(),
            select: vec!["t".into()],
            ..Grant::default()
        });
        r.row_policies = vec![RowPolicy {
            table: "t".into(),
            roles: vec!["sms".into(), "webchat".into()],
            using: "channel = current_role()".into(),
        }];
        let g = Governance::new(r).expect("rules");
        for (user, channel, other) in [("ana", "sms", "webchat"), ("bob", "webchat", "sms")] {
            let ctx = session();
            g.apply(&ctx, user, None).await?;
            let got = rows(&ctx, "SELECT channel FROM t").await?.join("\n");
            assert!(
                got.contains(channel) && !got.contains(other),
                "{user}: {got}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn bad_rules_are_reported_with_the_table_and_the_policy() {
        let mut r = rules();
        r.grants[0].role = "emae".into();
        let e = Governance::new(r).expect_err("unknown role");
        assert!(e.contains("'emae'") && e.contains("[server.roles]"), "{e}");
        let mut r = rules();
        r.row_policies[0].using = "chanel = 'sms'".into();
        let g = Governance::new(r).expect("names are fine");
        let e = g
            .validate(async || Ok(session()))
            .await
            .expect_err("missing column");
        assert!(
            e.contains("row policy on 't'") && e.contains("chanel"),
            "{e}"
        );
        let mut r = rules();
        r.row_policies[0].using = "length(channel)".into();
        let g = Governance::new(r).expect("names are fine");
        let e = g
            .validate(async || Ok(session()))
            .await
            .expect_err("not a condition");
        assert!(e.contains("not a condition"), "{e}");
    }
}
