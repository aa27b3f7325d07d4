//! `GET /v1/billing/ledgers?tenant=&period=YYYY-MM`: a tenant's ledger
//! (see [`somaflow_sql::ledger`]), and `GET /v1/billing/ledgers/export?period=
//! &format=csv|parquet`: every visible tenant's lines as a file.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::arrow::array::{ArrayRef, Decimal128Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use serde::Deserialize;
use somaflow_operators::accounting::PriceTable;
use somaflow_sql::ledger::build::empty;
use somaflow_sql::ledger::{LedgerLine, month_ledgers};
use somaflow_sql::{checks, contract};
use utoipa::openapi::path::{Parameter, ParameterIn};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::month_or_current;
use crate::routes::forecasts::SOURCE;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LedgerParams {
    pub tenant: Option<String>,
    pub period: Option<String>,
    pub format: Option<String>,
    pub source: Option<String>,
}

impl utoipa::IntoParams for LedgerParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use contract::query;
        vec![
            query(
                "tenant",
                false,
                "The tenant; a tenant's token reads its own. Required for a token bound to none \
                 on /v1/billing/ledgers; the export without it holds every tenant",
                contract::id(),
            ),
            query(
                "period",
                false,
                "The month (UTC); default the current month",
                contract::month(),
            ),
            query(
                "format",
                false,
                "The export's file: csv (default) or parquet",
                export_format(),
            ),
            query("source", false, SOURCE, contract::source()),
        ]
    }
}

/// The export's file formats.
const FORMATS: [&str; 2] = ["csv", "parquet"];

fn export_format() -> utoipa::openapi::schema::Object {
    contract::enum_schema(FORMATS)
}

fn params(p: Result<Query<LedgerParams>, QueryRejection>) -> Result<LedgerParams, ApiError> {
    p.map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// `[first instant, next month's first instant)` of `YYYY-MM`.
fn month_range(period: Option<&str>) -> Result<(String, DateTime<Utc>, DateTime<Utc>), ApiError> {
    let period = month_or_current(period)?;
    let bad = || ApiError::bad_request("invalid_month", format!("{period} is not a month"));
    let first = checks::parse_month(&period)?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(bad)?;
    let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(bad);
    Ok((period.clone(), at(first)?, at(next)?))
}

fn prices(state: &AppState) -> Result<Arc<PriceTable>, ApiError> {
    state.prices.clone().ok_or_else(|| ApiError::NotConfigured {
        code: "prices_not_configured",
        message: "this node has no price table: set accounting.prices to the prices file \
                  (config/prices.toml)"
            .into(),
    })
}

#[utoipa::path(get, path = "/v1/billing/ledgers", tag = "billing",
    params(LedgerParams),
    responses((status = 200, description = "The tenant's ledger for the period", body = somaflow_sql::ledger::Ledger),
        (status = 501, description = "The node has no price table (accounting.prices)", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["billing:read"])))]
pub async fn get_ledger(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<LedgerParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Scope::BillingRead)?;
    let p = params(query)?;
    let tenant = caller.one_tenant(p.tenant.as_deref())?;
    let (period, from, to) = month_range(p.period.as_deref())?;
    let prices = prices(&state)?;
    let store = state.stores.pick(p.source.as_deref())?;
    let mut all = month_ledgers(&store, &prices, &period, from, to, Some(&tenant)).await?;
    let ledger = all
        .remove(&tenant)
        .unwrap_or_else(|| empty(&tenant, &period));
    let mut body = serde_json::to_value(&ledger).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["source"] = serde_json::json!(store.name());
    Ok(Json(body))
}

#[utoipa::path(get, path = "/v1/billing/ledgers/export", tag = "billing",
    params(LedgerParams),
    responses((status = 200, description = "Every visible tenant's ledger lines as CSV or Parquet (money as Decimal(38, 9)) by format=",
            content((String = "text/csv"), (Vec<u8> = "application/vnd.apache.parquet"))),
        (status = 501, description = "The node has no price table (accounting.prices)", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["billing:admin"])))]
