//! Uploads: bulk ingest into session tables and the batches of prepared statements, held to the upload
//! cap.

use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use datafusion::arrow::array::{Array, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::datasource::MemTable;
use futures::{StreamExt, TryStreamExt};
use tonic::{Request, Status};

use crate::error::{Error, Result};

use super::ColloquyFlightSql;
use super::query::deadline;

impl ColloquyFlightSql {
    /// Bulk ingest (DoPut with CommandStatementIngest) into a session table.
    pub(super) async fn ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        // Ingest holds the upload in memory: it counts as a running statement, and is held to the
        // upload cap and the query timeout.
        let _slot = self.slot(&Self::owner(&request))?;
        let max_bytes = self.options.gate.limits.max_ingest_bytes;
        let timeout = self.options.query_timeout;
        let session = self.session_for(&request).await?;
        let target = match &cmd.schema {
            Some(s) if !s.is_empty() => format!("{s}.{}", cmd.table),
            _ => cmd.table.clone(),
        };
        let record = self.record(
            &Self::caller(&request),
            &session,
            "ingest",
            &format!("INGEST INTO \"{}\"", target.replace('"', "\"\"")),
            None,
            None,
        );
        let live = self
            .options
            .live_sink
            .as_ref()
            .filter(|sink| {
                cmd.schema.as_deref().is_none_or(str::is_empty)
                    && cmd.table.eq_ignore_ascii_case(sink.table())
            })
            .cloned();
        let work = async {
            if let Some(grants) = session
                .ctx
                .state()
                .config()
                .get_extension::<colloquy::governance::SessionGrants>()
                && !grants.write
            {
                return Err(
                    crate::gate::not_granted(&grants, "bulk ingest", "write = true").into(),
                );
            }
            if let Some(sink) = live {
                let options = cmd.table_definition_options.unwrap_or_default();
                if TableExistsOption::try_from(options.if_exists) != Ok(TableExistsOption::Append) {
                    return Err(Error::invalid(format!(
                        "'{}' is the live table: ingest into it with mode 'append'",
                        sink.table()
                    ))
                    .into());
                }
                let (_, batches) = read_batches(request, max_bytes).await?;
                return Ok(sink.append(batches).await?);
            }
            let (schema, batches) = read_batches(request, max_bytes).await?;
            let Some(schema) = schema else {
                return Err(Error::invalid("bulk ingest sent no schema").into());
            };
            let name = match &cmd.schema {
                Some(s) if !s.is_empty() => format!("{s}.{}", cmd.table),
                _ => cmd.table.clone(),
            };
            let options = cmd.table_definition_options.unwrap_or_default();
            let if_exists = TableExistsOption::try_from(options.if_exists)
                .unwrap_or(TableExistsOption::Unspecified);
            let if_not_exist = TableNotExistOption::try_from(options.if_not_exist)
                .unwrap_or(TableNotExistOption::Unspecified);
            let ctx = &session.ctx;
            let exists = ctx.table_exist(name.as_str()).map_err(Error::from)?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let mut all = Vec::new();
            if exists {
                match if_exists {
                    TableExistsOption::Fail | TableExistsOption::Unspecified => {
                        return Err(Error::invalid(format!(
                            "table '{name}' already exists (mode 'create')"
                        ))
                        .into());
                    }
                    TableExistsOption::Append => {
                        let old = ctx.table(name.as_str()).await.map_err(Error::from)?;
                        let old_schema: Schema = old.schema().as_arrow().clone();
                        if old_schema.fields().len() != schema.fields().len() {
                            return Err(Error::invalid(format!(
                                "cannot append to '{name}': it has {} columns, the data has {}",
                                old_schema.fields().len(),
                                schema.fields().len()
                            ))
                            .into());
                        }
                        let target = Arc::new(old_schema);
                        all = old.collect().await.map_err(Error::from)?;
                        for b in &batches {
                            let cols = b
                                .columns()
                                .iter()
                                .zip(target.fields())
                                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(Error::from)?;
                            all.push(
                                RecordBatch::try_new(target.clone(), cols).map_err(Error::from)?,
                            );
                        }
                        ctx.deregister_table(name.as_str()).map_err(Error::from)?;
                        let table = MemTable::try_new(target, vec![all]).map_err(Error::from)?;
                        ctx.register_table(name.as_str(), Arc::new(table))
                            .map_err(Error::from)?;
                        colloquy::table_replaced(ctx, &name)
                            .await
                            .map_err(Error::from)?;
                        return Ok(rows as i64);
                    }
                    TableExistsOption::Replace => {
                        ctx.deregister_table(name.as_str()).map_err(Error::from)?;
                    }
                }
            } else if if_not_exist == TableNotExistOption::Fail {
                return Err(Error::NotFound(format!(
                    "table '{name}' does not exist (mode 'append')"
                ))
                .into());
            }
            all.extend(batches);
            let table = MemTable::try_new(schema, vec![all]).map_err(Error::from)?;
            ctx.register_table(name.as_str(), Arc::new(table))
                .map_err(Error::from)?;
            colloquy::table_replaced(ctx, &name)
                .await
                .map_err(Error::from)?;
            Ok(rows as i64)
        };
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| Status::from(deadline("the ingest", t)))
                .and_then(|r| r),
            None => work.await,
        };
        self.audit_outcome(
            &record,
            result
                .as_ref()
                .map(|rows| u64::try_from(*rows).unwrap_or(0))
                .map_err(|_| ()),
        );
        result
    }
}

/// Rows a command reports: DataFusion's DML returns one `count` column.
pub(super) fn affected_rows(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .filter_map(|b| {
            b.column_by_name("count")
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>().cloned())
        })
        .map(|c| c.iter().flatten().sum::<u64>() as i64)
        .sum()
}

/// The batches a client uploads, refused past `max_bytes` (in Arrow memory) with the data read so far
/// dropped.
pub(super) async fn read_batches(
    req: Request<PeekableFlightDataStream>,
    max_bytes: usize,
) -> Result<(Option<SchemaRef>, Vec<RecordBatch>)> {
    // Descriptor-only messages (no IPC header) precede the data from some clients: skip them.
    let data = req
        .into_inner()
        .try_filter(|d| futures::future::ready(!d.data_header.is_empty()))
        .map_err(FlightError::from);
    let mut stream = FlightRecordBatchStream::new_from_flight_data(data);
    let mut batches = Vec::new();
    let mut bytes = 0usize;
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| Error::invalid(format!("cannot read the uploaded batches: {e}")))?;
        bytes += b.get_array_memory_size();
        if bytes > max_bytes {
            return Err(Error::ResourceExhausted(format!(
                "the upload is larger than this server accepts in one call ({max_bytes} bytes; max_ingest_bytes in [server]): send it in parts with mode 'append'"
            )));
        }
        batches.push(b);
    }
    let schema = stream
        .schema()
        .cloned()
        .or_else(|| batches.first().map(|b| b.schema()));
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affected_rows_reads_count() {
        let b =
            RecordBatch::try_from_iter([("count", Arc::new(UInt64Array::from(vec![3u64])) as _)])
                .expect("batch");
        assert_eq!(affected_rows(&[b]), 3);
        assert_eq!(affected_rows(&[]), 0);
    }
}
