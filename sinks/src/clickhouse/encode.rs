//! Arrow rows → RowBinary, column types taken from the server's layout, so
//! one encoder serves the 18.16 DDL (DateTime, String) and the current one
//! (DateTime64, LowCardinality).

use datafusion::arrow::array::{
    Array, AsArray, BinaryArray, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};

use super::ClickHouseError;
use super::layout::{ChType, ColumnType, TableLayout};

/// One block ready to send: `(col, …)` for the INSERT and its RowBinary body.
pub struct EncodedBlock {
    pub columns: String,
    pub body: Vec<u8>,
    pub rows: usize,
}

enum Values<'a> {
    Str(&'a StringArray),
    Bin(&'a BinaryArray),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    F64(&'a Float64Array),
    Dec(&'a Decimal128Array, i8),
    Micros(&'a TimestampMicrosecondArray),
}

struct ColumnEncoder<'a> {
    values: Values<'a>,
    target: ColumnType,
}

/// Encodes every row of `batches` (one schema) for a table with `layout`.
pub fn encode(
    batches: &[RecordBatch],
    layout: &TableLayout,
) -> Result<EncodedBlock, ClickHouseError> {
    let Some(first) = batches.first() else {
        return Ok(EncodedBlock {
            columns: String::new(),
            body: Vec::new(),
            rows: 0,
        });
    };
    let schema = first.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let targets = schema
        .fields()
        .iter()
        .map(|f| target_type(f.name(), f.data_type(), f.is_nullable(), layout))
        .collect::<Result<Vec<_>, _>>()?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut body = Vec::with_capacity(rows * 64 * names.len() / 4);
    for batch in batches {
        if batch.schema() != schema {
            return Err(ClickHouseError::MixedSchemas);
        }
        let encoders = batch
            .columns()
            .iter()
            .zip(&targets)
            .zip(schema.fields())
            .map(|((array, target), field)| column_encoder(field.name(), array.as_ref(), *target))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            for (encoder, field) in encoders.iter().zip(schema.fields()) {
                encoder.write(row, &mut body).map_err(|OutOfRange(value)| {
                    ClickHouseError::OutOfRange {
                        column: field.name().clone(),
                        value,
                        clickhouse: layout
                            .columns
                            .get(field.name())
                            .cloned()
                            .unwrap_or_default(),
                    }
                })?;
            }
        }
    }
    Ok(EncodedBlock {
        columns: names.join(", "),
        body,
        rows,
    })
}

fn target_type(
    name: &str,
    arrow: &DataType,
    nullable: bool,
    layout: &TableLayout,
) -> Result<ColumnType, ClickHouseError> {
    let unsupported = |clickhouse: &str| ClickHouseError::Unsupported {
        column: name.to_string(),
        arrow: arrow.to_string(),
        clickhouse: clickhouse.to_string(),
    };
    match layout.columns.get(name) {
        Some(text) => ColumnType::parse(text).ok_or_else(|| unsupported(text)),
        // Missing from the table: name it anyway, the server says what is wrong.
        None => {
            ColumnType::for_arrow(arrow, nullable).ok_or_else(|| unsupported("(no such column)"))
        }
    }
}

fn column_encoder<'a>(
    name: &str,
    array: &'a dyn Array,
    target: ColumnType,
) -> Result<ColumnEncoder<'a>, ClickHouseError> {
    let values = match array.data_type() {
        DataType::Utf8 => Some(Values::Str(array.as_string::<i32>())),
        DataType::Binary => Some(Values::Bin(array.as_binary::<i32>())),
        DataType::Int32 => array.as_primitive_opt::<Int32Type>().map(Values::I32),
        DataType::Int64 => array.as_primitive_opt::<Int64Type>().map(Values::I64),
        DataType::Float64 => array.as_primitive_opt::<Float64Type>().map(Values::F64),
        DataType::Decimal128(_, scale) => array
            .as_primitive_opt::<Decimal128Type>()
            .map(|a| Values::Dec(a, *scale)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive_opt::<TimestampMicrosecondType>()
            .map(Values::Micros),
        _ => None,
    };
    let supported = matches!(
        (&values, target.ty),
        (Some(Values::Str(_) | Values::Bin(_)), ChType::String)
            | (
                Some(Values::I32(_) | Values::I64(_)),
                ChType::Int { .. } | ChType::Float64 | ChType::Float32 | ChType::Decimal { .. }
            )
            | (Some(Values::F64(_)), ChType::Float64 | ChType::Float32)
            | (Some(Values::Dec(..)), ChType::Decimal { .. })
            | (
                Some(Values::Micros(_)),
                ChType::DateTime | ChType::DateTime64 { .. } | ChType::Date
            )
    );
    match values {
        Some(values) if supported => Ok(ColumnEncoder { values, target }),
        _ => Err(ClickHouseError::Unsupported {
            column: name.to_string(),
            arrow: array.data_type().to_string(),
            clickhouse: format!("{:?}", target.ty),
        }),
    }
}

