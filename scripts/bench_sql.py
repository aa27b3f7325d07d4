"""somaflow against DuckDB on the same lake files, in one run (scripts/bench-sql.sh).

Dashboard questions, each asked RUNS times of both, median times printed
side by side with their ratio, answers checked equal:

* five dashboard queries as SQL: `POST /v1/sql` (DataFusion over the lake)
  against DuckDB (2 threads) reading the same Parquet files, exactly the
  files somaflow's readers see (those no compacted file covers);
* the read endpoints' questions: somaflow answers through its endpoint
  (`/v1/usage`, `/v1/billing/ledgers`, with the answer cache off so every
  answer is computed: it reads the rollups where they answer), DuckDB
  through the SQL a user would write on the raw tables.

Usage: bench_sql.py BASE TOKEN LAKE_DIR TENANT RUNS
"""

import glob
import json
import os
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb

TABLES = ["conversations", "capsule_executions", "marketplace_transactions", "billing_events", "usage_1m"]


def visible_files(lake, table):
    """The table's Parquet files a somaflow reader sees: every file that no
    compacted file's covers record names (pipeline/src/compaction.rs)."""
    files = []
    for folder in sorted({os.path.dirname(p) for p in glob.glob(f"{lake}/{table}/*/*/*.parquet")}):
        covered = set()
        for record in glob.glob(f"{folder}/*.covers.json"):
            covered.update(json.load(open(record))["files"])
        files += [
            p for p in sorted(glob.glob(f"{folder}/*.parquet")) if os.path.basename(p) not in covered
        ]
    return files


def call(base, token, path, body=None):
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as r:
        return json.loads(r.read(), parse_float=Decimal)


