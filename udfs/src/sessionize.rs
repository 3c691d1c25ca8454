//! `sessionize(ts, sender_role, gap_seconds [, chat key, ...]) OVER (ORDER BY <chat keys>, ts, ...)`: cuts
//! chats into conversations wherever a message comes more than `gap_seconds` after the previous one, and
//! says for each message where it stands in its conversation. The `conversation_messages` view is built
//! on it.
//!
//! Why a function of our own: the same answers from DataFusion 55's built-in windows (`lag`, a running
//! `sum`, then `row_number`, `count`, `min` and two `max` over earlier rows per conversation) took two
//! sorts and about 4 CPU seconds over a million messages, because an aggregate over a window frame is
//! evaluated row by row, partition by partition. This one reads the messages once, in one
//! [`PartitionEvaluator::evaluate_all`] call per window partition. The chat keys are arguments rather
//! than `PARTITION BY` columns because DataFusion calls a window function once per partition and then
//! concatenates the results: once per chat cost 1.7 CPU seconds over 150k chats (benches/README.md); the
//! view partitions by a coarse bucket instead.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int64Builder, StructArray, UInt64Builder,
};
use datafusion::arrow::compute::{cast, partition};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type, TimeUnit};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    DocSection, Documentation, PartitionEvaluator, Signature, Volatility, WindowUDFImpl,
};

use crate::strings::is_text_or_null;

const NAME: &str = "sessionize";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SessionizeFunc {
    signature: Signature,
}

impl SessionizeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SessionizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Conversation analytics", description: None },
        "Window function over chats' messages in time order: cuts each chat into conversations wherever a message comes more than gap_seconds after the previous one, and returns for each message a struct {conversation (1, 2, ... within the chat), position (1 for the conversation's first message), size (messages in the conversation), started_at (its earliest ts), after_customer (a 'customer' message came earlier in the conversation), last_bot_at (the latest ts of an earlier 'bot' message of the conversation, NULL if none)}. A chat is the window's partition, cut further wherever the optional chat keys change from one row to the next (NULLs equal), so the window may be ordered by the keys, then time, instead of partitioned. A message starts a conversation when it is its chat's first, when the previous message has no ts, or when the gap, in seconds as date_part('epoch', ts) counts them, is larger than gap_seconds.",
        "sessionize(ts, sender_role, gap_seconds [, chat key, ...]) OVER (ORDER BY chat keys, ts, ...)",
    )
    .with_argument("ts", "The message's timestamp (any unit, any time zone).")
    .with_argument("sender_role", "'customer', 'agent', 'bot' or 'system', as in messages.")
    .with_argument("gap_seconds", "The silence, in seconds, that ends a conversation: a constant.")
    .with_argument("chat key", "Optional: columns naming the chat (e.g. channel, conversation_id); the window must be ordered by them first.")
    .with_sql_example("SELECT message_id, s['conversation'], s['position'] FROM (SELECT message_id, sessionize(ts, sender_role, 7200, channel, conversation_id) OVER (ORDER BY channel, conversation_id, ts, source, source_line) AS s FROM messages);")
    .build()
});

fn output_fields(ts: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("conversation", DataType::Int64, false),
        Field::new("position", DataType::UInt64, false),
        Field::new("size", DataType::Int64, false),
        Field::new("started_at", ts.clone(), true),
        Field::new("after_customer", DataType::Boolean, false),
        Field::new("last_bot_at", ts.clone(), true),
    ])
}

impl WindowUDFImpl for SessionizeFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [ts, role, gap, chat @ ..] = arg_types else {
            return plan_err!(
                "{NAME}() takes (ts, sender_role, gap_seconds [, chat key, ...]), got {} arguments",
                arg_types.len()
            );
        };
        let ts = match ts {
            DataType::Timestamp(..) => ts.clone(),
            other => {
                return plan_err!("{NAME}(): ts (argument 1) must be a timestamp, got {other}");
            }
        };
        let role = match role {
            t if is_text_or_null(t) => DataType::Utf8,
            other => {
                return plan_err!("{NAME}(): sender_role (argument 2) must be text, got {other}");
            }
        };
        if !(gap.is_numeric() || *gap == DataType::Null) {
            return plan_err!("{NAME}(): gap_seconds (argument 3) must be a number, got {gap}");
        }
        let mut types = vec![ts, role, DataType::Float64];
        types.extend(chat.iter().cloned());
        Ok(types)
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Sessions))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let ts = field_args
            .get_input_field(0)
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Timestamp(TimeUnit::Microsecond, None));
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Struct(output_fields(&ts)),
            false,
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug)]
struct Sessions;