fn write_varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    write_varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// A value that does not fit its column (too large, negative into an
/// unsigned type, or digits a smaller decimal scale would drop).
struct OutOfRange(String);

/// Little-endian two's complement in `bytes`, after checking the value fits.
fn write_int(v: i128, bytes: u8, signed: bool, out: &mut Vec<u8>) -> Result<(), OutOfRange> {
    let bits = u32::from(bytes) * 8;
    let fits = match (signed, bits) {
        (true, 128) => true,
        (true, _) => (-(1i128 << (bits - 1))..(1i128 << (bits - 1))).contains(&v),
        (false, _) => v >= 0 && (bits >= 127 || v < (1i128 << bits)),
    };
    if !fits {
        return Err(OutOfRange(v.to_string()));
    }
    out.extend_from_slice(&v.to_le_bytes()[..bytes as usize]);
    Ok(())
}

/// `value` with `from` digits after the point, re-expressed with `to`;
/// refuses to drop non-zero digits or to overflow.
fn rescale(value: i128, from: i32, to: i32) -> Result<i128, OutOfRange> {
    let out_of_range = || OutOfRange(format!("{value}e-{from}"));
    let factor = 10i128
        .checked_pow((to - from).unsigned_abs())
        .ok_or_else(out_of_range)?;
    if to >= from {
        value.checked_mul(factor).ok_or_else(out_of_range)
    } else if value % factor == 0 {
        Ok(value / factor)
    } else {
        Err(out_of_range())
    }
}

fn write_decimal(
    v: i128,
    from_scale: i32,
    target: ChType,
    out: &mut Vec<u8>,
) -> Result<(), OutOfRange> {
    let ChType::Decimal {
        bytes,
        precision,
        scale,
    } = target
    else {
        return Err(OutOfRange(v.to_string()));
    };
    let scaled = rescale(v, from_scale, scale as i32)?;
    // Decimal(P, S) holds at most P digits.
    if let Some(limit) = 10i128.checked_pow(precision)
        && scaled.unsigned_abs() >= limit.unsigned_abs()
    {
        return Err(OutOfRange(format!("{v}e-{from_scale}")));
    }
    write_int(scaled, bytes, true, out)
}

impl ColumnEncoder<'_> {
    fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), OutOfRange> {
        let array: &dyn Array = match &self.values {
            Values::Str(a) => *a,
            Values::Bin(a) => *a,
            Values::I32(a) => *a,
            Values::I64(a) => *a,
            Values::F64(a) => *a,
            Values::Dec(a, _) => *a,
            Values::Micros(a) => *a,
        };
        let null = array.is_null(row);
        if self.target.nullable {
            out.push(u8::from(null));
            if null {
                return Ok(());
            }
        } else if null {
            // A NULL into a non-Nullable column is written as the type's zero
            // value ('' / 0 / 1970-01-01), as ClickHouse itself does with
            // input_format_null_as_default; the column's DEFAULT expression
            // is not consulted.
            self.write_zero(out);
            return Ok(());
        }
        let ty = self.target.ty;
        match &self.values {
            Values::Str(a) => write_bytes(a.value(row).as_bytes(), out),
            Values::Bin(a) => write_bytes(a.value(row), out),
            Values::I32(a) => write_number(i128::from(a.value(row)), ty, out)?,
            Values::I64(a) => write_number(i128::from(a.value(row)), ty, out)?,
            Values::F64(a) => match ty {
                ChType::Float32 => out.extend_from_slice(&(a.value(row) as f32).to_le_bytes()),
                _ => out.extend_from_slice(&a.value(row).to_le_bytes()),
            },
            Values::Dec(a, scale) => write_decimal(a.value(row), i32::from(*scale), ty, out)?,
            Values::Micros(a) => {
                let us = i128::from(a.value(row));
                match ty {
                    ChType::DateTime => write_int(us.div_euclid(1_000_000), 4, false, out)?,
                    ChType::DateTime64 { precision } => {
                        write_int(rescale_time(us, precision), 8, true, out)?
                    }
                    _ => write_int(us.div_euclid(86_400_000_000), 2, false, out)?,
                }
            }
        }
        Ok(())
    }

    fn write_zero(&self, out: &mut Vec<u8>) {
        match self.target.ty {
            ChType::String => out.push(0),
            ChType::Int { bytes, .. } | ChType::Decimal { bytes, .. } => {
                out.extend(std::iter::repeat_n(0, bytes as usize))
            }
            ChType::Float32 | ChType::DateTime => out.extend_from_slice(&[0; 4]),
            ChType::Float64 | ChType::DateTime64 { .. } => out.extend_from_slice(&[0; 8]),
            ChType::Date => out.extend_from_slice(&[0; 2]),
        }
    }
}

