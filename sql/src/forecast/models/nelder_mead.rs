//! Nelder–Mead minimisation of a smooth function of a few parameters:
//! what fits Holt-Winters' smoothing weights (statsmodels and R's `ets`
//! use the same family of derivative-free searches for them). The
//! parameters are unconstrained; callers map them onto their bounds.

/// Minimises `f` from `start`, with a first simplex `step` wide along each
/// axis, until the simplex' values agree within `tolerance` (relative) or
/// `max_evaluations` have been spent; returns the best point found.
pub fn minimise(
    f: &mut dyn FnMut(&[f64]) -> f64,
    start: &[f64],
    step: f64,
    tolerance: f64,
    max_evaluations: usize,
) -> Vec<f64> {
    let n = start.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((start.to_vec(), f(start)));
    for axis in 0..n {
        let mut p = start.to_vec();
        p[axis] += step;
        let v = f(&p);
        simplex.push((p, v));
    }
    let mut evaluations = n + 1;
    while evaluations < max_evaluations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= tolerance * (best.abs() + f64::EPSILON) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|i| simplex[..n].iter().map(|(p, _)| p[i]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let reflected = along(1.0);
        let r = f(&reflected);
        evaluations += 1;
        if r < simplex[0].1 {
            let expanded = along(2.0);
            let e = f(&expanded);
            evaluations += 1;
            simplex[n] = if e < r { (expanded, e) } else { (reflected, r) };
        } else if r < simplex[n - 1].1 {
            simplex[n] = (reflected, r);
        } else {
            // Contract towards the better of the worst and its reflection.
            let (t, against) = if r < simplex[n].1 {
                (0.5, r)
            } else {
                (-0.5, simplex[n].1)
            };
            let contracted = along(t);
            let c = f(&contracted);
            evaluations += 1;
            if c < against {
                simplex[n] = (contracted, c);
            } else {
                // Shrink everything towards the best point.
                let best_point = simplex[0].0.clone();
                for (p, v) in simplex.iter_mut().skip(1) {
                    for (x, b) in p.iter_mut().zip(&best_point) {
                        *x = b + 0.5 * (*x - b);
                    }
                    *v = f(p);
                }
                evaluations += n;
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_finds_the_minimum_of_rosenbrock() {
        let mut rosenbrock =
            |p: &[f64]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2);
        let m = minimise(&mut rosenbrock, &[-1.2, 1.0], 0.5, 1e-14, 5_000);
        assert!(
            (m[0] - 1.0).abs() < 1e-3 && (m[1] - 1.0).abs() < 1e-3,
            "{m:?}"
        );
    }
}
