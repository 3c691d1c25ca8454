//! The Flight SQL calls, each routed to the module of its concern.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::ScalarValue;
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{bearer, random_handle};
use crate::error::{Error, Result};
use crate::params::{bind, parameter_schema, row_values};
use crate::redact::redact_sql;

use super::ingest::{affected_rows, read_batches};
use super::metadata::{
    MetadataCommand, empty_result, foreign_keys_schema, info_for, metadata_schema, one_batch,
    primary_keys_schema,
};
use super::{ColloquyFlightSql, Prepared, poisoned};

#[tonic::async_trait]
impl FlightSqlService for ColloquyFlightSql {
    type FlightService = ColloquyFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let p = Self::principal(&request);
        // The interceptor has checked the credentials; a session token ties the next calls to this login.
        let token = match &p.token {
            Some(t) => t.to_string(),
            None => self.options.auth.issue(&p.user)?,
        };
        let out = futures::stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        })]);
        let mut resp = Response::new(Box::pin(out) as Pin<Box<dyn Stream<Item = _> + Send>>);
        resp.metadata_mut().insert("authorization", bearer(&token)?);
        Ok(resp)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = Self::principal(&request);
        let key = Self::session_key(&request);
        let owner = Self::owner(&request);
        let session = self.session(&key, &p.user).await?;
        let caller = Self::caller(&request);
        let plan = self
            .plan_sql(&caller, "query", &owner, &session, &query.query)
            .await?;
        if !plan.get_parameter_types().map_err(Error::from)?.is_empty() {
            return Err(
                Error::invalid("the statement has parameters: prepare it and bind values").into(),
            );
        }
        let record = self.record(&caller, &session, "query", &query.query, Some(&plan), None);
        let info = self
            .plan_result(
                &key,
                &owner,
                &session,
                record,
                &query.query,
                plan,
                request.into_inner(),
            )
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = Self::principal(&request);
        let owner = Self::owner(&request);
        let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
        let (session_key, plan, sql, params, generation) = {
            let prepared = self.prepared.lock().map_err(|_| poisoned())?;
            let Some(ps) = prepared.get(&handle) else {
                return Err(
                    Error::NotFound(format!("unknown prepared statement '{handle}'")).into(),
                );
            };
            if ps.owner != owner {
                return Err(Error::PermissionDenied(
                    "this prepared statement belongs to another user".into(),
                )
                .into());
            }
            let plan = match &ps.params {
                Some(values) => bind(&ps.plan, values)?,
                None => {
                    if !ps
                        .plan
                        .get_parameter_types()
                        .map_err(Error::from)?
                        .is_empty()
                    {
                        return Err(Error::invalid(
                            "bind values to the statement's parameters first",
                        )
                        .into());
                    }
                    ps.plan.clone()
                }
            };
            (
                ps.session.clone(),
                plan,
                Arc::clone(&ps.sql),
                ps.params.clone(),
                ps.generation,
            )
        };
        let session = self.session(&session_key, &p.user).await?;
        Self::same_rules(generation, &session)?;
        // CREATE RULE and DROP RULE run now, when executed, not when prepared.
        let plan = match self
            .options
            .rule_statements
            .as_ref()
            .filter(|r| r.claims(&sql))
        {
            Some(rules) => {
                self.rule_statement(
                    rules.as_ref(),
                    &Self::caller(&request),
                    &session,
                    "prepared",
                    &sql,
                )
                .await?
            }
            None => plan,
        };
        let record = self.record(
            &Self::caller(&request),
            &session,
            "prepared",
            &sql,
            Some(&plan),
            params.as_deref(),
        );
        let info = self
            .plan_result(
                &session_key,
                &owner,
                &session,
                record,
                &sql,
                plan,
                request.into_inner(),
            )
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::Catalogs(query));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::Schemas(query.clone()));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::Tables(query.clone()));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::TableTypes(query));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.xdbc).schema();
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &primary_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let t = self.take_ticket(&ticket.statement_handle, &Self::owner(&request))?;
        Ok(Response::new(self.stream(t)?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::Catalogs(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::Schemas(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::Tables(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::TableTypes(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(&self.sql_info);
        let schema = builder.schema();
        let batch = builder.build().map_err(Error::from)?;
        Ok(Response::new(one_batch(schema, batch)))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(&self.xdbc);
        let schema = builder.schema();
        let batch = builder.build().map_err(Error::from)?;
        Ok(Response::new(one_batch(schema, batch)))
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(primary_keys_schema())))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(foreign_keys_schema())))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(foreign_keys_schema())))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(foreign_keys_schema())))
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let p = Self::principal(&request);
        let owner = Self::owner(&request);
        let session = self.session_for(&request).await?;
        let caller = Self::caller(&request);
        let plan = self
            .plan_sql(&caller, "update", &owner, &session, &cmd.query)
            .await?;
        let record = self.record(&caller, &session, "update", &cmd.query, Some(&plan), None);
        let started = Instant::now();
        let batches = {
            let _slot = self.slot(&owner)?;
            let result = self.run_command(&session.ctx, plan).await;
            self.audit(&record, &result);
            result?
        };
        tracing::info!(target: "colloquy::query", user = %p.user, sql = %redact_sql(&cmd.query), kind = "update", duration_ms = started.elapsed().as_millis() as u64, status = "ok");
        Ok(affected_rows(&batches))
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.ingest(cmd, request).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let owner = Self::owner(&request);
        let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
        let (_, batches) = read_batches(request, self.options.gate.limits.max_ingest_bytes).await?;
        let values = match batches.iter().find(|b| b.num_rows() > 0) {
            Some(b) => row_values(b, 0)?,
            None => vec![],
        };
        let mut prepared = self.prepared.lock().map_err(|_| poisoned())?;
        let Some(ps) = prepared.get_mut(&handle) else {
            return Err(Error::NotFound(format!("unknown prepared statement '{handle}'")).into());
        };
        if ps.owner != owner {
            return Err(Error::PermissionDenied(
                "this prepared statement belongs to another user".into(),
            )
            .into());
        }
        // Check the values now, so a wrong type is reported at bind time.
        bind(&ps.plan, &values)?;
        ps.params = Some(values);
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into()),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let owner = Self::owner(&request);
        let user = Self::principal(&request).user;
        let caller = Self::caller(&request);
        let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
        let (_, batches) = read_batches(request, self.options.gate.limits.max_ingest_bytes).await?;
        let (session_key, base, remembered, sql, generation) = {
            let prepared = self.prepared.lock().map_err(|_| poisoned())?;
            let Some(ps) = prepared.get(&handle) else {
                return Err(
                    Error::NotFound(format!("unknown prepared statement '{handle}'")).into(),
                );
            };
            if ps.owner != owner {
                return Err(Error::PermissionDenied(
                    "this prepared statement belongs to another user".into(),
                )
                .into());
            }
            (
                ps.session.clone(),
                ps.plan.clone(),
                ps.params.clone(),
                Arc::clone(&ps.sql),
                ps.generation,
            )
        };
        let session = self.session(&session_key, &user).await?;
        Self::same_rules(generation, &session)?;
        if let Some(rules) = self
            .options
            .rule_statements
            .as_ref()
            .filter(|r| r.claims(&sql))
        {
            self.rule_statement(rules.as_ref(), &caller, &session, "prepared", &sql)
                .await?;
            return Ok(1);
        }
        let mut rows: Vec<Vec<ScalarValue>> = Vec::new();
        for b in batches.iter().filter(|b| b.num_columns() > 0) {
            for r in 0..b.num_rows() {
                rows.push(row_values(b, r)?);
            }
        }
        if rows.is_empty() {
            rows.push(remembered.unwrap_or_default());
        }
        let _slot = self.slot(&owner)?;
        let mut total = 0;
        for values in rows {
            let plan = bind(&base, &values)?;
            let record = self.record(
                &caller,
                &session,
                "prepared_update",
                &sql,
                Some(&plan),
                Some(&values),
            );
            let result = self.run_command(&session.ctx, plan).await;
            self.audit(&record, &result);
            total += affected_rows(&result?);
        }
        Ok(total)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let key = Self::session_key(&request);
        let owner = Self::owner(&request);
        let session = self.session(&key, &Self::principal(&request).user).await?;
        // Planning only: nothing runs until GetFlightInfo, so DDL is executed exactly once.
        let plan = self
            .plan_sql(
                &Self::caller(&request),
                "prepare",
                &owner,
                &session,
                &query.query,
            )
            .await?;
        let dataset = self.options.normalizer.schema(plan.schema().as_arrow());
        let params = parameter_schema(&plan)?;
        let opts = IpcWriteOptions::default();
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&dataset, &opts)
            .try_into()
            .map_err(Error::from)?;
        let IpcMessage(parameter_schema) = SchemaAsIpc::new(&params, &opts)
            .try_into()
            .map_err(Error::from)?;
        let handle = random_handle("ps")?;
        self.prepared.lock().map_err(|_| poisoned())?.insert(
            handle.clone(),
            Prepared {
                session: key,
                generation: session.generation,
                owner,
                sql: query.query.as_str().into(),
                plan,
                params: None,
            },
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let owner = Self::owner(&request);
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).into_owned();
        let mut prepared = self.prepared.lock().map_err(|_| poisoned())?;
        match prepared.get(&handle) {
            Some(ps) if ps.owner != owner => Err(Error::PermissionDenied(
                "this prepared statement belongs to another user".into(),
            )
            .into()),
            _ => {
                prepared.remove(&handle);
                Ok(())
            }
        }
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Err(Status::invalid_argument(format!(
            "unknown ticket type {}",
            message.type_url
        )))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let body = self.custom_action(request).await?;
        let out = futures::stream::iter([Ok(arrow_flight::Result::new(body))]);
        Ok(Response::new(Box::pin(out)))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<arrow_flight::ActionType, Status>>> {
        Some(super::actions::list())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
