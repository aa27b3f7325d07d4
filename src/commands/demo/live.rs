//! The demo's live lines: what the platform did in the last second, read
//! from the node's own metrics (the exposition `/metrics` serves), so the
//! demo shows the numbers an operator's dashboard would.

use std::collections::BTreeMap;
use std::io::Write;

use somaflow_pipeline::metrics::metrics;

/// Totals since the node started.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub accepted: f64,
    pub spend_usd: f64,
    pub rows_in_lake: f64,
    pub soft_crossings: f64,
    pub hard_crossings: f64,
    /// Rule firings by decision (allow, deny, redact, flag).
    pub verdicts: BTreeMap<String, f64>,
    pub dispatched: f64,
    /// Steps not dispatched, by reason (policy_denied, budget_exceeded, …).
    pub refused: f64,
}

impl Snapshot {
    pub fn now() -> Snapshot {
        let text = metrics().encode();
        let mut s = Snapshot::default();
        for (name, labels, value) in series(&text) {
            let label = |k: &str| labels.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| *v);
            match name {
                "somaflow_ingest_accepted_total" => s.accepted += value,
                "somaflow_rated_cost_usd_total" => s.spend_usd += value,
                "somaflow_sink_rows_committed_total" => s.rows_in_lake += value,
                "somaflow_budget_events_total" if label("outcome") == "soft" => {
                    s.soft_crossings += value
                }
                "somaflow_budget_events_total" if label("outcome") == "hard" => {
                    s.hard_crossings += value
                }
                "somaflow_policy_decisions_total" => {
                    *s.verdicts.entry(label("decision").to_string()).or_default() += value
                }
                "somaflow_dispatch_total" if label("outcome") == "dispatched" => {
                    s.dispatched += value
                }
                "somaflow_dispatch_total" => s.refused += value,
                _ => {}
            }
        }
        s
    }
}

/// `(name, labels, value)` of each sample in an OpenMetrics text.
fn series(text: &str) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k, v.trim_matches('"')))
                })
                .collect();
            Some((name, labels, value))
        })
}

/// `12,345`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The three live lines for `elapsed` seconds, `last` a second ago.
pub fn lines(elapsed: f64, now: &Snapshot, last: &Snapshot, checkpoints: u64) -> [String; 3] {
    let verdicts: Vec<String> = now
        .verdicts
        .iter()
        .map(|(d, n)| format!("{} {d}", thousands(*n)))
        .collect();
    [
        format!(
            "{elapsed:>5.0}s  ingest {:>7} ev/s   accepted {:>9}   in lake {:>9} rows   checkpoints {checkpoints}",
            thousands(now.accepted - last.accepted),
            thousands(now.accepted),
            thousands(now.rows_in_lake),
        ),
        format!(
            "        spend ${:>8.2}/s   total ${:>10.2}   budget crossings: {} soft, {} hard",
            now.spend_usd - last.spend_usd,
            now.spend_usd,
            thousands(now.soft_crossings),
            thousands(now.hard_crossings),
        ),
        format!(
            "        policy: {}   steps: {} dispatched, {} refused",
            if verdicts.is_empty() {
                "no rule fired yet".to_string()
            } else {
                verdicts.join(", ")
            },
            thousands(now.dispatched),
            thousands(now.refused),
        ),
    ]
}

/// Prints `lines`; on a terminal over the ones printed before (`redraw`).
pub fn show(lines: &[String; 3], terminal: bool, redraw: bool) {
    let mut out = std::io::stdout().lock();
    if redraw {
        // Up to the first of the three lines printed last time.
        let _ = write!(out, "\x1b[3F");
    }
    for line in lines {
        // On a terminal, clear what a longer line left behind.
        let clear = if terminal { "\x1b[2K" } else { "" };
        let _ = writeln!(out, "{clear}{line}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels() {
        let text = "# TYPE x counter\nsomaflow_dispatch_total{node=\"d\",outcome=\"dispatched\"} 7\nsomaflow_ingest_accepted_total 12\n";
        let all: Vec<_> = series(text).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "somaflow_dispatch_total");
        assert_eq!(all[0].1, vec![("node", "d"), ("outcome", "dispatched")]);
        assert_eq!(all[0].2, 7.0);
        assert_eq!(all[1], ("somaflow_ingest_accepted_total", vec![], 12.0));
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(12.0), "12");
    }
}
