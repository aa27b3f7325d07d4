//! The forecast models on a tenant's hourly usage (`usage_1m`, from
//! either store): one tenant's forecast, and anomaly scans over tenants.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{COUNT_MIN_SIGMA, Flag, Forecast, forecast, scan};
use crate::error::StoreError;
use crate::store::{Store, SumRow};
use crate::usage::plan::hourly_by_tenant;
use crate::usage::request::Meter;

/// History a forecast or scan is fitted on (the backtest needs two weeks
/// for the weekly models; four give the weekly median three to choose from).
pub const HISTORY_DAYS: i64 = 28;

/// A tenant's forecast and the history it was fitted on.
pub struct TenantForecast {
    pub forecast: Forecast,
    /// Hours of history from the tenant's first hour with usage.
    pub history_hours: usize,
}

/// `tenant`'s `meter` over the `horizon` hours after `origin`, fitted on
/// the [`HISTORY_DAYS`] before it.
pub async fn forecast_tenant(
    store: &Store<'_>,
    tenant: &str,
    meter: Meter,
    origin: DateTime<Utc>,
    horizon: usize,
) -> Result<TenantForecast, StoreError> {
    let from = origin - Duration::days(HISTORY_DAYS);
    let rows = store
        .sums(&hourly_by_tenant(meter, from, origin), Some(tenant))
        .await?;
    let hours = (HISTORY_DAYS * 24) as usize;
    let series = series_by_tenant(&rows, from, hours, meter == Meter::CostUsd);
    let history: &[f64] = match series.get(tenant) {
        Some((first, values)) if *first < hours => &values[*first..],
        _ => &[],
    };
    Ok(TenantForecast {
        forecast: forecast(history, horizon, min_sigma(meter)),
        history_hours: history.len(),
    })
}

/// One anomalous hour of one tenant's meter.
pub struct TenantFlag {
    pub tenant: String,
    pub meter: Meter,
    pub window_start: DateTime<Utc>,
    pub flag: Flag,
}

/// Every hour of `[from, to)` outside its expected range, for each meter
/// and each tenant `scope` may see (`None`: all) and `wanted` names
/// (`None`: all), each fitted on its [`HISTORY_DAYS`] before `from`.
/// Returns the flags and how many series were scanned.
pub async fn scan_tenants(
    store: &Store<'_>,
    scope: Option<&str>,
    wanted: Option<&[String]>,
    meters: &[Meter],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    min_change_percent: f64,
) -> Result<(Vec<TenantFlag>, usize), StoreError> {
    let scan_hours = usize::try_from((to - from).num_hours()).unwrap_or(0);
    let history_from = from - Duration::days(HISTORY_DAYS);
    let history_hours = (HISTORY_DAYS * 24) as usize;
    let total = history_hours + scan_hours;
    let mut flags = Vec::new();
    let mut scanned = 0usize;
    for meter in meters {
        let rows = store
            .sums(&hourly_by_tenant(*meter, history_from, to), scope)
            .await?;
        let series = series_by_tenant(&rows, history_from, total, *meter == Meter::CostUsd);
        for (tenant, (first, values)) in &series {
            if wanted.is_some_and(|w| !w.contains(tenant)) {
                continue;
            }
            scanned += 1;
            let history = if *first < history_hours {
                &values[*first..history_hours]
            } else {
                &[][..]
            };
            for flag in scan(
                history,
                &values[history_hours..],
                min_change_percent,
                min_sigma(*meter),
            ) {
                flags.push(TenantFlag {
                    tenant: tenant.clone(),
                    meter: *meter,
                    window_start: from + Duration::hours(flag.index as i64),
                    flag,
                });
            }
        }
    }
    Ok((flags, scanned))
}

/// Counts get the Poisson floor on their spread; money does not.
fn min_sigma(meter: Meter) -> f64 {
    if meter == Meter::CostUsd {
        0.0
    } else {
        COUNT_MIN_SIGMA
    }
}

/// Each tenant's hourly values over `hours` hours from `from`; the series
/// starts at the tenant's first hour with usage (a newer tenant has a
/// shorter history), zero-filled after it.
fn series_by_tenant(
    rows: &[SumRow],
    from: DateTime<Utc>,
    hours: usize,
    money: bool,
) -> BTreeMap<String, (usize, Vec<f64>)> {
    let mut out: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for row in rows {
        let Some(tenant) = row.group.first() else {
            continue;
        };
        let offset = (row.bucket_secs - from.timestamp()) / 3_600;
        let Ok(i) = usize::try_from(offset) else {
            continue;
        };
        if i >= hours {
            continue;
        }
        let raw = row.sums.first().copied().unwrap_or(0);
        let value = if money { raw as f64 / 1e9 } else { raw as f64 };
        let entry = out
            .entry(tenant.clone())
            .or_insert_with(|| (usize::MAX, vec![0.0; hours]));
        entry.1[i] += value;
        if value != 0.0 {
            entry.0 = entry.0.min(i);
        }
    }
    out
}