/// Microseconds as ticks of `precision` digits; coarser ticks round down
/// (time truncates, it is not an amount).
fn rescale_time(us: i128, precision: u32) -> i128 {
    let precision = precision.min(9) as i32;
    if precision >= 6 {
        us * 10i128.pow((precision - 6) as u32)
    } else {
        us.div_euclid(10i128.pow((6 - precision) as u32))
    }
}

fn write_number(v: i128, ty: ChType, out: &mut Vec<u8>) -> Result<(), OutOfRange> {
    match ty {
        ChType::Int { bytes, signed } => write_int(v, bytes, signed, out),
        ChType::Float32 => {
            out.extend_from_slice(&(v as f32).to_le_bytes());
            Ok(())
        }
        ChType::Decimal { .. } => write_decimal(v, 0, ty, out),
        _ => {
            out.extend_from_slice(&(v as f64).to_le_bytes());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::ArrayRef;
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn layout(cols: &[(&str, &str)]) -> TableLayout {
        TableLayout {
            columns: cols
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
        }
    }

    #[test]
    fn rows_are_written_in_row_binary() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("d", DataType::Decimal128(38, 9), true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("ab"), None])),
            Arc::new(Int64Array::from(vec![-1, 300])),
            Arc::new(
                Decimal128Array::from(vec![Some(1_500_000_000), None])
                    .with_precision_and_scale(38, 9)
                    .unwrap(),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![2_000_001, 3_999_999]).with_timezone("UTC"),
            ),
        ];
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        let block = encode(
            &[batch],
            &layout(&[
                ("s", "String"),
                ("n", "Int32"),
                ("d", "Nullable(Decimal(18, 2))"),
                ("t", "DateTime"),
            ]),
        )
        .unwrap();
        assert_eq!(block.columns, "s, n, d, t");
        assert_eq!(block.rows, 2);
        let mut want = vec![2, b'a', b'b'];
        want.extend_from_slice(&(-1i32).to_le_bytes());
        want.push(0);
        want.extend_from_slice(&150i64.to_le_bytes()); // 1.5 at scale 2
        want.extend_from_slice(&2u32.to_le_bytes());
        // Row 2: NULL string into String is its default, the empty string.
        want.push(0);
        want.extend_from_slice(&300i32.to_le_bytes());
        want.push(1);
        want.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(block.body, want);
    }

    #[test]
    fn a_column_the_table_lacks_is_still_named() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "gone",
            DataType::Int64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![7])) as ArrayRef],
        )
        .unwrap();
        let block = encode(&[batch], &layout(&[])).unwrap();
        assert_eq!(block.columns, "gone");
        assert_eq!(block.body, 7i64.to_le_bytes());
    }

    fn one_column(
        field: Field,
        array: ArrayRef,
        ch: &str,
    ) -> Result<EncodedBlock, ClickHouseError> {
        let name = field.name().clone();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array]).unwrap();
        encode(&[batch], &layout(&[(&name, ch)]))
    }

    #[test]
    fn values_that_do_not_fit_are_refused_not_truncated() {
        let int = || Field::new("n", DataType::Int64, false);
        let err = one_column(int(), Arc::new(Int64Array::from(vec![300])), "UInt8")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`n`") && err.contains("300") && err.contains("UInt8"),
            "{err}"
        );
        assert!(one_column(int(), Arc::new(Int64Array::from(vec![-1])), "UInt32").is_err());
        assert!(one_column(int(), Arc::new(Int64Array::from(vec![255])), "UInt8").is_ok());
        assert!(one_column(int(), Arc::new(Int64Array::from(vec![i64::MIN])), "Int64").is_ok());
        let dec = || Field::new("d", DataType::Decimal128(38, 9), false);
        let amount = |v: i128| -> ArrayRef {
            Arc::new(
                Decimal128Array::from(vec![v])
                    .with_precision_and_scale(38, 9)
                    .unwrap(),
            )
        };
        // 1.234 at scale 2 would drop a digit; 1.23 fits; 10^7 overflows Decimal(9, 2).
        assert!(one_column(dec(), amount(1_234_000_000), "Decimal(18, 2)").is_err());
        assert!(one_column(dec(), amount(1_230_000_000), "Decimal(18, 2)").is_ok());
        assert!(one_column(dec(), amount(10_000_000 * 1_000_000_000), "Decimal(9, 2)").is_err());
    }

    #[test]
    fn unwritable_types_are_named() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec!["x"])) as ArrayRef],
        )
        .unwrap();
        let err = encode(&[batch], &layout(&[("s", "Array(String)")]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`s`") && err.contains("Array(String)"),
            "{err}"
        );
    }
}
