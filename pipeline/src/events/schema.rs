//! Arrow schemas: one per event kind, plus raw records and dead letters.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::decimal::{DECIMAL_PRECISION, DECIMAL_SCALE};
use super::fields::FieldType;
use super::kinds::EventKind;

/// Internal table of undecoded records read from a source.
pub const RAW_TABLE: &str = "_raw";
/// Lake folder of dead letters (`lake/_dead_letters/`); SQL name `dead_letters`.
pub const DEAD_LETTERS_TABLE: &str = "_dead_letters";

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn decimal_type() -> DataType {
    DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
}

/// Columns every event row starts with, before its kind's `data` fields.
pub fn common_fields() -> Vec<Field> {
    vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("tenant_id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("event_time", timestamp_type(), false),
        Field::new("ingest_time", timestamp_type(), false),
        Field::new("source_topic", DataType::Utf8, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
    ]
}

pub fn column_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::Str
        | FieldType::OptStr
        | FieldType::Enum(_)
        | FieldType::OptEnum(_)
        | FieldType::Raw => DataType::Utf8,
        FieldType::Count | FieldType::OptCount | FieldType::Int => DataType::Int64,
        FieldType::OptFloat => DataType::Float64,
        FieldType::Decimal | FieldType::OptDecimal => decimal_type(),
    }
}

/// The Arrow schema of a kind's table.
pub fn kind_schema(kind: EventKind) -> SchemaRef {
    static SCHEMAS: OnceLock<Vec<SchemaRef>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        EventKind::ALL
            .iter()
            .map(|k| {
                let mut fields = common_fields();
                fields.extend(
                    k.fields()
                        .iter()
                        .chain(k.derived_fields())
                        .map(|f| Field::new(f.name, column_type(f.ty), !f.ty.required())),
                );
                Arc::new(Schema::new(fields))
            })
            .collect()
    });
    all[kind as usize].clone()
}

/// Undecoded records as a source reads them.
pub fn raw_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("payload", DataType::Binary, false),
                Field::new("ingest_time", timestamp_type(), false),
                Field::new("source_topic", DataType::Utf8, false),
                Field::new("source_partition", DataType::Int32, false),
                Field::new("source_offset", DataType::Int64, false),
            ]))
        })
        .clone()
}

/// A record that could not be processed: raw bytes, where it came from, why.
pub fn dead_letter_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("tenant_id", DataType::Utf8, true),
                Field::new("event_id", DataType::Utf8, true),
                Field::new("stage", DataType::Utf8, false),
                Field::new("reason", DataType::Utf8, false),
                Field::new("raw", DataType::Binary, false),
                Field::new("ingest_time", timestamp_type(), false),
                Field::new("source_topic", DataType::Utf8, false),
                Field::new("source_partition", DataType::Int32, false),
                Field::new("source_offset", DataType::Int64, false),
            ]))
        })
        .clone()
}

/// Per-minute usage the window operator writes (additive rows).
pub const USAGE_TABLE: &str = "usage_1m";
/// Hourly and daily rollups of usage the window operator keeps at every
/// checkpoint (see [`rollup_schema`]).
pub const ROLLUP_HOUR_TABLE: &str = "rollup_1h";
pub const ROLLUP_DAY_TABLE: &str = "rollup_1d";
/// Hourly and daily sums of capsule runs, marketplace transactions and
/// billing events (see [`activity_schema`]).
pub const ACTIVITY_HOUR_TABLE: &str = "activity_1h";
pub const ACTIVITY_DAY_TABLE: &str = "activity_1d";
/// A family of rollups, finest first, with the seconds of their grain.
pub type RollupGrains = [(&'static str, i64); 2];
/// The usage rollups.
pub const USAGE_ROLLUPS: RollupGrains = [(ROLLUP_HOUR_TABLE, 3_600), (ROLLUP_DAY_TABLE, 86_400)];
/// The activity rollups.
pub const ACTIVITY_ROLLUPS: RollupGrains =
    [(ACTIVITY_HOUR_TABLE, 3_600), (ACTIVITY_DAY_TABLE, 86_400)];
/// Budget threshold crossings, one row per tenant × month × level.
pub const BUDGET_EVENTS_TABLE: &str = "budget_events";

/// Additive usage rows: tenant, window start, the text `keys`, the sums,
/// and the `row_id` that names the emission. Keys and sums added after the
/// first release are nullable (`nullable_keys`, the cache-write counts):
/// files written before them read as null there, which every reader sums
/// or groups as 0 and ''.
fn usage_fields(keys: &[&str], nullable_keys: &[&str]) -> Vec<Field> {
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    let mut fields = vec![
        Field::new("tenant_id", DataType::Utf8, false),
        Field::new("window_start", timestamp_type(), false),
    ];
    fields.extend(keys.iter().map(|k| Field::new(*k, DataType::Utf8, false)));
    fields.extend(
        nullable_keys
            .iter()
            .map(|k| Field::new(*k, DataType::Utf8, true)),
    );
    fields.extend([
        count("input_tokens"),
        count("output_tokens"),
        count("cached_input_tokens"),
        count("reasoning_tokens"),
        Field::new("cost_usd", decimal_type(), false),
        count("requests"),
        count("capsule_runs"),
        count("workflow_steps"),
        Field::new("cache_creation_input_tokens", DataType::Int64, true),
        Field::new("cache_creation_1h_input_tokens", DataType::Int64, true),
        Field::new("row_id", DataType::Utf8, false),
    ]);
    fields
}

/// Usage per tenant × model × capsule × window. Rows are additive: a late
/// event yields a further row for its window, so readers always sum.
pub fn usage_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(usage_fields(
                &["model", "provider", "capsule_id"],
                &[],
            )))
        })
        .clone()
}

