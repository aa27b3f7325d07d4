use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    new_null_array,
};
use datafusion::arrow::datatypes::Int64Type;
use somaflow_pipeline::events::schema::{
    ROLLUP_DAY_TABLE, ROLLUP_HOUR_TABLE, USAGE_TABLE, kind_schema,
};

use super::*;

const MIN: i64 = 60_000_000;

/// Conversations of tenant `t` in partition `p`, one per (event time, input tokens).
fn conversations(p: i32, rows: &[(i64, i64)]) -> Batch {
    let schema = kind_schema(EventKind::Conversation);
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.name().as_str() {
                "event_time" => Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                // Not nullable in the schema; its value does not matter here.
                "ingest_time" => {
                    Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC"))
                }
                "input_tokens" => Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
                "source_partition" => Arc::new(Int32Array::from(vec![p; n])),
                "rated_cost_usd" => crate::columns::decimal_array(
                    rows.iter().map(|r| Some(i128::from(r.1) * 1000)).collect(),
                )
                .unwrap(),
                "capsule_id" | "cost_usd" => new_null_array(f.data_type(), n),
                name if f.data_type() == &datafusion::arrow::datatypes::DataType::Utf8 => {
                    Arc::new(StringArray::from(vec![
                        if name == "tenant_id" {
                            "t1"
                        } else {
                            "x"
                        };
                        n
                    ]))
                }
                _ if f.data_type() == &datafusion::arrow::datatypes::DataType::Int64 => {
                    Arc::new(Int64Array::from(vec![0; n]))
                }
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                // Other required columns (times, partition): zeros of their type.
                _ => datafusion::arrow::compute::cast(&Int64Array::from(vec![0; n]), f.data_type())
                    .unwrap(),
            }
        })
        .collect();
    Batch::new(
        "conversations",
        RecordBatch::try_new(schema, columns).unwrap(),
    )
}

async fn usage_at(op: &mut UsageWindow, watermark: i64) -> Vec<(i64, i64, i64)> {
    let mut out = Emitter::default();
    op.on_watermark(watermark, &mut out).await.unwrap();
    usage_rows(&mut out)
}

/// (window start, input tokens, requests) of the usage rows `out` holds.
fn usage_rows(out: &mut Emitter) -> Vec<(i64, i64, i64)> {
    table_rows(out, USAGE_TABLE)
}

