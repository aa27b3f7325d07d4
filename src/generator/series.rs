//! The traffic model as hourly series: per tenant, the number of
//! conversations in each hour, drawn from the same model the event
//! generator samples (tenant skew, conversation share, daily and weekly
//! seasonality), with spikes and drops planted at seeded places. Drawing
//! counts directly is what makes months of platform-scale history cheap
//! enough for a test (tens of millions of events would be generated one
//! by one otherwise); the counts have the distribution the event stream's
//! hourly counts would have.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::traffic::{conversation_share, seasonality, tenant_weight};

#[derive(Debug, Clone)]
pub struct SeriesConfig {
    pub seed: u64,
    pub tenants: usize,
    /// Records per hour over all tenants at peak activity (seasonality 1).
    pub peak_records_per_hour: f64,
    /// The first hour of the longest history.
    pub start: DateTime<Utc>,
    pub hours: usize,
    /// Hours (from `start`) before which tenant `i` has no traffic yet: a
    /// newer tenant has a shorter history. Missing entries: none.
    pub joined_at_hour: Vec<usize>,
    /// Anomalies planted per tenant, in the last `anomaly_hours` hours.
    pub anomalies_per_tenant: usize,
    pub anomaly_hours: usize,
}

/// A planted anomaly: the tenant's rate times `factor` for one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedAnomaly {
    pub tenant: usize,
    pub hour: usize,
    pub factor: f64,
}

#[derive(Debug, Clone)]
pub struct HourlySeries {
    pub tenants: Vec<String>,
    /// `counts[tenant][hour]`.
    pub counts: Vec<Vec<f64>>,
    /// The hour each tenant's history starts.
    pub first_hour: Vec<usize>,
    pub planted: Vec<PlantedAnomaly>,
}

/// Hourly conversation counts of every tenant.
pub fn hourly_conversations(config: &SeriesConfig) -> HourlySeries {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n = config.tenants.max(1);
    let total_weight: f64 = (0..n).map(tenant_weight).sum();
    let share = conversation_share();
    let mut planted = Vec::new();
    let window = config.anomaly_hours.min(config.hours);
    for tenant in 0..n {
        let mut hours: Vec<usize> = Vec::new();
        while hours.len() < config.anomalies_per_tenant.min(window) {
            let hour = config.hours - window + rng.random_range(0..window);
            // Apart, so two plants never make one longer event.
            if hours.iter().all(|h| h.abs_diff(hour) > 2) {
                hours.push(hour);
            }
        }
        for hour in hours {
            let factor = if rng.random::<bool>() {
                rng.random_range(2.5..4.0)
            } else {
                rng.random_range(0.05..0.35)
            };
            planted.push(PlantedAnomaly {
                tenant,
                hour,
                factor,
            });
        }
    }
    let mut counts = vec![vec![0.0; config.hours]; n];
    let first_hour: Vec<usize> = (0..n)
        .map(|t| config.joined_at_hour.get(t).copied().unwrap_or(0))
        .collect();
    for (tenant, row) in counts.iter_mut().enumerate() {
        let peak = config.peak_records_per_hour * share * tenant_weight(tenant) / total_weight;
        for (hour, slot) in row.iter_mut().enumerate().skip(first_hour[tenant]) {
            let mid = config.start + Duration::hours(hour as i64) + Duration::minutes(30);
            let factor = planted
                .iter()
                .find(|p| p.tenant == tenant && p.hour == hour)
                .map_or(1.0, |p| p.factor);
            *slot = poisson(&mut rng, peak * seasonality(mid) * factor);
        }
    }
    HourlySeries {
        tenants: (0..n).map(|i| format!("tenant-{i:04}")).collect(),
        counts,
        first_hour,
        planted,
    }
}

/// A Poisson draw: exact (Knuth) for small means, the normal approximation
/// with continuity correction above 50, where it is within a fraction of a
/// percent.
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    if mean < 50.0 {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0.0, 1.0);
        loop {
            p *= rng.random::<f64>();
            if p <= limit {
                return k;
            }
            k += 1.0;
        }
    }
    // Box-Muller.
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mean + mean.sqrt() * z + 0.5).floor().max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SeriesConfig {
        SeriesConfig {
            seed: 5,
            tenants: 4,
            peak_records_per_hour: 10_000.0,
            start: DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            hours: 14 * 24,
            joined_at_hour: vec![0, 0, 0, 7 * 24],
            anomalies_per_tenant: 3,
            anomaly_hours: 48,
        }
    }

    #[test]
    fn counts_follow_the_model_and_the_seed() {
        let a = hourly_conversations(&config());
        assert_eq!(
            a.counts,
            hourly_conversations(&config()).counts,
            "same seed, same series"
        );
        // The busiest tenant: afternoon above night, weekday above weekend.
        let day = |d: usize, h: usize| a.counts[0][d * 24 + h];
        assert!(
            day(2, 15) > 2.0 * day(2, 3),
            "{} vs {}",
            day(2, 15),
            day(2, 3)
        );
        assert!(day(2, 15) > day(5, 15), "Saturday is quieter");
        assert!(
            a.counts[3][..7 * 24].iter().all(|c| *c == 0.0),
            "joined after a week"
        );
        assert_eq!(a.planted.len(), 12);
        assert!(a.planted.iter().all(|p| p.hour >= 12 * 24));
    }
}