impl PartitionEvaluator for Sessions {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let [ts, role, gap, chat @ ..] = values else {
            return exec_err!(
                "{NAME}(): expected 3 or more arguments, got {}",
                values.len()
            );
        };
        // Where a new chat begins: the chat keys differ from the previous row's (NULLs equal).
        let mut chat_starts = vec![false; num_rows];
        if !chat.is_empty() {
            for range in partition(chat)?.ranges() {
                if let Some(first) = chat_starts.get_mut(range.start) {
                    *first = true;
                }
            }
        }
        let ts_type = ts.data_type().clone();
        let per_second = match &ts_type {
            DataType::Timestamp(TimeUnit::Second, _) => 1.0,
            DataType::Timestamp(TimeUnit::Millisecond, _) => 1e3,
            DataType::Timestamp(TimeUnit::Microsecond, _) => 1e6,
            DataType::Timestamp(TimeUnit::Nanosecond, _) => 1e9,
            other => return exec_err!("{NAME}(): ts must be a timestamp, got {other}"),
        };
        // The raw values in the input's unit (a cast to Int64 only relabels them).
        let stamps: Vec<Option<i64>> = cast(ts, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .iter()
            .collect();
        let role = role.as_string::<i32>();
        let gap = gap.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        // Read per row, as the SQL it replaces did. NULL compares as nothing, so it never cuts (as
        // `x > NULL` in SQL).
        let gap_at = |i: usize| gap.is_valid(i).then(|| gap.value(i));
        // Seconds as date_part('epoch', ts) computes them (dividing by 1.0 changes nothing), so the cut
        // falls where the SQL puts it.
        let seconds = |v: i64| v as f64 / per_second;

        // Where each conversation starts.
        let mut starts = Vec::new();
        for i in 0..num_rows {
            let new = i == 0
                || chat_starts[i]
                || match (stamps[i - 1], stamps[i]) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(prev), Some(cur)) => {
                        // Arrow compares floats in total order (-0.0 < 0.0, NaN largest): so here.
                        gap_at(i)
                            .is_some_and(|g| (seconds(cur) - seconds(prev)).total_cmp(&g).is_gt())
                    }
                };
            if new {
                starts.push(i);
            }
        }
        starts.push(num_rows);

        let mut conversation = Int64Builder::with_capacity(num_rows);
        let mut position = UInt64Builder::with_capacity(num_rows);
        let mut size = Int64Builder::with_capacity(num_rows);
        let mut started_at = Int64Builder::with_capacity(num_rows);
        let mut after_customer = BooleanBuilder::with_capacity(num_rows);
        let mut last_bot_at = Int64Builder::with_capacity(num_rows);
        let mut n = 0;
        for range in starts.windows(2) {
            let (from, to) = (range[0], range[1]);
            // Numbered within the chat: from 1 again where a chat begins.
            n = if from == 0 || chat_starts[from] {
                1
            } else {
                n + 1
            };
            let earliest = stamps[from..to].iter().flatten().min().copied();
            let mut customer_before = false;
            let mut bot_before: Option<i64> = None;
            for (i, stamp) in stamps.iter().enumerate().take(to).skip(from) {
                conversation.append_value(n);
                position.append_value((i - from + 1) as u64);
                size.append_value((to - from) as i64);
                started_at.append_option(earliest);
                after_customer.append_value(customer_before);
                last_bot_at.append_option(bot_before);
                let r = (!role.is_null(i)).then(|| role.value(i));
                match r {
                    Some("customer") => customer_before = true,
                    Some("bot") => {
                        if let Some(t) = *stamp {
                            bot_before = Some(bot_before.map_or(t, |b| b.max(t)));
                        }
                    }
                    _ => {}
                }
            }
        }
        // The two timestamp columns get the input's unit and zone back (a cast from Int64 only relabels).
        let as_ts = |b: &mut Int64Builder| cast(&b.finish(), &ts_type);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(conversation.finish()),
            Arc::new(position.finish()),
            Arc::new(size.finish()),
            as_ts(&mut started_at)?,
            Arc::new(after_customer.finish()),
            as_ts(&mut last_bot_at)?,
        ];
        Ok(Arc::new(StructArray::try_new(
            output_fields(&ts_type),
            columns,
            None,
        )?))
    }
}
