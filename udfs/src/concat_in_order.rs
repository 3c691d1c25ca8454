//! `concat_in_order(text, key [, separator])`: a group's texts joined in the order of `key`. The same
//! answer as `string_agg(text, separator ORDER BY key)`, computed by one grouped accumulator: DataFusion 55
//! runs an aggregate with `ORDER BY` through an accumulator object per group, which over the 151k
//! conversations of a million messages took 4 of the `conversations` view's CPU seconds
//! (benches/README.md).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Builder, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, EmitTo, GroupsAccumulator, Signature,
    Volatility,
};

use crate::strings::is_text_or_null;

const NAME: &str = "concat_in_order";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConcatInOrderFunc {
    signature: Signature,
}

impl ConcatInOrderFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for ConcatInOrderFunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        "The group's texts joined in the order of key, with separator between them (a space by default): what string_agg(text, separator ORDER BY key) gives, computed in one grouped pass. NULL texts are skipped; rows with equal keys keep no particular order; NULL when the group has no text.",
        "concat_in_order(text, key [, separator])",
    )
    .with_argument("text", "The text of each row.")
    .with_argument("key", "An integer that orders the rows, e.g. a message's position in its conversation.")
    .with_argument("separator", "Optional constant text put between two texts (default ' ').")
    .with_sql_example("SELECT conversation_key, language(concat_in_order(text, position)) FROM conversation_messages WHERE sender_role = 'customer' GROUP BY conversation_key;")
    .build()
});

/// The separator: the third argument, which must be a constant text.
fn separator(args: &AccumulatorArgs) -> Result<String> {
    let Some(expr) = args.exprs.get(2) else {
        return Ok(" ".to_string());
    };
    let any: &dyn std::any::Any = expr.as_ref();
    let literal = any.downcast_ref::<datafusion::physical_expr::expressions::Literal>();
    match literal.map(|l| l.value()) {
        Some(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Ok(s.clone()),
        Some(
            ScalarValue::Utf8(None) | ScalarValue::LargeUtf8(None) | ScalarValue::Utf8View(None),
        ) => Ok(String::new()),
        _ => plan_err!("{NAME}(): separator (argument 3) must be a constant text"),
    }
}

/// The partial state: the keys (NULL for a NULL key) and the texts of each group, as two lists.
fn state_fields(name: &str) -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new_list(
            format_state_name(name, "keys"),
            Field::new_list_field(DataType::Int64, true),
            true,
        )),
        Arc::new(Field::new_list(
            format_state_name(name, "texts"),
            Field::new_list_field(DataType::Utf8, false),
            true,
        )),
    ]
}

/// DISTINCT and an ORDER BY inside the call would change the answer: refused rather than ignored.
fn refuse_modifiers(args: &AccumulatorArgs) -> Result<()> {
    if args.is_distinct {
        return plan_err!("{NAME}(): DISTINCT is not supported");
    }
    if !args.order_bys.is_empty() {
        return plan_err!(
            "{NAME}(): ORDER BY inside the call is not supported: the key orders the texts"
        );
    }
    Ok(())
}

