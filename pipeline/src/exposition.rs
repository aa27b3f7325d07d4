//! The classic Prometheus text format (0.0.4) from the OpenMetrics text the
//! registry encodes. Prometheus itself asks for OpenMetrics, but `promtool
//! check metrics`, curl and older scrapers read the classic format, where a
//! counter's `# HELP`/`# TYPE` name the sample with its `_total` and there
//! is no `# EOF`.

use std::collections::HashSet;

/// Content type of the classic format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Rewrites OpenMetrics text as the classic Prometheus text format.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => {
                // A counter's creation time has no place in the classic format.
                let sample = line.split(['{', ' ']).next().unwrap_or("");
                if !line.starts_with('#')
                    && sample
                        .strip_suffix("_created")
                        .is_some_and(|family| counters.contains(family))
                {
                    continue;
                }
                out.push_str(line);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_total_in_help_and_type_and_eof_goes() {
        let om = "# HELP x_events Rows.\n# TYPE x_events counter\nx_events_total{node=\"a\"} 3\nx_events_created{node=\"a\"} 1.7e9\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# HELP x_lat Latency.\n# TYPE x_lat histogram\n# UNIT x_lat seconds\nx_lat_bucket{le=\"1.0\"} 1\nx_lat_sum 0.5\nx_lat_count 1\n# EOF\n";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP x_events_total Rows.\n# TYPE x_events_total counter\nx_events_total{node=\"a\"} 3\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# HELP x_lat Latency.\n# TYPE x_lat histogram\nx_lat_bucket{le=\"1.0\"} 1\nx_lat_sum 0.5\nx_lat_count 1\n"
        );
    }
}
