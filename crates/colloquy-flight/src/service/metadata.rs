//! The catalog commands BI tools send (catalogs, schemas, tables, table types, keys) and the server's
//! SqlInfo and XdbcTypeInfo.

use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables, Nullable,
    ProstMessageExt, Searchable, SqlInfo, SqlSupportedTransaction, XdbcDataType,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::logical_expr::TableType;
use futures::TryStreamExt;
use prost::Message;
use tonic::Status;

use crate::error::Result;

use super::{ColloquyFlightSql, DoGetStream, Session};

impl ColloquyFlightSql {
    pub(super) async fn metadata_batch(
        &self,
        session: &Session,
        cmd: &MetadataCommand,
    ) -> Result<RecordBatch> {
        let ctx = &session.ctx;
        match cmd {
            MetadataCommand::Catalogs(q) => {
                let mut b = q.into_builder();
                for c in ctx.catalog_names() {
                    b.append(c);
                }
                Ok(b.build()?)
            }
            MetadataCommand::Schemas(q) => {
                let mut b = q.clone().into_builder();
                for c in ctx.catalog_names() {
                    if let Some(cat) = ctx.catalog(&c) {
                        for s in cat.schema_names() {
                            b.append(&c, s);
                        }
                    }
                }
                Ok(b.build()?)
            }
            MetadataCommand::Tables(q) => {
                let mut b = q.clone().into_builder();
                for c in ctx.catalog_names() {
                    let Some(cat) = ctx.catalog(&c) else { continue };
                    for s in cat.schema_names() {
                        let Some(schema) = cat.schema(&s) else {
                            continue;
                        };
                        for t in schema.table_names() {
                            let Some(table) = schema.table(&t).await? else {
                                continue;
                            };
                            let kind = table_type_name(table.as_ref());
                            let arrow_schema =
                                self.options.normalizer.schema(table.schema().as_ref());
                            b.append(&c, &s, &t, kind, &arrow_schema)?;
                        }
                    }
                }
                Ok(b.build()?)
            }
            MetadataCommand::TableTypes(q) => {
                let mut b = q.into_builder();
                b.append("TABLE");
                b.append("VIEW");
                Ok(b.build()?)
            }
        }
    }
}

pub(super) enum MetadataCommand {
    Catalogs(CommandGetCatalogs),
    Schemas(CommandGetDbSchemas),
    Tables(CommandGetTables),
    TableTypes(CommandGetTableTypes),
}

pub(super) fn table_type_name(t: &dyn TableProvider) -> &'static str {
    match t.table_type() {
        TableType::View => "VIEW",
        TableType::Base | TableType::Temporary => "TABLE",
    }
}

pub(super) fn metadata_schema(cmd: &MetadataCommand) -> SchemaRef {
    match cmd {
        MetadataCommand::Catalogs(q) => q.into_builder().schema(),
        MetadataCommand::Schemas(q) => q.clone().into_builder().schema(),
        MetadataCommand::Tables(q) => q.clone().into_builder().schema(),
        MetadataCommand::TableTypes(q) => q.into_builder().schema(),
    }
}

pub(super) fn info_for(
    schema: &Schema,
    command: impl ProstMessageExt,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor)
        .with_total_records(-1))
}

pub(super) fn one_batch(schema: SchemaRef, batch: RecordBatch) -> DoGetStream {
    let s = futures::stream::iter([Ok(batch)]);
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(s)
            .map_err(Status::from),
    )
}

/// The answer to the key commands: colloquy tables declare no keys, so the spec's schema with no rows.
pub(super) fn empty_result(schema: SchemaRef) -> DoGetStream {
    one_batch(schema.clone(), RecordBatch::new_empty(schema))
}

pub(super) fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

pub(super) fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

pub(super) fn sql_info() -> Result<SqlInfoData> {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "colloquy");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    Ok(b.build()?)
}

pub(super) fn xdbc_types() -> Result<XdbcTypeInfoData> {
    let mut b = XdbcTypeInfoDataBuilder::new();
    let mut add = |name: &str, data_type: XdbcDataType, size: Option<i32>, prefix: Option<&str>| {
        b.append(XdbcTypeInfo {
            type_name: name.to_owned(),
            data_type,
            column_size: size,
            literal_prefix: prefix.map(str::to_owned),
            literal_suffix: prefix.map(str::to_owned),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: prefix.is_some(),
            searchable: Searchable::Full,
            unsigned_attribute: Some(false),
            fixed_prec_scale: false,
            auto_increment: Some(false),
            local_type_name: Some(name.to_owned()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: None,
            num_prec_radix: None,
            interval_precision: None,
        });
    };
    add("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None);
    add("TINYINT", XdbcDataType::XdbcTinyint, Some(3), None);
    add("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), None);
    add("INTEGER", XdbcDataType::XdbcInteger, Some(10), None);
    add("BIGINT", XdbcDataType::XdbcBigint, Some(19), None);
    add("FLOAT", XdbcDataType::XdbcFloat, Some(24), None);
    add("DOUBLE", XdbcDataType::XdbcDouble, Some(53), None);
    add("DECIMAL", XdbcDataType::XdbcDecimal, Some(38), None);
    add("VARCHAR", XdbcDataType::XdbcVarchar, None, Some("'"));
    add("DATE", XdbcDataType::XdbcDate, Some(10), Some("'"));
    add(
        "TIMESTAMP",
        XdbcDataType::XdbcTimestamp,
        Some(29),
        Some("'"),
    );
    add("BINARY", XdbcDataType::XdbcBinary, None, None);
    Ok(b.build()?)
}
