//! What the demo prints at the end: the answers of the node's own REST API
//! on what it just processed (month-to-date spend per tenant, a ledger, a
//! budget, a forecast), each with the `curl` that asks it again.

use anyhow::Context;
use chrono::{Datelike, Duration, DurationRound, TimeZone, Utc};
use serde_json::Value;

use super::live::thousands;

/// The node's REST API, as a user would call it.
pub struct Api {
    base: String,
    client: reqwest::Client,
    /// The demo's admin token when auth is on.
    token: Option<String>,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            token,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self
            .request(reqwest::Method::GET, &url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(status.is_success(), "GET {url}: {status} {body}");
        Ok(body)
    }

    /// `tenant`'s month-to-date spend in USD (`GET /v1/budgets/{tenant}`).
    pub async fn spend(&self, tenant: &str) -> anyhow::Result<f64> {
        let budget = self.get(&format!("/v1/budgets/{tenant}")).await?;
        Ok(budget["spend_usd"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0))
    }

    /// Sets `tenant`'s monthly budget (`PUT /v1/budgets/{tenant}`).
    pub async fn put_budget(&self, tenant: &str, usd: &str) -> anyhow::Result<()> {
        let url = format!("{}/v1/budgets/{tenant}", self.base);
        let response = self
            .request(reqwest::Method::PUT, &url)
            .json(&serde_json::json!({ "monthly_budget_usd": usd }))
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "PUT {url}: {status} {}",
            response.text().await.unwrap_or_default()
        );
        Ok(())
    }

    fn curl(&self, path: &str) -> String {
        let auth = if self.token.is_some() {
            "-H \"Authorization: Bearer $TOKEN\" "
        } else {
            ""
        };
        format!("curl -s {auth}'{}{path}'", self.base)
    }
}

/// A USD decimal string, rounded to cents for reading.
fn usd(value: &Value) -> String {
    let amount: f64 = value.as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    format!(
        "${}.{:02}",
        thousands(amount.trunc()),
        (amount.fract() * 100.0).round() as u64 % 100
    )
}

/// Prints the closing answers.
pub async fn print(api: &Api, budget_tenant: &str) -> anyhow::Result<()> {
    let now = Utc::now();
    let month_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .context("the first of this month")?;
    let to = now.duration_trunc(Duration::minutes(1))? + Duration::minutes(1);
    let minute = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:00Z").to_string();

    let path = format!(
        "/v1/usage?meter=cost_usd&window=month&group_by=tenant&from={}&to={}",
        minute(month_start),
        minute(to)
    );
    let usage = api.get(&path).await?;
    let mut spend: Vec<(String, f64, Value)> = usage["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let tenant = r["group"]["tenant"].as_str().unwrap_or("").to_string();
            let usd: f64 = r["value"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            (tenant, usd, r["value"].clone())
        })
        .collect();
    spend.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("\nMonth-to-date spend, top tenants (usage_1m, rated from config/prices.toml):");
    println!("  {}", api.curl(&path));
    for (tenant, _, value) in spend.iter().take(5) {
        println!("  {tenant:<14} {:>14}", usd(value));
    }
    let Some((top, _, _)) = spend.first() else {
        println!("  (no spend yet: the windows close after pipeline.idle_timeout_ms)");
        return Ok(());
    };

    let path = format!("/v1/billing/ledgers?tenant={top}");
    let ledger = api.get(&path).await?;
    println!(
        "\nLedger of {top}, {} (its largest lines):",
        ledger["period"].as_str().unwrap_or("")
    );
    println!("  {}", api.curl(&path));
    let mut lines = ledger["lines"].as_array().cloned().unwrap_or_default();
    let amount = |l: &Value| -> f64 {
        l["amount_usd"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0.0)
    };
    lines.sort_by(|a, b| amount(b).total_cmp(&amount(a)));
    for line in lines.iter().take(6) {
        println!(
            "  {:<12} {:<22} {:<20} {:>14} {:>12}",
            line["category"].as_str().unwrap_or(""),
            line["item"].as_str().unwrap_or(""),
            line["meter"].as_str().unwrap_or(""),
            line["quantity"].as_str().unwrap_or(""),
            usd(&line["amount_usd"]),
        );
    }
    if lines.len() > 6 {
        println!("  … {} more lines", lines.len() - 6);
    }
    println!("  total owed {}", usd(&ledger["totals"]["total_usd"]));

    let path = format!("/v1/budgets/{budget_tenant}");
    let budget = api.get(&path).await?;
    println!("\nBudget of {budget_tenant}:");
    println!("  {}", api.curl(&path));
    println!(
        "  {} of {} this month ({}%): {}",
        usd(&budget["spend_usd"]),
        usd(&budget["budget_usd"]),
        budget["percent_used"],
        budget["status"].as_str().unwrap_or(""),
    );

    let path = format!("/v1/forecasts?tenant={top}&meter=cost_usd&horizon=24h");
    let forecast = api.get(&path).await?;
    let hourly: Vec<f64> = forecast["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["value"].as_f64())
        .collect();
    let (low, high) = hourly
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    println!("\nForecast of {top}'s spend, next 24 hours:");
    println!("  {}", api.curl(&path));
    if hourly.is_empty() {
        println!("  (no forecast: {forecast})");
    } else {
        println!(
            "  ${:.2} in all, ${low:.2} to ${high:.2} an hour; model {}, backtest error (MAPE) {:.1}% on {} hours of history",
            hourly.iter().sum::<f64>(),
            forecast["model"].as_str().unwrap_or("?"),
            forecast["backtest"]["mape_percent"]
                .as_f64()
                .unwrap_or(f64::NAN),
            forecast["history_hours"],
        );
    }
    Ok(())
}
