//! Additive Holt-Winters with a damped trend, as statsmodels'
//! `ExponentialSmoothing(trend="add", damped_trend=True, seasonal="add")`
//! fits it: initial states by the heuristic of Hyndman et al. (a centred
//! moving average over the first seasons gives the level, trend and
//! seasonal offsets), then the four weights chosen by minimising the
//! one-step squared error over the history ([`nelder_mead`]), starting
//! from the best point of a coarse grid.
//!
//! `scripts/bench-forecast-real.sh` checks it against statsmodels on the
//! same real series and origins.

use super::nelder_mead;

/// Weights and bounds: α in (0, 1), β in [0, 1], γ in [0, 1 − α], and the
/// damping φ in [0.8, 0.98], the range R's `forecast::ets` allows (a φ
/// near 1 lets a week's noise become a trend forever).
#[derive(Debug, Clone, Copy)]
struct Weights {
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
}

const PHI_MIN: f64 = 0.8;
const PHI_MAX: f64 = 0.98;

fn sigmoid(u: f64) -> f64 {
    1.0 / (1.0 + (-u).exp())
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

impl Weights {
    /// From the unconstrained point the search moves in.
    fn from_free(u: &[f64]) -> Self {
        let alpha = 1e-4 + (1.0 - 2e-4) * sigmoid(u[0]);
        Weights {
            alpha,
            beta: sigmoid(u[1]),
            gamma: (1.0 - alpha) * sigmoid(u[2]),
            phi: PHI_MIN + (PHI_MAX - PHI_MIN) * sigmoid(u[3]),
        }
    }

    fn to_free(self) -> [f64; 4] {
        [
            logit((self.alpha - 1e-4) / (1.0 - 2e-4)),
            logit(self.beta),
            logit(self.gamma / (1.0 - self.alpha)),
            logit((self.phi - PHI_MIN) / (PHI_MAX - PHI_MIN)),
        ]
    }
}

/// Level, trend and the season's offsets, as of just before an hour.
#[derive(Debug, Clone)]
struct State {
    level: f64,
    trend: f64,
    /// `season[t % m]` is hour `t`'s offset.
    season: Vec<f64>,
}

/// The least history: two full seasons, for the moving average.
pub fn min_history(m: usize) -> usize {
    2 * m
}

/// `horizon` values after `y` (`y.len() >= min_history(m)`).
pub fn forecast(y: &[f64], m: usize, horizon: usize) -> Vec<f64> {
    let Some(start) = initial_state(y, m) else {
        return vec![y.last().copied().unwrap_or(0.0); horizon];
    };
    let weights = fit(y, &start);
    let (_, end) = run(y, &start, weights);
    let mut damped = 0.0;
    (1..=horizon)
        .map(|h| {
            damped += weights.phi.powi(h as i32);
            end.level + damped * end.trend + end.season[(y.len() + h - 1) % m]
        })
        .collect()
}

/// The weights with the least one-step squared error.
fn fit(y: &[f64], start: &State) -> Weights {
    let mut grid_best = Weights {
        alpha: 0.2,
        beta: 0.001,
        gamma: 0.05,
        phi: 0.9,
    };
    let mut least = run(y, start, grid_best).0;
    for alpha in [0.05, 0.2, 0.5] {
        for gamma in [0.05, 0.2] {
            for beta in [0.001, 0.05] {
                let w = Weights {
                    alpha,
                    beta,
                    gamma,
                    phi: 0.9,
                };
                let sse = run(y, start, w).0;
                if sse < least {
                    (least, grid_best) = (sse, w);
                }
            }
        }
    }
    let mut sse = |u: &[f64]| run(y, start, Weights::from_free(u)).0;
    let found = nelder_mead::minimise(&mut sse, &grid_best.to_free(), 0.5, 1e-7, 600);
    Weights::from_free(&found)
}

/// The one-step squared error over `y` and the state after its last hour.
fn run(y: &[f64], start: &State, w: Weights) -> (f64, State) {
    let m = start.season.len();
    let mut s = start.clone();
    let mut sse = 0.0;
    for (t, &value) in y.iter().enumerate() {
        let phase = t % m;
        let base = s.level + w.phi * s.trend;
        let error = value - (base + s.season[phase]);
        sse += error * error;
        let level = base + w.alpha * error;
        s.trend = w.beta * (level - s.level) + (1.0 - w.beta) * w.phi * s.trend;
        s.level = level;
        s.season[phase] += w.gamma * error;
    }
    (sse, s)
}

/// The heuristic start: a centred moving average over the first (up to
/// five) seasons is the trend line; the mean gap between it and the data,
/// per hour of the season, the seasonal offsets (summing to zero); a line
/// through the first ten averages, the level and trend before hour 0.
fn initial_state(y: &[f64], m: usize) -> Option<State> {
    let cycles = (y.len() / m).min(5);
    if m < 2 || cycles < 2 {
        return None;
    }
    let span = &y[..cycles * m];
    let half = m / 2;
    // The 2×m average for an even season, the plain m average for an odd one.
    let average = |t: usize| -> f64 {
        if m.is_multiple_of(2) {
            let inner: f64 = span[t - half + 1..t + half].iter().sum();
            (inner + 0.5 * (span[t - half] + span[t + half])) / m as f64
        } else {
            span[t - half..=t + half].iter().sum::<f64>() / m as f64
        }
    };
    let centred: Vec<(usize, f64)> = (half..span.len() - half).map(|t| (t, average(t))).collect();
    let (mut gap, mut count) = (vec![0.0; m], vec![0usize; m]);
    for &(t, trend) in &centred {
        gap[t % m] += span[t] - trend;
        count[t % m] += 1;
    }
    for (g, c) in gap.iter_mut().zip(&count) {
        *g /= (*c).max(1) as f64;
    }
    let mean_gap = gap.iter().sum::<f64>() / m as f64;
    let season = gap.iter().map(|g| g - mean_gap).collect();
    let line = &centred[..centred.len().min(10)];
    let k = line.len() as f64;
    let mean_t = line.iter().map(|(t, _)| *t as f64).sum::<f64>() / k;
    let mean_v = line.iter().map(|(_, v)| v).sum::<f64>() / k;
    let (mut stv, mut stt) = (0.0, 0.0);
    for &(t, v) in line {
        stv += (t as f64 - mean_t) * (v - mean_v);
        stt += (t as f64 - mean_t).powi(2);
    }
    let trend = if stt > 0.0 { stv / stt } else { 0.0 };
    Some(State {
        level: mean_v + trend * (-1.0 - mean_t),
        trend,
        season,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_season_with_a_trend_is_continued() {
        let y: Vec<f64> = (0..4 * 24)
            .map(|t| {
                50.0 + 0.5 * t as f64
                    + 10.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()
            })
            .collect();
        let f = forecast(&y, 24, 24);
        for (h, v) in f.iter().enumerate() {
            let t = y.len() + h;
            let seasonal = 10.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
            let flat = 50.0 + 0.5 * (y.len() - 1) as f64 + seasonal;
            // Damping bends the trend down a little, never below flat.
            assert!(
                *v > flat - 1.0 && *v < flat + 0.5 * (h + 1) as f64 + 1.0,
                "{h}: {v}"
            );
        }
    }

    #[test]
    fn weights_survive_the_round_trip_through_the_free_space() {
        let w = Weights {
            alpha: 0.3,
            beta: 0.01,
            gamma: 0.2,
            phi: 0.9,
        };
        let back = Weights::from_free(&w.to_free());
        assert!((back.alpha - 0.3).abs() < 1e-9 && (back.beta - 0.01).abs() < 1e-9);
        assert!((back.gamma - 0.2).abs() < 1e-9 && (back.phi - 0.9).abs() < 1e-9);
    }
}