pub async fn export_ledgers(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<LedgerParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::BillingAdmin)?;
    let p = params(query)?;
    let tenant = caller.tenant(p.tenant.as_deref())?;
    let (period, from, to) = month_range(p.period.as_deref())?;
    let prices = prices(&state)?;
    let store = state.stores.pick(p.source.as_deref())?;
    let all = month_ledgers(&store, &prices, &period, from, to, tenant.as_deref()).await?;
    let lines: Vec<&LedgerLine> = all.values().flat_map(|l| &l.lines).collect();
    let name = format!("ledger-{period}");
    match p.format.as_deref().unwrap_or("csv") {
        "csv" => Ok(file(
            &format!("{name}.csv"),
            "text/csv; charset=utf-8",
            to_csv(&lines).into_bytes(),
        )),
        "parquet" => Ok(file(
            &format!("{name}.parquet"),
            "application/vnd.apache.parquet",
            to_parquet(&lines)?,
        )),
        other => Err(ApiError::bad_request(
            "invalid_format",
            format!("unknown format {other:?}; use csv or parquet"),
        )),
    }
}

fn file(name: &str, content_type: &'static str, body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

const COLUMNS: [&str; 11] = [
    "tenant",
    "category",
    "item",
    "provider",
    "price_id",
    "price_tier",
    "meter",
    "quantity",
    "unit",
    "unit_price_usd",
    "amount_usd",
];

/// The text columns of [`COLUMNS`], in order.
const TEXT_COLUMNS: usize = 9;

fn text_fields(l: &LedgerLine) -> [String; TEXT_COLUMNS] {
    [
        l.tenant.clone(),
        l.category.to_string(),
        l.item.clone(),
        l.provider.clone().unwrap_or_default(),
        l.price_id.clone().unwrap_or_default(),
        l.price_tier.clone().unwrap_or_default(),
        l.meter.clone(),
        l.quantity.clone(),
        l.unit.to_string(),
    ]
}

fn to_csv(lines: &[&LedgerLine]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for l in lines {
        let mut fields: Vec<String> = text_fields(l).into_iter().map(|f| csv_field(&f)).collect();
        fields.push(l.unit_price_usd.clone().unwrap_or_default());
        fields.push(l.amount_usd.clone());
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Text columns, and the money as Decimal(38, 9) so readers sum it exactly.
fn to_parquet(lines: &[&LedgerLine]) -> Result<Vec<u8>, ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(format!("writing parquet: {e}"));
    let money = DataType::Decimal128(38, 9);
    let mut fields: Vec<Field> = COLUMNS[..TEXT_COLUMNS]
        .iter()
        .map(|c| Field::new(*c, DataType::Utf8, false))
        .collect();
    fields.push(Field::new("unit_price_usd", money.clone(), true));
    fields.push(Field::new("amount_usd", money, false));
    let schema = Arc::new(Schema::new(fields));
    let texts: Vec<[String; TEXT_COLUMNS]> = lines.iter().map(|l| text_fields(l)).collect();
    let mut columns: Vec<ArrayRef> = (0..TEXT_COLUMNS)
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                texts.iter().map(|t| t[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    let nanos = |s: &str| somaflow_pipeline::events::decimal::parse_decimal(s).ok();
    let unit_prices: Decimal128Array = lines
        .iter()
        .map(|l| l.unit_price_usd.as_deref().and_then(nanos))
        .collect();
    let amounts: Decimal128Array = lines.iter().map(|l| Some(l.amount_nanos)).collect();
    columns.push(Arc::new(
        unit_prices
            .with_precision_and_scale(38, 9)
            .map_err(|e| internal(&e))?,
    ));
    columns.push(Arc::new(
        amounts
            .with_precision_and_scale(38, 9)
            .map_err(|e| internal(&e))?,
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| internal(&e))?;
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).map_err(|e| internal(&e))?;
    writer.write(&batch).map_err(|e| internal(&e))?;
    writer.close().map_err(|e| internal(&e))?;
    Ok(out)
}
