//! Runs SQL text statement by statement and prints each result.

use std::io::Write;

use anyhow::Context;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::StreamExt;

use crate::output::{OutputFormat, Printer};
use crate::progress::ScanBar;

pub struct Runner {
    pub ctx: SessionContext,
    format: OutputFormat,
    progress: bool,
}

impl Runner {
    pub fn new(ctx: SessionContext, format: OutputFormat, progress: bool) -> Self {
        Self {
            ctx,
            format,
            progress,
        }
    }

    /// Splits `sql` into statements and runs them in order, stopping at the first error.
    pub async fn run_script(&self, sql: &str, origin: &str) -> anyhow::Result<()> {
        let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
            .with_context(|| format!("cannot parse SQL from {origin}"))?;
        for statement in statements {
            self.run_statement(statement).await?;
        }
        Ok(())
    }

    async fn run_statement(
        &self,
        statement: datafusion::sql::parser::Statement,
    ) -> anyhow::Result<()> {
        let state = self.ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        let df = colloquy::execute(&self.ctx, plan).await?;
        let schema = df.schema().as_arrow().clone();
        let bar = self.progress.then(ScanBar::start);
        let mut stream = df.execute_stream().await?;
        let stdout = std::io::stdout();
        let mut printer = Printer::new(self.format, std::sync::Arc::new(schema));
        let mut result = Ok(());
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(b) => printer.push(b, &mut stdout.lock())?,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish();
        }
        result?;
        printer.finish(&mut stdout.lock())?;
        stdout.lock().flush()?;
        Ok(())
    }
}