/// Usage per tenant × model × provider × price × cost source and hour (or
/// day): what usage, ledgers, forecasts and KAMACHIQ spend read instead of
/// `usage_1m` or the conversations when their question allows it. There is
/// no capsule: tenant × model × hour stays small however many capsules run.
/// `price_id` is the price the accounting operator rated with ('' when none
/// or the producer sent a cost), `price_tier` the rate card of that price
/// (`standard`, `batch_above_200k`, …; null in files written before it); `cost_from` says whose cost `cost_usd` is:
/// `producer`, `rated` ('' for rows that are not conversations). Rows are
/// additive, like `usage_1m`'s.
pub fn rollup_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(usage_fields(
                &["model", "provider", "price_id", "cost_from"],
                &["price_tier"],
            )))
        })
        .clone()
}

/// Capsule runs, marketplace transactions and billing events per tenant ×
/// `source` (the table the rows came from) × the keys a ledger and the
/// marketplace group them by, per hour (or day): what those questions read
/// instead of the raw tables for whole hours and days. A key a source does
/// not have is ''; `events` counts rows; `cost_usd` sums capsule runs'
/// reported cost, `quantity` billing quantities, `amount_cents` marketplace
/// amounts (0 where a source has none). Rows are additive, like the usage
/// rollups'.
pub fn activity_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let text = |name: &str| Field::new(name, DataType::Utf8, false);
            let mut fields = vec![
                text("tenant_id"),
                Field::new("window_start", timestamp_type(), false),
            ];
            fields.extend(ACTIVITY_KEYS.iter().map(|k| text(k)));
            fields.extend([
                Field::new("events", DataType::Int64, false),
                Field::new("cost_usd", decimal_type(), false),
                Field::new("quantity", decimal_type(), false),
                Field::new("amount_cents", DataType::Int64, false),
                text("row_id"),
            ]);
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// The text keys of the activity rollups, after tenant and window.
pub const ACTIVITY_KEYS: [&str; 7] = [
    "source",
    "capsule_id",
    "tx_type",
    "author_id",
    "currency",
    "meter",
    "unit",
];

/// Whether `table` is one of the rollups ([`USAGE_ROLLUPS`],
/// [`ACTIVITY_ROLLUPS`]).
pub fn is_rollup(table: &str) -> bool {
    USAGE_ROLLUPS
        .iter()
        .chain(ACTIVITY_ROLLUPS.iter())
        .any(|(name, _)| *name == table)
}

/// A tenant's month-to-date spend crossing a budget threshold.
pub fn budget_events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("event_id", DataType::Utf8, false),
                Field::new("tenant_id", DataType::Utf8, false),
                Field::new("month", DataType::Utf8, false),
                Field::new("level", DataType::Utf8, false),
                Field::new("threshold_usd", decimal_type(), false),
                Field::new("budget_usd", decimal_type(), false),
                Field::new("spend_usd", decimal_type(), false),
                Field::new("event_time", timestamp_type(), false),
                Field::new("detected_at", timestamp_type(), false),
            ]))
        })
        .clone()
}

/// Schema of a table the engine writes, by table name.
pub fn table_schema(table: &str) -> Option<SchemaRef> {
    match table {
        DEAD_LETTERS_TABLE => Some(dead_letter_schema()),
        RAW_TABLE => Some(raw_schema()),
        USAGE_TABLE => Some(usage_schema()),
        ROLLUP_HOUR_TABLE | ROLLUP_DAY_TABLE => Some(rollup_schema()),
        ACTIVITY_HOUR_TABLE | ACTIVITY_DAY_TABLE => Some(activity_schema()),
        BUDGET_EVENTS_TABLE => Some(budget_events_schema()),
        other => EventKind::from_table(other).map(kind_schema),
    }
}

/// The column a table's rows are placed in time by (lake partitions, sort).
pub fn time_column(table: &str) -> &'static str {
    match table {
        DEAD_LETTERS_TABLE => "ingest_time",
        USAGE_TABLE => "window_start",
        table if is_rollup(table) => "window_start",
        _ => "event_time",
    }
}