impl AggregateUDFImpl for ConcatInOrderFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(2..=3).contains(&arg_types.len()) {
            return plan_err!(
                "{NAME}() takes (text, key [, separator]), got {} arguments",
                arg_types.len()
            );
        }
        let text = |i: usize, what: &str| match &arg_types[i] {
            t if is_text_or_null(t) => Ok(DataType::Utf8),
            other => plan_err!(
                "{NAME}(): {what} (argument {}) must be text, got {other}",
                i + 1
            ),
        };
        let mut out = vec![text(0, "text")?];
        out.push(match &arg_types[1] {
            t if t.is_integer() || *t == DataType::Null => DataType::Int64,
            other => {
                return plan_err!("{NAME}(): key (argument 2) must be an integer, got {other}");
            }
        });
        if arg_types.len() == 3 {
            out.push(text(2, "separator")?);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        refuse_modifiers(&args)?;
        Ok(Box::new(OneGroup {
            groups: Groups::new(separator(&args)?),
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        refuse_modifiers(&args)?;
        Ok(Box::new(Groups::new(separator(&args)?)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Each group's (key, text) pairs, in the order they came.
#[derive(Debug)]
struct Groups {
    separator: String,
    pairs: Vec<Vec<(Option<i64>, String)>>,
    /// The bytes of the texts held, kept as they come and go: `size()` is asked once per batch.
    text_bytes: usize,
    /// Pairs held, in all groups.
    held: usize,
}

impl Groups {
    fn new(separator: String) -> Self {
        Self {
            separator,
            pairs: Vec::new(),
            text_bytes: 0,
            held: 0,
        }
    }

    fn grow(&mut self, total: usize) {
        if self.pairs.len() < total {
            self.pairs.resize_with(total, Vec::new);
        }
    }

    /// Adds the rows of `texts`/`keys` that pass `filter` (and have a text) to their groups.
    fn add_rows(
        &mut self,
        texts: &ArrayRef,
        keys: &ArrayRef,
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let texts = texts.as_string::<i32>();
        let keys = keys.as_primitive::<Int64Type>();
        for row in 0..texts.len() {
            if texts.is_null(row) || filter.is_some_and(|f| !(f.is_valid(row) && f.value(row))) {
                continue;
            }
            let key = keys.is_valid(row).then(|| keys.value(row));
            self.push(group_of(row), key, texts.value(row));
        }
        Ok(())
    }

    fn push(&mut self, group: usize, key: Option<i64>, text: &str) {
        self.text_bytes += text.len();
        self.held += 1;
        self.pairs[group].push((key, text.to_string()));
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Vec<(Option<i64>, String)>> {
        let taken = emit_to.take_needed(&mut self.pairs);
        for pairs in &taken {
            self.held -= pairs.len();
            self.text_bytes -= pairs.iter().map(|(_, t)| t.len()).sum::<usize>();
        }
        taken
    }

    fn joined(&self, mut pairs: Vec<(Option<i64>, String)>) -> Option<String> {
        if pairs.is_empty() {
            return None;
        }
        // Stable: rows with equal keys stay in the order they came.
        // NULL keys go last, as `ORDER BY key` (ascending, NULLS LAST) puts them.
        pairs.sort_by_key(|(k, _)| (k.is_none(), *k));
        let mut out = String::with_capacity(
            pairs
                .iter()
                .map(|(_, t)| t.len() + self.separator.len())
                .sum(),
        );
        for (i, (_, t)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push_str(&self.separator);
            }
            out.push_str(t);
        }
        Some(out)
    }

    fn state_arrays(groups: Vec<Vec<(Option<i64>, String)>>) -> Vec<ArrayRef> {
        // Keys may be NULL (a NULL key sorts last); the field says so, as `state_fields` does.
        let mut keys = ListBuilder::new(Int64Builder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::Int64, true)));
        let mut texts = ListBuilder::new(StringBuilder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::Utf8, false)));
        for pairs in groups {
            for (k, t) in pairs {
                keys.values().append_option(k);
                texts.values().append_value(t);
            }
            keys.append(true);
            texts.append(true);
        }
        vec![Arc::new(keys.finish()), Arc::new(texts.finish())]
    }

    /// Adds the pairs of partial states (one list of keys and one of texts per row) to their groups.
    fn merge_rows(&mut self, states: &[ArrayRef], group_of: impl Fn(usize) -> usize) -> Result<()> {
        let [keys, texts] = states else {
            return exec_err!("{NAME}(): expected 2 state columns, got {}", states.len());
        };
        let (keys, texts) = (keys.as_list::<i32>(), texts.as_list::<i32>());
        // Read through the offsets: `ListArray::value(row)` would build two array slices per row.
        let key_values = keys.values().as_primitive::<Int64Type>();
        let text_values = texts.values().as_string::<i32>();
        let (key_offsets, text_offsets) = (keys.value_offsets(), texts.value_offsets());
        for row in 0..keys.len() {
            if keys.is_null(row) {
                continue;
            }
            let key_range = key_offsets[row] as usize..key_offsets[row + 1] as usize;
            let text_range = text_offsets[row] as usize..text_offsets[row + 1] as usize;
            if key_range.len() != text_range.len() {
                return exec_err!(
                    "{NAME}(): a state has {} keys for {} texts",
                    key_range.len(),
                    text_range.len()
                );
            }
            for (k, t) in key_range.zip(text_range) {
                let key = key_values.is_valid(k).then(|| key_values.value(k));
                self.push(group_of(row), key, text_values.value(t));
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        self.add_rows(&values[0], &values[1], |row| group_indices[row], opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = self.take(emit_to);
        let out: StringArray = groups.into_iter().map(|p| self.joined(p)).collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(Self::state_arrays(self.take(emit_to)))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        self.merge_rows(values, |row| group_indices[row])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Each row its own group: a list of its one (key, text), empty when it has none.
        let mut rows = Groups::new(self.separator.clone());
        rows.grow(values[0].len());
        rows.add_rows(&values[0], &values[1], |row| row, opt_filter)?;
        Ok(Self::state_arrays(rows.pairs))
    }

    fn size(&self) -> usize {
        // Estimated from running counts (capacity slack not counted): O(1) per batch.
        self.pairs.capacity() * size_of::<Vec<(Option<i64>, String)>>()
            + self.held * size_of::<(Option<i64>, String)>()
            + self.text_bytes
    }
}

/// The same for a query without GROUP BY (or where DataFusion asks for a plain accumulator).
#[derive(Debug)]
struct OneGroup {
    groups: Groups,
}

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.groups.grow(1);
        self.groups.add_rows(&values[0], &values[1], |_| 0, None)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.groups.grow(1);
        let pairs = self.groups.pairs[0].clone();
        Ok(ScalarValue::Utf8(self.groups.joined(pairs)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + GroupsAccumulator::size(&self.groups)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.groups.grow(1);
        let arrays = Groups::state_arrays(vec![self.groups.pairs[0].clone()]);
        arrays
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.groups.grow(1);
        self.groups.merge_rows(states, |_| 0)
    }
}