def norm(value):
    """A cell as comparable text: numbers exact, times as Unix microseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return str(int(value.timestamp() * 1_000_000))
    if isinstance(value, (int, float, Decimal)):
        return str(Decimal(str(value)).normalize())
    try:
        return str(Decimal(value).normalize())
    except Exception:  # noqa: BLE001 - text stays text
        return str(value)


def timed(runs, f):
    """Median seconds of `runs` calls (after one warm-up) and the last answer."""
    f()
    times, answer = [], None
    for _ in range(runs):
        start = time.perf_counter()
        answer = f()
        times.append(time.perf_counter() - start)
    return statistics.median(times), answer


def main():
    base, token, lake, tenant, runs = sys.argv[1:6]
    runs = int(runs)
    db = duckdb.connect()
    db.execute("SET threads = 2")
    db.execute("SET TimeZone = 'UTC'")
    for table in TABLES:
        files = visible_files(lake, table)
        listed = ", ".join("'" + f + "'" for f in files)
        db.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}])")
        print(f"{table}: {len(files)} files")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    month_ago = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    week_ago = (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dashboard = [
        (
            "tenant × model, 30 days",
            f"SELECT tenant_id, model, sum(input_tokens + output_tokens) AS tokens, sum(rated_cost_usd) AS cost "
            f"FROM conversations WHERE event_time >= TIMESTAMP '{month_ago}' GROUP BY 1, 2 ORDER BY 1, 2",
            None,
        ),
        (
            "one tenant hourly",
            "SELECT CAST(date_trunc('hour', event_time) AS BIGINT) AS h, count(*) AS n, sum(input_tokens) AS input "
            f"FROM conversations WHERE tenant_id = '{tenant}' GROUP BY 1 ORDER BY 1",
            "SELECT epoch_us(date_trunc('hour', event_time)) AS h, count(*) AS n, sum(input_tokens) AS input "
            f"FROM conversations WHERE tenant_id = '{tenant}' GROUP BY 1 ORDER BY 1",
        ),
        (
            "top capsules, 7 days",
            "SELECT capsule_id, count(*) AS runs, sum(cost_usd) AS cost FROM capsule_executions "
            f"WHERE event_time >= TIMESTAMP '{week_ago}' GROUP BY 1 ORDER BY runs DESC, capsule_id LIMIT 10",
            None,
        ),
        (
            "distinct tenants per day",
            "SELECT CAST(date_trunc('day', event_time) AS BIGINT) AS d, count(DISTINCT tenant_id) AS tenants "
            "FROM conversations GROUP BY 1 ORDER BY 1",
            "SELECT epoch_us(date_trunc('day', event_time)) AS d, count(DISTINCT tenant_id) AS tenants "
            "FROM conversations GROUP BY 1 ORDER BY 1",
        ),
        (
            "usage_1m per day",
            "SELECT CAST(date_trunc('day', window_start) AS BIGINT) AS d, sum(requests) AS requests, "
            "sum(cost_usd) AS cost FROM usage_1m GROUP BY 1 ORDER BY 1",
            "SELECT epoch_us(date_trunc('day', window_start)) AS d, sum(requests) AS requests, "
            "sum(cost_usd) AS cost FROM usage_1m GROUP BY 1 ORDER BY 1",
        ),
    ]
    results = []
    for name, sql, duck_sql in dashboard:
        ours, mine = timed(runs, lambda: call(base, token, "/v1/sql", {"sql": sql})["rows"])
        theirs, duck = timed(runs, lambda: db.execute(duck_sql or sql).fetchall())
        equal = [[norm(v) for v in r] for r in mine] == [[norm(v) for v in r] for r in duck]
        results.append((name, ours, theirs, equal))

    # The endpoints' questions. Usage: tokens per hour by model, 30 days.
    usage_path = (
        f"/v1/usage?meter=tokens&window=hour&group_by=model&tenant={tenant}&source=lake"
        f"&from={month_ago}&to={now.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )
    usage_sql = (
        "SELECT epoch_us(date_trunc('hour', window_start)) AS h, model, sum(input_tokens + output_tokens) "
        f"FROM usage_1m WHERE tenant_id = '{tenant}' AND window_start >= TIMESTAMP '{month_ago}' "
        f"AND window_start < TIMESTAMP '{now.strftime('%Y-%m-%dT%H:%M:%SZ')}' GROUP BY 1, 2"
    )
    ours, usage = timed(runs, lambda: call(base, token, usage_path))
    theirs, duck = timed(runs, lambda: db.execute(usage_sql).fetchall())
    mine = sorted(
        (int(datetime.fromisoformat(r["window_start"].replace("Z", "+00:00")).timestamp() * 1e6), r["group"]["model"], int(r["value"]))
        for r in usage["rows"]
        if int(r["value"]) != 0
    )
    equal = mine == sorted((int(h), m, int(v)) for h, m, v in duck if int(v) != 0)
    results.append(("/v1/usage 30 days hourly by model", ours, theirs, equal))

    # Ledger: last month's token quantities per model and meter.
    first = now.replace(day=1, hour=0, minute=0)
    last_month = (first - timedelta(days=1)).replace(day=1)
    period = last_month.strftime("%Y-%m")
    ledger_path = f"/v1/billing/ledgers?tenant={tenant}&period={period}&source=lake"
    # What a user computes a ledger from: rated tokens per model, capsule
    # runs per capsule, marketplace transactions per capsule and type, and
    # billing quantities per meter, over the month's raw rows.
    month = (
        f"tenant_id = '{tenant}' AND event_time >= TIMESTAMP '{last_month.strftime('%Y-%m-%dT00:00:00Z')}' "
        f"AND event_time < TIMESTAMP '{first.strftime('%Y-%m-%dT00:00:00Z')}'"
    )
    ledger_sql = {
        "llm": "SELECT model, sum(input_tokens - cached_input_tokens) + sum(cached_input_tokens) + "
        "sum(output_tokens - reasoning_tokens) + sum(reasoning_tokens) FROM conversations "
        f"WHERE {month} AND cost_usd IS NULL GROUP BY 1",
        "capsule_runs": f"SELECT capsule_id, count(*) FROM capsule_executions WHERE {month} GROUP BY 1",
        "marketplace": "SELECT capsule_id || '/' || tx_type, count(*) FROM marketplace_transactions "
        f"WHERE {month} AND currency = 'USD' AND tx_type <> 'payout' GROUP BY 1",
        "billing": f"SELECT meter || '/' || unit, sum(quantity) FROM billing_events WHERE {month} GROUP BY 1",
    }
    ours, ledger = timed(runs, lambda: call(base, token, ledger_path))
    theirs, duck = timed(
        runs, lambda: {k: db.execute(q).fetchall() for k, q in ledger_sql.items()}
    )
    # The ledger's lines as the same four maps: token lines are in millions
    # of tokens, per model (`item`), summed over their meters.
    mine = {k: {} for k in ledger_sql}
    for line in ledger["lines"]:
        category, item = line["category"], line["item"]
        if category == "llm":
            tokens = Decimal(line["quantity"]) * 1_000_000
            mine["llm"][item] = mine["llm"].get(item, 0) + tokens
        elif category == "capsule_runs":
            mine["capsule_runs"][item] = Decimal(line["quantity"])
        elif category == "marketplace":
            mine["marketplace"][f"{item}/{line['meter']}"] = Decimal(line["quantity"])
    for usage in ledger.get("reported_usage", []):
        mine["billing"][f"{usage['meter']}/{usage['unit']}"] = Decimal(usage["quantity"])
    theirs_maps = {k: {key: Decimal(str(v)) for key, v in rows if v} for k, rows in duck.items()}
    mine = {k: {key: v for key, v in m.items() if v} for k, m in mine.items()}
    equal = mine == theirs_maps and all(mine.values())
    if not equal:
        for k in mine:
            if mine[k] != theirs_maps[k]:
                print(f"ledger {k} differs: somaflow {sorted(mine[k].items())[:5]} DuckDB {sorted(theirs_maps[k].items())[:5]}", file=sys.stderr)
    results.append((f"/v1/billing/ledgers {period}", ours, theirs, equal))

    print(f"\n{'question':40} {'somaflow':>10} {'DuckDB':>10} {'DuckDB/somaflow':>16}  equal")
    ratios = []
    for name, ours, theirs, equal in results:
        ratios.append(theirs / ours)
        print(f"{name:40} {ours * 1000:8.1f}ms {theirs * 1000:8.1f}ms {theirs / ours:15.2f}x  {equal}")
    print(f"median ratio (DuckDB time / somaflow time): {statistics.median(ratios):.2f}")
    if not all(r[3] for r in results):
        print("answers differ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
