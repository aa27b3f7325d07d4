//! The `accounting` operator: rates every conversation row with the price
//! table, filling `rated_cost_usd` (exact nano-USD), `price_id` and
//! `price_tier` (the rate card: service tier and prompt length). A cost
//! the producer sent stays in `cost_usd` beside ours and wins for billing
//! (see [`billed_cost`]). A model without a price leaves both null and is
//! counted, so a missing price is visible instead of billed as zero.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, Decimal128Array, StringArray};
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::metrics::{NodeLabels, metrics, outcome};
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator};

use super::prices::in_effect;
use super::{Price, PriceTable, ServiceTier, TokenUsage};
use crate::columns::{Columns, count_or_zero, decimal_array, opt_str, replace_columns};

pub struct TokenAccounting {
    node: String,
    prices: PriceTable,
}

impl TokenAccounting {
    pub fn new(node: &str, prices: PriceTable) -> Self {
        // Every outcome's series exists from the start (0, not absent).
        for o in ["rated", "unpriced", "producer_cost"] {
            let _ = metrics().rows_rated.get_or_create(&outcome(node, o));
        }
        Self {
            node: node.to_string(),
            prices,
        }
    }

    fn rate(&self, rows: &datafusion::arrow::array::RecordBatch) -> Result<Batch, NodeError> {
        let table = EventKind::Conversation.table();
        let c = Columns::new(table, rows);
        let (tenant, provider, model) = (c.str("tenant_id")?, c.str("provider")?, c.str("model")?);
        let time = c.micros("event_time")?;
        let (input, output) = (c.i64("input_tokens")?, c.i64("output_tokens")?);
        let (cached, reasoning) = (c.i64("cached_input_tokens")?, c.i64("reasoning_tokens")?);
        let written = c.i64("cache_creation_input_tokens")?;
        let written_1h = c.i64("cache_creation_1h_input_tokens")?;
        let service_tier = c.str("service_tier")?;
        let producer = c.decimal("cost_usd")?;
        let n = rows.num_rows();
        let mut costs = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut tiers = Vec::with_capacity(n);
        let mut unpriced = 0u64;
        // Rows of a batch share a few (tenant, model) pairs: their candidate
        // prices are gathered once per pair, then picked by event time.
        let mut candidates: HashMap<(&str, &str, &str), Vec<&Price>> = HashMap::new();
        for i in 0..n {
            let key = (tenant.value(i), provider.value(i), model.value(i));
            let options = candidates
                .entry(key)
                .or_insert_with(|| self.prices.candidates(key.0, key.1, key.2));
            match in_effect(options, time.value(i)) {
                Some(p) => {
                    let usage = TokenUsage {
                        input: input.value(i),
                        output: output.value(i),
                        cached_input: cached.value(i),
                        reasoning: reasoning.value(i),
                        cache_creation: count_or_zero(written, i),
                        cache_creation_1h: count_or_zero(written_1h, i),
                    };
                    let tier = ServiceTier::from_event(opt_str(service_tier, i));
                    let (card, cost) = p.quote(usage, tier);
                    costs.push(Some(cost));
                    ids.push(Some(p.id.as_str()));
                    tiers.push(Some(card.label.as_str()));
                }
                None => {
                    unpriced += 1;
                    costs.push(None);
                    ids.push(None);
                    tiers.push(None);
                }
            }
        }
        let with_producer_cost = (n - producer.null_count()) as u64;
        let m = metrics();
        let rated_nanos: i128 = costs.iter().flatten().sum();
        m.rated_cost_usd
            .get_or_create(&NodeLabels {
                node: self.node.clone(),
            })
            .inc_by(rated_nanos as f64 / 1e9);
        m.rows_rated
            .get_or_create(&outcome(&self.node, "rated"))
            .inc_by(n as u64 - unpriced);
        if unpriced > 0 {
            m.rows_rated
                .get_or_create(&outcome(&self.node, "unpriced"))
                .inc_by(unpriced);
        }
        if with_producer_cost > 0 {
            m.rows_rated
                .get_or_create(&outcome(&self.node, "producer_cost"))
                .inc_by(with_producer_cost);
        }
        let ids: ArrayRef = Arc::new(StringArray::from(ids));
        let tiers: ArrayRef = Arc::new(StringArray::from(tiers));
        let rows = replace_columns(
            rows,
            vec![
                ("rated_cost_usd", decimal_array(costs)?),
                ("price_id", ids),
                ("price_tier", tiers),
            ],
        )?;
        Ok(Batch::new(table, rows))
    }
}

/// The cost a conversation is billed at, in nano-USD: the producer's when
/// it sent one, else ours; None when neither is known.
pub fn billed_cost(
    producer: &Decimal128Array,
    rated: &Decimal128Array,
    row: usize,
) -> Option<i128> {
    if producer.is_valid(row) {
        Some(producer.value(row))
    } else if rated.is_valid(row) {
        Some(rated.value(row))
    } else {
        None
    }
}

#[async_trait]
impl Operator for TokenAccounting {
    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        if batch.table != EventKind::Conversation.table() {
            out.emit(OUT, batch);
            return Ok(());
        }
        let _span = tracing::debug_span!("accounting", node = %self.node, rows = batch.num_rows())
            .entered();
        let rated = self.rate(&batch.rows)?;
        out.emit(OUT, rated);
        Ok(())
    }
}
