//! Ledger lines and totals from the store's sums and the price table.
//!
//! Rated LLM use is priced per line, like an invoice: the month's tokens
//! of one model × price × token type, times that price, rounded once (half
//! to even, to the nano-dollar). A cost the producer sent is billed as
//! sent. Marketplace amounts are whole cents.

use std::collections::BTreeMap;

use somaflow_operators::accounting::{Dimension, PriceTable, TokenUsage};

use super::{Ledger, LedgerLine, Payout, ReportedUsage, Totals};
use crate::money::usd;
use crate::store::SumRow;

/// The store's answers to each of [`super::queries`].
#[derive(Debug, Default)]
pub struct LedgerSums {
    pub rated: Vec<SumRow>,
    pub reported: Vec<SumRow>,
    pub capsule_runs: Vec<SumRow>,
    pub marketplace: Vec<SumRow>,
    pub billing: Vec<SumRow>,
}

const NANOS_PER_CENT: i128 = 10_000_000;

/// Every tenant's ledger for `period` (`YYYY-MM`).
pub fn build_all(period: &str, sums: &LedgerSums, prices: &PriceTable) -> BTreeMap<String, Ledger> {
    let mut ledgers: BTreeMap<String, Ledger> = BTreeMap::new();
    for row in &sums.rated {
        let g = |i: usize| row.group.get(i).map_or("", String::as_str);
        let (tenant, model, provider, price_id, tier) = (g(0), g(1), g(2), g(3), g(4));
        let ledger = ledger_of(&mut ledgers, period, tenant);
        let requests = sum_i64(row, Dimension::ALL.len());
        let Some(card) = prices.get(price_id).and_then(|p| p.card_labelled(tier)) else {
            ledger.unpriced_requests += requests;
            continue;
        };
        for (i, dimension) in Dimension::ALL.into_iter().enumerate() {
            let quantity = sum_i64(row, i);
            if quantity == 0 {
                continue;
            }
            let amount = card.cost(TokenUsage::only(dimension, quantity));
            ledger.lines.push(LedgerLine {
                tenant: tenant.to_string(),
                category: "llm",
                item: model.to_string(),
                provider: Some(provider.to_string()),
                price_id: Some(price_id.to_string()),
                price_tier: Some(card.label.clone()),
                meter: dimension.meter().to_string(),
                quantity: millions(quantity),
                unit: "1M tokens",
                unit_price_usd: Some(usd(card.rate(dimension))),
                amount_usd: usd(amount),
                amount_nanos: amount,
            });
        }
    }
    for row in &sums.reported {
        let [tenant, model, provider, _] = group4(row);
        let cost = row.sums.get(1).copied().unwrap_or(0);
        ledger_of(&mut ledgers, period, tenant)
            .lines
            .push(LedgerLine {
                tenant: tenant.to_string(),
                category: "llm_reported",
                item: model.to_string(),
                provider: Some(provider.to_string()),
                price_id: None,
                price_tier: None,
                meter: "requests".into(),
                quantity: sum_i64(row, 0).to_string(),
                unit: "request",
                unit_price_usd: None,
                amount_usd: usd(cost),
                amount_nanos: cost,
            });
    }
    for row in &sums.capsule_runs {
        let [tenant, capsule, _, _] = group4(row);
        let cost = row.sums.get(1).copied().unwrap_or(0);
        ledger_of(&mut ledgers, period, tenant)
            .lines
            .push(LedgerLine {
                tenant: tenant.to_string(),
                category: "capsule_runs",
                item: capsule.to_string(),
                provider: None,
                price_id: None,
                price_tier: None,
                meter: "runs".into(),
                quantity: sum_i64(row, 0).to_string(),
                unit: "run",
                unit_price_usd: None,
                amount_usd: usd(cost),
                amount_nanos: cost,
            });
    }
    // Per capsule × type, over authors; payouts listed apart.
    let mut market: BTreeMap<(String, String, String), (i64, i128)> = BTreeMap::new();
    let mut payouts: BTreeMap<(String, String, String), (i64, i128)> = BTreeMap::new();
    for row in &sums.marketplace {
        let g = |i: usize| row.group.get(i).map_or("", String::as_str);
        let (tenant, capsule, tx_type, author, currency) = (g(0), g(1), g(2), g(3), g(4));
        let (count, cents) = (sum_i64(row, 0), row.sums.get(1).copied().unwrap_or(0));
        let ledger = ledger_of(&mut ledgers, period, tenant);
        if currency != "USD" {
            ledger.excluded_non_usd_transactions += count;
            continue;
        }
        let nanos = cents * NANOS_PER_CENT;
        let (map, key) = if tx_type == "payout" {
            (&mut payouts, (tenant.into(), author.into(), capsule.into()))
        } else {
            (&mut market, (tenant.into(), capsule.into(), tx_type.into()))
        };
        let entry = map.entry(key).or_default();
        entry.0 += count;
        entry.1 += if tx_type == "refund" {
            -nanos.abs()
        } else {
            nanos
        };
    }
    for ((tenant, capsule, tx_type), (count, nanos)) in market {
        ledger_of(&mut ledgers, period, &tenant)
            .lines
            .push(LedgerLine {
                tenant: tenant.clone(),
                category: "marketplace",
                item: capsule,
                provider: None,
                price_id: None,
                price_tier: None,
                meter: tx_type,
                quantity: count.to_string(),
                unit: "transaction",
                unit_price_usd: None,
                amount_usd: usd(nanos),
                amount_nanos: nanos,
            });
    }
    for ((tenant, author, capsule), (count, nanos)) in payouts {
        ledger_of(&mut ledgers, period, &tenant)
            .payouts
            .push(Payout {
                author_id: author,
                capsule_id: capsule,
                payouts: count,
                amount_usd: usd(nanos),
            });
        ledger_of(&mut ledgers, period, &tenant).payout_nanos += nanos;
    }
    for row in &sums.billing {
        let [tenant, meter, unit, _] = group4(row);
        ledger_of(&mut ledgers, period, tenant)
            .reported_usage
            .push(ReportedUsage {
                meter: meter.to_string(),
                unit: unit.to_string(),
                quantity: usd(row.sums.get(1).copied().unwrap_or(0))
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string(),
                events: sum_i64(row, 0),
            });
    }
    for ledger in ledgers.values_mut() {
        ledger.lines.sort_by(|a, b| {
            (a.category, &a.item, &a.price_id, &a.price_tier, &a.meter).cmp(&(
                b.category,
                &b.item,
                &b.price_id,
                &b.price_tier,
                &b.meter,
            ))
        });
        ledger
            .reported_usage
            .sort_by(|a, b| (&a.meter, &a.unit).cmp(&(&b.meter, &b.unit)));
        ledger.totals = totals(&ledger.lines, ledger.payout_nanos);
    }
    ledgers
}

