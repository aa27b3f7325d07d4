//! A table's columns as the server has them (`system.columns`), and the
//! ClickHouse types somaflow knows how to write in RowBinary.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;

use super::ClickHouseError;
use super::client::client_error;
use super::config::ClickHouseConfig;

/// A ClickHouse column type somaflow writes, without `Nullable`/`LowCardinality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChType {
    String,
    Int {
        bytes: u8,
        signed: bool,
    },
    Float32,
    Float64,
    /// `precision` digits, `scale` of them after the point, stored in
    /// `bytes` (4, 8 or 16).
    Decimal {
        bytes: u8,
        precision: u32,
        scale: u32,
    },
    DateTime,
    DateTime64 {
        precision: u32,
    },
    Date,
}

/// A column type: its value type and whether it takes NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnType {
    pub ty: ChType,
    pub nullable: bool,
}

impl ColumnType {
    /// Parses a `system.columns` type; `None` for types somaflow never writes.
    pub fn parse(text: &str) -> Option<ColumnType> {
        let text = text.trim();
        if let Some(inner) = unwrap_call(text, "Nullable") {
            return ColumnType::parse(inner).map(|c| ColumnType {
                nullable: true,
                ..c
            });
        }
        if let Some(inner) = unwrap_call(text, "LowCardinality") {
            return ColumnType::parse(inner);
        }
        let ty = match text {
            "String" => ChType::String,
            "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" => {
                let signed = text.starts_with("Int");
                let bits: u8 = text
                    .trim_start_matches('U')
                    .trim_start_matches("Int")
                    .parse()
                    .ok()?;
                ChType::Int {
                    bytes: bits / 8,
                    signed,
                }
            }
            "Float32" => ChType::Float32,
            "Float64" => ChType::Float64,
            "Date" => ChType::Date,
            _ if text == "DateTime" || unwrap_call(text, "DateTime").is_some() => ChType::DateTime,
            _ => {
                if let Some(args) = unwrap_call(text, "DateTime64") {
                    let precision = args.split(',').next()?.trim().parse().ok()?;
                    ChType::DateTime64 { precision }
                } else if let Some(args) = unwrap_call(text, "Decimal") {
                    let mut parts = args.split(',').map(|p| p.trim().parse::<u32>());
                    let precision = parts.next()?.ok()?;
                    let scale = parts.next()?.ok()?;
                    ChType::Decimal {
                        bytes: decimal_bytes(precision)?,
                        precision,
                        scale,
                    }
                } else {
                    let (bytes, precision, args) = [
                        ("Decimal32", 4, 9),
                        ("Decimal64", 8, 18),
                        ("Decimal128", 16, 38),
                    ]
                    .into_iter()
                    .find_map(|(name, bytes, precision)| {
                        unwrap_call(text, name).map(|a| (bytes, precision, a))
                    })?;
                    ChType::Decimal {
                        bytes,
                        precision,
                        scale: args.trim().parse().ok()?,
                    }
                }
            }
        };
        Some(ColumnType {
            ty,
            nullable: false,
        })
    }

    /// The type a column of `arrow` has in somaflow's DDL: used when the
    /// table lacks the column, so the insert still names it and the server
    /// explains what is wrong.
    pub fn for_arrow(arrow: &DataType, nullable: bool) -> Option<ColumnType> {
        let ty = match arrow {
            DataType::Utf8 | DataType::Binary => ChType::String,
            DataType::Int32 => ChType::Int {
                bytes: 4,
                signed: true,
            },
            DataType::Int64 => ChType::Int {
                bytes: 8,
                signed: true,
            },
            DataType::Float64 => ChType::Float64,
            DataType::Decimal128(precision, scale) => ChType::Decimal {
                bytes: 16,
                precision: u32::from(*precision),
                scale: u32::try_from(*scale).ok()?,
            },
            DataType::Timestamp(_, _) => ChType::DateTime,
            _ => return None,
        };
        Some(ColumnType { ty, nullable })
    }
}

fn decimal_bytes(precision: u32) -> Option<u8> {
    match precision {
        1..=9 => Some(4),
        10..=18 => Some(8),
        19..=38 => Some(16),
        _ => None,
    }
}

fn unwrap_call<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// The columns of one table, by name, as type text.
#[derive(Debug, Clone, Default)]
pub struct TableLayout {
    pub columns: HashMap<String, String>,
}

impl TableLayout {
    /// Reads the layout from `system.columns`. The names are identifiers
    /// validated at startup, so inlining them is safe (18.16 has no query
    /// parameters).
    pub async fn load(
        client: &clickhouse::Client,
        config: &ClickHouseConfig,
        table: &str,
    ) -> Result<TableLayout, ClickHouseError> {
        let sql = format!(
            "SELECT name, type FROM system.columns WHERE database = '{}' AND table = '{}'",
            config.database, table
        );
        let rows = client
            .query(&sql)
            .fetch_all::<(String, String)>()
            .await
            .map_err(client_error(config))?;
        Ok(TableLayout {
            columns: rows.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_types_parse() {
        let t = |s| ColumnType::parse(s).unwrap();
        assert_eq!(t("String").ty, ChType::String);
        assert!(t("Nullable(String)").nullable);
        assert_eq!(t("LowCardinality(String)").ty, ChType::String);
        assert_eq!(
            t("Nullable(Decimal(38, 9))"),
            ColumnType {
                ty: ChType::Decimal {
                    bytes: 16,
                    precision: 38,
                    scale: 9
                },
                nullable: true
            }
        );
        assert_eq!(
            t("Decimal64(4)").ty,
            ChType::Decimal {
                bytes: 8,
                precision: 18,
                scale: 4
            }
        );
        assert_eq!(t("DateTime('UTC')").ty, ChType::DateTime);
        assert_eq!(
            t("DateTime64(6, 'UTC')").ty,
            ChType::DateTime64 { precision: 6 }
        );
        assert_eq!(
            t("UInt16").ty,
            ChType::Int {
                bytes: 2,
                signed: false
            }
        );
        assert!(ColumnType::parse("Array(String)").is_none());
    }
}
