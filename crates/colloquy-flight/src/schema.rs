//! The schema clients see. Drivers compare the schema announced in FlightInfo with the one the stream
//! carries, field by field, and many cannot read Arrow's view types: so every result goes through one
//! normalisation — all fields nullable, and (by default) Utf8View/BinaryView as Utf8/Binary — applied to
//! the announced schema and to every batch alike.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

#[derive(Clone, Copy, Debug)]
pub struct Normalizer {
    /// Send view types as their classic equivalents.
    pub expand_views: bool,
}

impl Normalizer {
    pub fn schema(&self, schema: &Schema) -> SchemaRef {
        let fields: Vec<FieldRef> = schema.fields().iter().map(|f| self.field(f)).collect();
        Arc::new(Schema::new(fields))
    }

    fn field(&self, f: &Field) -> FieldRef {
        Arc::new(Field::new(f.name(), self.data_type(f.data_type()), true))
    }

    fn data_type(&self, t: &DataType) -> DataType {
        match t {
            DataType::Utf8View if self.expand_views => DataType::Utf8,
            DataType::BinaryView if self.expand_views => DataType::Binary,
            DataType::List(f) => DataType::List(self.field(f)),
            DataType::LargeList(f) => DataType::LargeList(self.field(f)),
            DataType::FixedSizeList(f, n) => DataType::FixedSizeList(self.field(f), *n),
            DataType::Struct(fields) => {
                DataType::Struct(fields.iter().map(|f| self.field(f)).collect())
            }
            DataType::Map(f, sorted) => {
                // Map entries keep their non-null key: the Arrow spec requires it.
                let entries = match f.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => {
                        let key =
                            Field::new(kv[0].name(), self.data_type(kv[0].data_type()), false);
                        let value = self.field(&kv[1]);
                        Field::new(
                            f.name(),
                            DataType::Struct(vec![Arc::new(key), value].into()),
                            false,
                        )
                    }
                    other => Field::new(f.name(), self.data_type(other), false),
                };
                DataType::Map(Arc::new(entries), *sorted)
            }
            DataType::Dictionary(_, value) => self.data_type(value),
            other => other.clone(),
        }
    }

    /// `batch` rebuilt into `schema` (the result of [`Self::schema`] on the batch's own schema).
    pub fn batch(
        &self,
        batch: &RecordBatch,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, ArrowError> {
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c.clone())
                } else {
                    cast(c, f.data_type())
                }
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        RecordBatch::try_new(schema.clone(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringViewArray, StructArray};

    #[test]
    fn views_become_classic_and_everything_nullable() {
        let s = Schema::new(vec![
            Field::new("t", DataType::Utf8View, false),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8View, false))),
                false,
            ),
        ]);
        let n = Normalizer { expand_views: true }.schema(&s);
        assert_eq!(n.field(0).data_type(), &DataType::Utf8);
        assert!(n.field(0).is_nullable());
        assert_eq!(
            n.field(1).data_type(),
            &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        );
        let keep = Normalizer {
            expand_views: false,
        }
        .schema(&s);
        assert_eq!(keep.field(0).data_type(), &DataType::Utf8View);
    }

    #[test]
    fn batches_follow_the_schema() {
        let inner = StructArray::from(vec![(
            Arc::new(Field::new("v", DataType::Utf8View, false)),
            Arc::new(StringViewArray::from(vec!["a", "b"])) as ArrayRef,
        )]);
        let batch =
            RecordBatch::try_from_iter([("s", Arc::new(inner) as ArrayRef)]).expect("batch");
        let norm = Normalizer { expand_views: true };
        let schema = norm.schema(batch.schema().as_ref());
        let out = norm.batch(&batch, &schema).expect("cast");
        assert_eq!(out.schema(), schema);
    }
}
