//! The checks every client statement passes before it runs: its size and depth (before parsing), then
//! each node of its plan (subqueries included) against the server's access policy and limits.
//!
//! The object-store guard ([`colloquy::store::policy`]) refuses a forbidden read or write wherever it
//! happens; the gate refuses the same statements at planning time, so the client learns which rule and
//! which `[server]` key before anything runs.

use std::sync::Arc;

use colloquy::governance::SessionGrants;
use colloquy::store::{AccessPolicy, Denied};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::execution::config::SessionConfig;
use datafusion::logical_expr::{DdlStatement, Expr, LogicalPlan, Statement, WriteOp};

use crate::error::{Error, Result};
use crate::limits::Limits;

#[derive(Clone, Debug, Default)]
pub struct Gate {
    /// `None`: the embedding application trusts its clients with the host (tests, an in-process
    /// server); `colloquy serve` always sets one.
    pub policy: Option<Arc<AccessPolicy>>,
    pub limits: Limits,
}

fn denied(d: Denied) -> Error {
    Error::PermissionDenied(d.to_string())
}

impl Gate {
    pub fn check_sql(&self, sql: &str) -> Result<()> {
        self.limits.check_sql(sql)
    }

    /// Checks every node of `plan`, subqueries included, against the session's access policy (the
    /// server's, with what its roles may not read directly protected) and its grants.
    pub fn check_plan(&self, plan: &LogicalPlan, session: &SessionConfig) -> Result<()> {
        let policy = session
            .get_extension::<AccessPolicy>()
            .or_else(|| self.policy.clone());
        let grants = session.get_extension::<SessionGrants>();
        let mut refused = None;
        plan.apply_with_subqueries(|node| {
            match self.check_node(node, policy.as_deref(), grants.as_deref()) {
                Ok(()) => Ok(TreeNodeRecursion::Continue),
                Err(e) => {
                    refused = Some(e);
                    Ok(TreeNodeRecursion::Stop)
                }
            }
        })?;
        refused.map_or(Ok(()), Err)
    }

    fn check_node(
        &self,
        node: &LogicalPlan,
        policy: Option<&AccessPolicy>,
        grants: Option<&SessionGrants>,
    ) -> Result<()> {
        if let Some(grants) = grants {
            check_grants(grants, node)?;
        }
        match node {
            LogicalPlan::Statement(Statement::SetVariable(s)) => {
                self.limits.check_setting(&s.variable, Some(&s.value))
            }
            LogicalPlan::Statement(Statement::ResetVariable(r)) => {
                self.limits.check_setting(&r.variable, None)
            }
            _ => match policy {
                Some(policy) => check_locations(policy, node),
                None => Ok(()),
            },
        }
    }
}

/// The refusal of something `grants` does not allow, naming the roles and the key that would.
pub fn not_granted(grants: &SessionGrants, what: &str, key: &str) -> Error {
    Error::PermissionDenied(format!(
        "{what} is not granted to {} (roles: {}); an operator grants it with `{key}` in a [[server.grant]] of one of those roles (rule: grants)",
        grants.user,
        grants.roles.join(", ")
    ))
}

/// What a governed session's roles may do besides reading their tables.
fn check_grants(grants: &SessionGrants, node: &LogicalPlan) -> Result<()> {
    match node {
        LogicalPlan::Ddl(DdlStatement::CreateFunction(_) | DdlStatement::DropFunction(_))
            if !grants.create_function =>
        {
            Err(not_granted(
                grants,
                "CREATE FUNCTION / DROP FUNCTION",
                "create_function = true",
            ))
        }
        LogicalPlan::Copy(_) if !grants.write => Err(not_granted(grants, "COPY", "write = true")),
        LogicalPlan::Dml(dml) if !grants.write => {
            // Changing a session's own memory table writes nothing outside it.
            let own = source_as_provider(&dml.target).is_ok_and(|p| {
                p.downcast_ref::<datafusion::datasource::MemTable>()
                    .is_some()
            });
            if own {
                Ok(())
            } else {
                Err(not_granted(grants, "writing to a table", "write = true"))
            }
        }
        // Plan metrics count the rows a row policy holds back.
        LogicalPlan::Analyze(_) if grants.is_governed() => Err(Error::PermissionDenied(format!(
            "EXPLAIN ANALYZE is not available to {} while tables of the session ({}) have row or column policies: its metrics count the rows the policies hold back; EXPLAIN (without ANALYZE) is (rule: grants)",
            grants.user,
            grants.governed.join(", ")
        ))),
        _ => Ok(()),
    }
}

fn check_locations(policy: &AccessPolicy, node: &LogicalPlan) -> Result<()> {
    match node {
        LogicalPlan::Copy(copy) => policy
            .check_write_location(&copy.output_url)
            .map_err(denied),
        LogicalPlan::Ddl(DdlStatement::CreateExternalTable(t)) => {
            for location in &t.locations {
                policy.check_read_location(location).map_err(denied)?;
            }
            Ok(())
        }
        LogicalPlan::Ddl(DdlStatement::CreateFunction(f)) => {
            let onnx = f
                .params
                .language
                .as_ref()
                .is_some_and(|l| l.value.eq_ignore_ascii_case("onnx"));
            match &f.params.function_body {
                Some(Expr::Literal(
                    ScalarValue::Utf8(Some(url))
                    | ScalarValue::LargeUtf8(Some(url))
                    | ScalarValue::Utf8View(Some(url)),
                    _,
                )) if onnx => policy.check_read_location(url).map_err(denied),
                _ => Ok(()),
            }
        }
        LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(_)) => {
            // An INSERT into a file-backed table writes files; into a session's memory table it does not.
            let Ok(provider) = source_as_provider(&dml.target) else {
                return Ok(());
            };
            if let Some(listing) = provider.downcast_ref::<ListingTable>() {
                for url in listing.table_paths() {
                    policy.check_write_location(url.as_str()).map_err(denied)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
