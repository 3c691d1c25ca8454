//! The one message schema every format maps to, and the builder that turns messages into record batches.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::message::Message;

pub use colloquy_formats::message::MESSAGE_COLUMNS;

/// Rows per record batch, DataFusion's default batch size.
pub const BATCH_ROWS: usize = 8192;

static MESSAGE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("channel", DataType::Utf8, false),
        Field::new("conversation_id", DataType::Utf8, false),
        Field::new("message_id", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("sender_id", DataType::Utf8, true),
        Field::new("sender_name", DataType::Utf8, true),
        Field::new("sender_role", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, true),
        Field::new("reply_to", DataType::Utf8, true),
        Field::new(
            "attachments",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            false,
        ),
        Field::new("source", DataType::Utf8, false),
        Field::new("source_line", DataType::UInt64, false),
    ]))
});

/// The message schema without partition columns.
pub fn message_schema() -> SchemaRef {
    Arc::clone(&MESSAGE_SCHEMA)
}

/// The message schema followed by one nullable Utf8 column per hive-style partition key.
pub fn table_schema(partition_cols: &[String]) -> SchemaRef {
    if partition_cols.is_empty() {
        return message_schema();
    }
    let mut fields: Vec<Field> = MESSAGE_SCHEMA
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(
        partition_cols
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// Column builders for one batch of messages. Columns a query does not read are not built at all (no
/// text copied, no message id hashed).
pub struct MessageBatchBuilder {
    channel: StringBuilder,
    conversation_id: StringBuilder,
    message_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    sender_id: StringBuilder,
    sender_name: StringBuilder,
    sender_role: StringBuilder,
    text: StringBuilder,
    reply_to: StringBuilder,
    attachments: ListBuilder<StringBuilder>,
    source: StringBuilder,
    source_line: UInt64Builder,
    needed: [bool; 12],
    rows: usize,
}

impl Default for MessageBatchBuilder {
    fn default() -> Self {
        Self::with_columns([true; 12])
    }
}

impl MessageBatchBuilder {
    /// A builder for the message columns marked in `needed` (in [`MESSAGE_COLUMNS`] order).
    pub fn with_columns(needed: [bool; 12]) -> Self {
        Self {
            channel: StringBuilder::new(),
            conversation_id: StringBuilder::new(),
            message_id: StringBuilder::new(),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            sender_id: StringBuilder::new(),
            sender_name: StringBuilder::new(),
            sender_role: StringBuilder::new(),
            text: StringBuilder::new(),
            reply_to: StringBuilder::new(),
            attachments: ListBuilder::new(StringBuilder::new())
                .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            source: StringBuilder::new(),
            source_line: UInt64Builder::new(),
            needed,
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn append(&mut self, m: &Message, source: &str) {
        let n = &self.needed;
        if n[0] {
            self.channel.append_value(&m.channel);
        }
        if n[1] {
            self.conversation_id.append_value(&m.conversation_id);
        }
        if n[2] {
            match &m.message_id {
                Some(id) => self.message_id.append_value(id),
                None => self.message_id.append_value(m.derived_id()),
            }
        }
        if n[3] {
            self.ts.append_option(m.ts);
        }
        if n[4] {
            self.sender_id.append_option(m.sender_id.as_deref());
        }
        if n[5] {
            self.sender_name.append_option(m.sender_name.as_deref());
        }
        if n[6] {
            self.sender_role.append_value(m.role.as_str());
        }
        if n[7] {
            self.text.append_option(m.text.as_deref());
        }
        if n[8] {
            self.reply_to.append_option(m.reply_to.as_deref());
        }
        if n[9] {
            for a in &m.attachments {
                self.attachments.values().append_value(a);
            }
            self.attachments.append(true);
        }
        if n[10] {
            self.source.append_value(source);
        }
        if n[11] {
            self.source_line.append_value(m.source_line);
        }
        self.rows += 1;
    }

    /// Finishes the batch: the built columns in schema order (`None` where not needed) and the row
    /// count; resets the builders.
    pub fn finish_columns(&mut self) -> (Vec<Option<ArrayRef>>, usize) {
        let columns: [ArrayRef; 12] = [
            Arc::new(self.channel.finish()),
            Arc::new(self.conversation_id.finish()),
            Arc::new(self.message_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.sender_id.finish()),
            Arc::new(self.sender_name.finish()),
            Arc::new(self.sender_role.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.reply_to.finish()),
            Arc::new(self.attachments.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.source_line.finish()),
        ];
        let rows = std::mem::take(&mut self.rows);
        let out = columns
            .into_iter()
            .zip(self.needed)
            .map(|(c, needed)| needed.then_some(c))
            .collect();
        (out, rows)
    }

    /// Finishes a batch in the full message schema (every column must be needed).
    pub fn finish(&mut self) -> RecordBatch {
        let (columns, _) = self.finish_columns();
        let columns: Vec<ArrayRef> = columns.into_iter().flatten().collect();
        RecordBatch::try_new(message_schema(), columns)
            .expect("builder columns always match the message schema")
    }
}
