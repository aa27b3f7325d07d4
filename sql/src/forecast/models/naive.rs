//! The simple models: seasonal naive, the seasonal mean and the run-rate.

use super::super::DAY;

/// The last full season, repeated.
pub fn seasonal_naive(y: &[f64], m: usize, horizon: usize) -> Vec<f64> {
    let n = y.len();
    (0..horizon).map(|h| y[n - m + h % m]).collect()
}

/// The same hour of the season, averaged over the last `k` seasons (the
/// median from three on, so one odd week does not move it).
pub fn seasonal_mean(y: &[f64], m: usize, k: usize, horizon: usize) -> Vec<f64> {
    let n = y.len();
    let seasons = (n / m).clamp(1, k);
    (0..horizon)
        .map(|h| {
            let phase = h % m;
            let mut same: Vec<f64> = (1..=seasons).map(|s| y[n - s * m + phase]).collect();
            if same.len() >= 3 {
                same.sort_by(f64::total_cmp);
                let mid = same.len() / 2;
                if same.len() % 2 == 1 {
                    same[mid]
                } else {
                    (same[mid - 1] + same[mid]) / 2.0
                }
            } else {
                same.iter().sum::<f64>() / same.len() as f64
            }
        })
        .collect()
}

/// A straight line fitted (least squares) to the last day or less.
pub fn run_rate(y: &[f64], horizon: usize) -> Vec<f64> {
    let tail = &y[y.len().saturating_sub(DAY)..];
    let n = tail.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = tail.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in tail.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (v - mean_y);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (1..=horizon)
        .map(|h| mean_y + slope * (n - 1.0 - mean_x + h as f64))
        .collect()
}
