//! somaflow's forecasts on a given hourly series (`somaflow bench-forecast
//! --series FILE`), for scripts/bench-forecast-real.sh to set beside
//! statsmodels on the same origins: from each of `origins` origins, one a
//! day and the last 24 hours before the end, every model sees the `window`
//! hours before it and forecasts 24. The result is JSON on stdout: the mean
//! MAPE of the forecast the backtest chose at each origin, how often each
//! was chosen (and which candidate led it), and each model's own mean MAPE.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use somaflow_sql::forecast::{COUNT_MIN_SIGMA, DAY, Model, select};

const HORIZON: usize = DAY;

#[derive(Debug, Serialize)]
pub struct SeriesReport {
    pub hours: usize,
    pub origins: usize,
    pub window: usize,
    pub chosen_mape_percent: f64,
    /// How often each forecast was chosen (`ensemble`, or a candidate).
    pub picked: BTreeMap<String, usize>,
    /// How often each candidate had the largest weight.
    pub led_by: BTreeMap<String, usize>,
    /// Each model's mean MAPE over the origins it could forecast from.
    pub models: BTreeMap<&'static str, f64>,
}

/// MAPE over the hours with an actual above 0, in percent (as the backtest).
fn mape(actual: &[f64], forecast: &[f64]) -> f64 {
    let (sum, n) = actual
        .iter()
        .zip(forecast)
        .filter(|(a, _)| **a > 0.0)
        .fold((0.0, 0usize), |(s, n), (a, f)| {
            (s + (a - f.max(0.0)).abs() / a, n + 1)
        });
    if n == 0 { 0.0 } else { 100.0 * sum / n as f64 }
}

pub fn run(series: &Path, window: usize, origins: usize) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(series)
        .with_context(|| format!("cannot read {}", series.display()))?;
    let mut y = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: f64 = line
            .trim()
            .parse()
            .with_context(|| format!("{}:{}: not a number", series.display(), i + 1))?;
        y.push(v);
    }
    let starts: Vec<usize> = (0..origins)
        .filter_map(|k| y.len().checked_sub(HORIZON + k * DAY))
        .filter(|o| *o >= window)
        .collect();
    if starts.len() < origins {
        bail!(
            "{} hours are too few for {origins} origins with a {window}-hour window",
            y.len()
        );
    }
    let mut chosen = Vec::new();
    let mut picked: BTreeMap<String, usize> = BTreeMap::new();
    let mut led_by: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_model: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for &o in &starts {
        let history = &y[o - window..o];
        let actual = &y[o..o + HORIZON];
        let f = select::forecast(history, HORIZON, COUNT_MIN_SIGMA);
        let values: Vec<f64> = f.points.iter().map(|p| p.value).collect();
        chosen.push(mape(actual, &values));
        if let Some(lead) = f
            .members
            .iter()
            .max_by(|a, b| a.weight.total_cmp(&b.weight))
        {
            *led_by.entry(lead.model.clone()).or_default() += 1;
        }
        *picked.entry(f.model).or_default() += 1;
        for model in Model::ALL {
            if history.len() >= model.min_history() {
                let values = model.forecast(history, HORIZON);
                per_model
                    .entry(model.name())
                    .or_default()
                    .push(mape(actual, &values));
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let report = SeriesReport {
        hours: y.len(),
        origins: starts.len(),
        window,
        chosen_mape_percent: mean(&chosen),
        picked,
        led_by,
        models: per_model.iter().map(|(k, v)| (*k, mean(v))).collect(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
