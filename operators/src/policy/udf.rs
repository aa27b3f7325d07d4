//! `contains_pii(text) -> boolean`, the SQL face of [`super::pii`], so rules
//! can say `when = "contains_pii(message)"`. A null text holds no PII: the
//! function returns false rather than null, so `NOT contains_pii(message)`
//! behaves as a rule author expects.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use super::pii::contains_pii;

pub const CONTAINS_PII: &str = "contains_pii";

pub fn contains_pii_udf() -> ScalarUDF {
    create_udf(
        CONTAINS_PII,
        vec![DataType::Utf8],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(evaluate),
    )
}

fn evaluate(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    match args {
        [ColumnarValue::Array(array)] => {
            let Some(text) = array.as_string_opt::<i32>() else {
                return exec_err!("{CONTAINS_PII} takes text, got {}", array.data_type());
            };
            // No null buffer: null text is `false`, not unknown.
            let bits = BooleanBuffer::collect_bool(text.len(), |i| {
                text.is_valid(i) && contains_pii(text.value(i))
            });
            Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
                bits, None,
            ))))
        }
        [ColumnarValue::Scalar(ScalarValue::Null)] => {
            Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(false))))
        }
        [ColumnarValue::Scalar(scalar)] => match scalar.try_as_str() {
            Some(text) => Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(
                text.is_some_and(contains_pii),
            )))),
            None => exec_err!("{CONTAINS_PII} takes text, got {}", scalar.data_type()),
        },
        _ => exec_err!("{CONTAINS_PII} takes one argument, got {}", args.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    #[test]
    fn null_text_is_false_not_null() {
        let input = StringArray::from(vec![Some("cc jane.doe@example.com"), None, Some("hi")]);
        let out = evaluate(&[ColumnarValue::Array(Arc::new(input))]).unwrap();
        let ColumnarValue::Array(out) = out else {
            panic!("array in, array out")
        };
        let out = out.as_boolean();
        assert_eq!(out.null_count(), 0);
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            [Some(true), Some(false), Some(false)]
        );
        let scalar = evaluate(&[ColumnarValue::Scalar(ScalarValue::Utf8(None))]).unwrap();
        assert!(matches!(
            scalar,
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(false)))
        ));
    }
}