fn ledger_of<'a>(
    ledgers: &'a mut BTreeMap<String, Ledger>,
    period: &str,
    tenant: &str,
) -> &'a mut Ledger {
    ledgers
        .entry(tenant.to_string())
        .or_insert_with(|| empty(tenant, period))
}

/// A ledger with nothing in it: the answer for a tenant without usage.
pub fn empty(tenant: &str, period: &str) -> Ledger {
    Ledger {
        tenant: tenant.to_string(),
        period: period.to_string(),
        currency: "USD",
        lines: Vec::new(),
        payouts: Vec::new(),
        reported_usage: Vec::new(),
        totals: totals(&[], 0),
        unpriced_requests: 0,
        excluded_non_usd_transactions: 0,
        payout_nanos: 0,
    }
}

fn totals(lines: &[LedgerLine], payout_nanos: i128) -> Totals {
    let sum = |f: &dyn Fn(&LedgerLine) -> bool| -> i128 {
        lines.iter().filter(|l| f(l)).map(|l| l.amount_nanos).sum()
    };
    let llm = sum(&|l| l.category.starts_with("llm"));
    let capsule = sum(&|l| l.category == "capsule_runs");
    let purchases = sum(&|l| l.category == "marketplace" && l.meter != "refund");
    let refunds = -sum(&|l| l.category == "marketplace" && l.meter == "refund");
    let total = llm + capsule + purchases - refunds;
    Totals {
        llm_usd: usd(llm),
        capsule_runs_usd: usd(capsule),
        marketplace_purchases_usd: usd(purchases),
        marketplace_refunds_usd: usd(refunds),
        total_usd: usd(total),
        payouts_usd: usd(payout_nanos),
        total_nanos: total,
    }
}

fn group4(row: &SumRow) -> [&str; 4] {
    let g = |i: usize| row.group.get(i).map_or("", String::as_str);
    [g(0), g(1), g(2), g(3)]
}