/// (window start, input tokens, requests) of the rows of `table` `out` holds.
fn table_rows(out: &mut Emitter, table: &str) -> Vec<(i64, i64, i64)> {
    out.take()
        .into_iter()
        .filter(|(o, b)| *o == USAGE && b.table == table)
        .flat_map(|(_, b)| {
            let start = b
                .rows
                .column_by_name("window_start")
                .unwrap()
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                .clone();
            let input = b
                .rows
                .column_by_name("input_tokens")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            let requests = b
                .rows
                .column_by_name("requests")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            (0..start.len())
                .map(move |i| (start.value(i), input.value(i), requests.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn windows_close_at_the_watermark_and_late_rows_become_corrections() {
    let mut op = UsageWindow::new("window", 60);
    let mut out = Emitter::default();
    op.process(
        conversations(0, &[(10, 5), (MIN + 1, 7), (20, 1)]),
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(out.take().len(), 1, "events pass through");
    assert!(
        usage_at(&mut op, MIN - 1).await.is_empty(),
        "window still open"
    );
    assert_eq!(usage_at(&mut op, MIN).await, [(0, 6, 2)]);
    // A late row for the closed window: its correction goes out with the
    // batch, even if the watermark never moves again.
    op.process(conversations(0, &[(30, 100)]), &mut out)
        .await
        .unwrap();
    assert_eq!(usage_rows(&mut out), [(0, 100, 1)]);
    assert!(usage_at(&mut op, MIN + 10).await.is_empty(), "emitted once");
    assert_eq!(usage_at(&mut op, 2 * MIN).await, [(MIN, 7, 1)]);
}

#[tokio::test]
async fn state_survives_snapshot_and_restore_per_shard() {
    let mut op = UsageWindow::new("window", 60);
    let mut out = Emitter::default();
    op.process(conversations(0, &[(10, 5)]), &mut out)
        .await
        .unwrap();
    op.process(conversations(1, &[(11, 6)]), &mut out)
        .await
        .unwrap();
    let snap = op.snapshot().unwrap();
    assert_eq!(snap.len(), 2);
    assert!(op.snapshot().unwrap().is_empty(), "nothing changed since");
    let mut restored = UsageWindow::new("window", 60);
    for (shard, state) in &snap {
        let StateBlob::Whole(state) = state else {
            panic!("windows are written whole")
        };
        restored.restore(shard, state).unwrap();
    }
    let mut rows = usage_at(&mut restored, MIN).await;
    rows.sort();
    assert_eq!(rows, [(0, 5, 1), (0, 6, 1)], "one row per shard, additive");
    assert!(restored.restore("x@0", b"not json").is_err());
}

#[tokio::test]
async fn a_checkpoint_sends_the_open_windows_so_far_and_the_close_sends_the_rest() {
    let mut op = UsageWindow::new("window", 60);
    let mut out = Emitter::default();
    op.process(conversations(0, &[(10, 5), (MIN + 1, 7)]), &mut out)
        .await
        .unwrap();
    out.take();
    op.on_barrier(&mut out).await.unwrap();
    let mut partial = usage_rows(&mut out);
    partial.sort();
    assert_eq!(
        partial,
        [(0, 5, 1), (MIN, 7, 1)],
        "both open windows, so far"
    );
    op.on_barrier(&mut out).await.unwrap();
    assert!(usage_rows(&mut out).is_empty(), "nothing new, nothing sent");

    // More rows of the first window: the close sends only what came since.
    op.process(conversations(0, &[(20, 3), (30, 4)]), &mut out)
        .await
        .unwrap();
    out.take();
    assert_eq!(usage_at(&mut op, MIN).await, [(0, 7, 2)]);
    // Summed, a window's rows are what it saw: 5 + 3 + 4 tokens in 3 requests.
    assert!(
        usage_at(&mut op, 2 * MIN).await.is_empty(),
        "sent at the checkpoint"
    );
}

/// The rows of `table` among emitted `batches`, sorted.
fn rows_in(batches: &[(&'static str, Batch)], table: &str) -> Vec<(i64, i64, i64)> {
    let mut out = Emitter::default();
    for (output, batch) in batches {
        out.emit(output, batch.clone());
    }
    let mut rows = table_rows(&mut out, table);
    rows.sort();
    rows
}

#[tokio::test]
async fn rollups_hold_what_usage_holds_per_hour_and_day_sent_at_every_barrier() {
    const HOUR: i64 = 60 * MIN;
    let mut op = UsageWindow::new("window", 60);
    let mut out = Emitter::default();
    op.process(
        conversations(0, &[(10, 5), (MIN + 1, 7), (HOUR + 5, 2)]),
        &mut out,
    )
    .await
    .unwrap();
    out.take();
    op.on_barrier(&mut out).await.unwrap();
    let batches = out.take();
    assert_eq!(
        rows_in(&batches, ROLLUP_HOUR_TABLE),
        [(0, 12, 2), (HOUR, 2, 1)]
    );
    assert_eq!(rows_in(&batches, ROLLUP_DAY_TABLE), [(0, 14, 3)]);
    op.on_barrier(&mut out).await.unwrap();
    assert!(out.take().is_empty(), "nothing new, nothing sent");

    // A late row (its minute closed) is one more row of its hour and day.
    op.on_watermark(2 * HOUR, &mut out).await.unwrap();
    op.process(conversations(0, &[(20, 100)]), &mut out)
        .await
        .unwrap();
    out.take();
    let snap = op.snapshot().unwrap();
    op.on_barrier(&mut out).await.unwrap();
    let batches = out.take();
    assert_eq!(rows_in(&batches, ROLLUP_HOUR_TABLE), [(0, 100, 1)]);

    // A replay from the state before that barrier sends the same rows, ids included.
    let mut replayed = UsageWindow::new("window", 60);
    for (shard, state) in &snap {
        let StateBlob::Whole(state) = state else {
            panic!("windows are written whole")
        };
        replayed.restore(shard, state).unwrap();
    }
    let mut again = Emitter::default();
    replayed.on_barrier(&mut again).await.unwrap();
    let ids = |batches: &[(&'static str, Batch)]| -> Vec<String> {
        batches
            .iter()
            .filter(|(_, b)| b.table != USAGE_TABLE)
            .flat_map(|(_, b)| {
                let ids = b.rows.column_by_name("row_id").unwrap().as_string::<i32>();
                (0..ids.len())
                    .map(|i| ids.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(ids(&again.take()), ids(&batches));
}

/// Rows of `kind` in partition 0 at `times`: `column` gives a column's
/// values where it answers, else tenant `t1`, text `x`, zeros and nulls.
fn rows_of(kind: EventKind, times: &[i64], column: impl Fn(&str) -> Option<ArrayRef>) -> Batch {
    use datafusion::arrow::datatypes::DataType;
    let schema = kind_schema(kind);
    let n = times.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            if let Some(values) = column(f.name()) {
                return values;
            }
            match (f.name().as_str(), f.data_type()) {
                ("event_time", _) => {
                    Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone("UTC"))
                }
                ("source_partition", _) => Arc::new(Int32Array::from(vec![0; n])),
                ("tenant_id", _) => Arc::new(StringArray::from(vec!["t1"; n])),
                (_, DataType::Utf8) => Arc::new(StringArray::from(vec!["x"; n])),
                (_, DataType::Int64) => Arc::new(Int64Array::from(vec![0; n])),
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                _ => datafusion::arrow::compute::cast(&Int64Array::from(vec![0; n]), f.data_type())
                    .unwrap(),
            }
        })
        .collect();
    Batch::new(kind.table(), RecordBatch::try_new(schema, columns).unwrap())
}

/// (window start, source, capsule, tx type, meter, events, cost, quantity,
/// cents) of the activity rows of `table` among `batches`, sorted.
type ActivityRow = (i64, String, String, String, String, i64, i128, i128, i64);

fn activity_rows(batches: &[(&'static str, Batch)], table: &str) -> Vec<ActivityRow> {
    use datafusion::arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};
    let mut rows = Vec::new();
    for (_, batch) in batches.iter().filter(|(_, b)| b.table == table) {
        let r = &batch.rows;
        let text = |name: &str| r.column_by_name(name).unwrap().as_string::<i32>().clone();
        let int = |name: &str| {
            r.column_by_name(name)
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone()
        };
        let dec = |name: &str| {
            r.column_by_name(name)
                .unwrap()
                .as_primitive::<Decimal128Type>()
                .clone()
        };
        let start = r
            .column_by_name("window_start")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        let (source, capsule, tx, meter) = (
            text("source"),
            text("capsule_id"),
            text("tx_type"),
            text("meter"),
        );
        let (events, cents) = (int("events"), int("amount_cents"));
        let (cost, quantity) = (dec("cost_usd"), dec("quantity"));
        for i in 0..r.num_rows() {
            rows.push((
                start.value(i),
                source.value(i).to_string(),
                capsule.value(i).to_string(),
                tx.value(i).to_string(),
                meter.value(i).to_string(),
                events.value(i),
                cost.value(i),
                quantity.value(i),
                cents.value(i),
            ));
        }
    }
    rows.sort();
    rows
}

#[tokio::test]
async fn activity_rollups_sum_capsule_runs_marketplace_and_billing_per_hour_and_day() {
    use somaflow_pipeline::events::schema::{ACTIVITY_DAY_TABLE, ACTIVITY_HOUR_TABLE};
    const HOUR: i64 = 60 * MIN;
    const NANO: i128 = 1_000_000_000;
    let mut op = UsageWindow::new("window", 60);
    let mut out = Emitter::default();
    let texts = |values: &[&str]| -> ArrayRef { Arc::new(StringArray::from(values.to_vec())) };
    let runs = rows_of(EventKind::CapsuleRun, &[10, 20, HOUR + 1], |c| match c {
        "capsule_id" => Some(texts(&["c1", "c1", "c1"])),
        "cost_usd" => {
            Some(crate::columns::decimal_array(vec![Some(3 * NANO / 2), None, Some(NANO)]).unwrap())
        }
        _ => None,
    });
    let sales = rows_of(EventKind::MarketplaceTx, &[30, 40], |c| match c {
        "capsule_id" => Some(texts(&["c1", "c1"])),
        "tx_type" => Some(texts(&["purchase", "purchase"])),
        "currency" => Some(texts(&["USD", "USD"])),
        "amount_cents" => Some(Arc::new(Int64Array::from(vec![100, 250]))),
        _ => None,
    });
    let billing = rows_of(EventKind::Billing, &[50], |c| match c {
        "meter" => Some(texts(&["gpu"])),
        "quantity" => Some(crate::columns::decimal_array(vec![Some(5 * NANO / 2)]).unwrap()),
        _ => None,
    });
    for batch in [runs, sales, billing] {
        op.process(batch, &mut out).await.unwrap();
    }
    let passed = out.take();
    assert_eq!(passed.len(), 3, "every batch passes through");
    op.on_barrier(&mut out).await.unwrap();
    let batches = out.take();
    let row = |start, source: &str, capsule: &str, tx: &str, meter: &str, sums| {
        let (events, cost, quantity, cents) = sums;
        let s = |v: &str| v.to_string();
        (
            start,
            s(source),
            s(capsule),
            s(tx),
            s(meter),
            events,
            cost,
            quantity,
            cents,
        )
    };
    // A run without a cost counts as a run and adds nothing to the cost.
    let runs_0 = row(
        0,
        "capsule_executions",
        "c1",
        "",
        "",
        (2, 3 * NANO / 2, 0, 0),
    );
    let runs_1 = row(HOUR, "capsule_executions", "c1", "", "", (1, NANO, 0, 0));
    let sales_0 = row(
        0,
        "marketplace_transactions",
        "c1",
        "purchase",
        "",
        (2, 0, 0, 350),
    );
    let billing_0 = row(0, "billing_events", "", "", "gpu", (1, 0, 5 * NANO / 2, 0));
    let mut hours = vec![billing_0.clone(), runs_0.clone(), runs_1, sales_0.clone()];
    hours.sort();
    assert_eq!(activity_rows(&batches, ACTIVITY_HOUR_TABLE), hours);
    let runs_day = row(
        0,
        "capsule_executions",
        "c1",
        "",
        "",
        (3, 5 * NANO / 2, 0, 0),
    );
    let mut days = vec![billing_0, runs_day, sales_0];
    days.sort();
    assert_eq!(activity_rows(&batches, ACTIVITY_DAY_TABLE), days);
    // Only capsule runs are usage; marketplace and billing are not.
    let usage: i64 = batches
        .iter()
        .filter(|(_, b)| b.table == USAGE_TABLE)
        .map(|(_, b)| {
            let runs = b.rows.column_by_name("capsule_runs").unwrap();
            runs.as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .sum::<i64>()
        })
        .sum();
    assert_eq!(usage, 3);
    op.on_barrier(&mut out).await.unwrap();
    assert!(out.take().is_empty(), "nothing new, nothing sent");
}