fn sum_i64(row: &SumRow, i: usize) -> i64 {
    row.sums
        .get(i)
        .and_then(|v| i64::try_from(*v).ok())
        .unwrap_or(0)
}

/// Tokens as millions, exactly: 1234567 → "1.234567".
fn millions(tokens: i64) -> String {
    let sign = if tokens < 0 { "-" } else { "" };
    let abs = tokens.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: &str = r#"
[[prices]]
id = "p1"
provider = "openai"
model = "gpt-4o"
effective_from = "2024-01-01"
input = "2.50"
cached_input = "1.25"
output = "10.00"
reasoning = "12.00"
"#;

    fn row(group: &[&str], sums: &[i128]) -> SumRow {
        SumRow {
            bucket_secs: 0,
            group: group.iter().map(|s| s.to_string()).collect(),
            sums: sums.to_vec(),
        }
    }

    #[test]
    fn lines_price_each_token_type_once_and_totals_add_up() {
        let prices = PriceTable::parse(PRICES).unwrap();
        let sums = LedgerSums {
            // 1M fresh input, 200k cached, 300k plain output, 100k reasoning,
            // 7 requests; 1M batch input (half price: 1.25), 1 request.
            rated: vec![
                row(
                    &["a", "gpt-4o", "openai", "p1", "standard"],
                    &[1_000_000, 200_000, 0, 0, 300_000, 100_000, 7],
                ),
                row(
                    &["a", "gpt-4o", "openai", "p1", "batch"],
                    &[1_000_000, 0, 0, 0, 0, 0, 1],
                ),
                row(&["a", "mystery", "x", "", ""], &[5, 0, 0, 0, 5, 0, 2]),
            ],
            reported: vec![row(&["a", "gpt-4o", "openai"], &[3, 1_500_000_000])],
            capsule_runs: vec![row(&["a", "cap-1"], &[4, 40_000_000])],
            marketplace: vec![
                row(&["a", "cap-1", "purchase", "au", "USD"], &[2, 1_000]),
                row(&["a", "cap-1", "refund", "au", "USD"], &[1, 500]),
                row(&["a", "cap-1", "payout", "au", "USD"], &[1, 350]),
                row(&["a", "cap-2", "purchase", "au", "EUR"], &[1, 900]),
            ],
            billing: vec![row(&["a", "storage", "GB"], &[2, 1_500_000_000])],
        };
        let ledgers = build_all("2026-11", &sums, &prices);
        let l = &ledgers["a"];
        let amount = |meter: &str| {
            l.lines
                .iter()
                .find(|x| {
                    x.category == "llm"
                        && x.meter == meter
                        && x.price_tier.as_deref() == Some("standard")
                })
                .map(|x| x.amount_usd.clone())
        };
        assert_eq!(amount("input_tokens").as_deref(), Some("2.500000000"));
        assert_eq!(
            amount("cached_input_tokens").as_deref(),
            Some("0.250000000")
        );
        assert_eq!(amount("output_tokens").as_deref(), Some("3.000000000"));
        assert_eq!(amount("reasoning_tokens").as_deref(), Some("1.200000000"));
        assert_eq!(l.unpriced_requests, 2);
        assert_eq!(l.excluded_non_usd_transactions, 1);
        let batch = l
            .lines
            .iter()
            .find(|x| x.price_tier.as_deref() == Some("batch"));
        assert_eq!(batch.map(|x| x.amount_usd.as_str()), Some("1.250000000"));
        // 6.95 rated + 1.25 batch + 1.50 reported.
        assert_eq!(l.totals.llm_usd, "9.700000000");
        assert_eq!(l.totals.capsule_runs_usd, "0.040000000");
        assert_eq!(l.totals.marketplace_purchases_usd, "10.000000000");
        assert_eq!(l.totals.marketplace_refunds_usd, "5.000000000");
        assert_eq!(l.totals.payouts_usd, "3.500000000");
        assert_eq!(l.totals.total_usd, "14.740000000");
        assert_eq!(l.reported_usage[0].quantity, "1.5");
        let line = l
            .lines
            .iter()
            .find(|x| x.meter == "input_tokens" && x.price_tier.as_deref() == Some("standard"))
            .unwrap();
        assert_eq!(
            (line.quantity.as_str(), line.unit_price_usd.as_deref()),
            ("1.000000", Some("2.500000000"))
        );
    }
}
