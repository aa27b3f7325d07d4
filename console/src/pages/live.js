// Live: the pipeline as it runs. Events per second per kind (decode's rows
// out, per table), ingest totals, the backlog (embedded log, or consumer
// lag on a cluster worker), checkpoint age and duration, the sinks, dead
// letters per reason with a sample record, and the newest accepted events.
// Platform-wide numbers are shown to a token bound to no tenant only; a
// tenant's token sees its own events and dead letters.

import { api, records, sql } from '../lib/api.js';
import { timeChart } from '../lib/charts.js';
import { count, duration, number, time } from '../lib/format.js';
import { h, panel, stat, table } from '../lib/dom.js';
import { Metrics } from '../lib/metrics.js';

const WINDOW_SECS = 300;

function mount(root, ctx) {
  const tiles = panel('Pipeline', { wide: true });
  const rates = panel('Events per second, by kind', { wide: true, note: 'decode’s rows out, last 5 minutes' });
  const sinks = panel('Sinks and health');
  const dead = panel('Dead letters', { note: 'last 7 days, by reason' });
  const recent = panel('Newest accepted events', { wide: true, note: 'shown at their 202, before any checkpoint' });
  const platform = ctx.admin;
  root.append(h('div', { class: 'grid' },
    platform ? [tiles.element, rates.element, sinks.element] : [],
    dead.element, recent.element));
  const chart = platform ? timeChart(rates.body, { height: 220 }) : null;
  // Counter samples over time, for rates.
  const history = [];

  async function refreshPlatform() {
    const text = await fetch('/metrics', { cache: 'no-store' }).then((r) => r.text());
    // The shell asked /ready at the start of this tick.
    const ready = ctx.ready();
    if (!ready) throw new Error('/ready did not answer');
    const m = new Metrics(text);
    const now = Date.now() / 1000;
    const perKind = m.by('somaflow_events_out_total', 'table', { node: 'decode' });
    const checkpoint = {
      sum: m.sum('somaflow_checkpoint_duration_seconds_sum') ?? 0,
      count: m.sum('somaflow_checkpoint_duration_seconds_count') ?? 0,
    };
    history.push({ t: now, perKind, checkpoint });
    while (history.length > 2 && history[0].t < now - WINDOW_SECS) history.shift();

    const kinds = [...new Set(history.flatMap((s) => Object.keys(s.perKind)))].filter((k) => k !== 'dead_letters').sort();
    const x = history.slice(1).map((s) => s.t);
    const series = kinds.map((kind) => ({
      label: kind,
      values: history.slice(1).map((s, i) => {
        const before = history[i];
        const dt = s.t - before.t;
        return dt > 0 ? Math.max(0, ((s.perKind[kind] ?? 0) - (before.perKind[kind] ?? 0)) / dt) : null;
      }),
    }));
    // A rate needs two samples; draw once there are two rates to join.
    if (x.length >= 2) chart.update({ x, series });
    const last = series.reduce((total, s) => total + (s.values.at(-1) ?? 0), 0);

    const logEnd = m.sum('somaflow_log_end_offset');
    const logRead = m.sum('somaflow_log_read_offset');
    const lag = m.sum('somaflow_kafka_consumer_lag');
    const backlog = lag ?? (logEnd !== null && logRead !== null ? Math.max(0, logEnd - logRead) : null);
    const previous = history.length > 1 ? history.at(-2).checkpoint : null;
    const recentDuration = previous && checkpoint.count > previous.count
      ? ((checkpoint.sum - previous.sum) / (checkpoint.count - previous.count)) * 1000
      : (checkpoint.count ? (checkpoint.sum / checkpoint.count) * 1000 : null);
    const age = ready.last_checkpoint_at_ms ? Date.now() - ready.last_checkpoint_at_ms : null;
    const accepted = m.sum('somaflow_ingest_accepted_total');
    tiles.fill(h('div', { class: 'stats' },
      stat('events/s now', number(last), { testid: 'live-rate', value: last }),
      stat('accepted over HTTP', count(accepted), { testid: 'live-accepted', value: accepted }),
      stat('refused', count(m.sum('somaflow_ingest_rejected_total'))),
      stat(lag !== null ? 'consumer lag' : 'log backlog', count(backlog), { testid: 'live-backlog', value: backlog, hint: 'records not yet read by the pipeline' }),
      stat('last checkpoint', age === null ? 'none yet' : `${duration(age)} ago`, { testid: 'live-checkpoint-age', value: age, hint: `epoch ${ready.last_checkpoint}` }),
      stat('checkpoint takes', duration(recentDuration), { hint: `${count(checkpoint.count)} completed` }),
    ));

    const committed = m.by('somaflow_sink_rows_committed_total', 'table');
    const clickhouseUp = m.sum('somaflow_clickhouse_up');
    const health = [
      { what: 'ready', state: ready.ready ? 'yes' : `no: ${ready.problems.join('; ')}`, ok: ready.ready },
      ...ready.warnings.map((w) => ({ what: 'warning', state: w, ok: false })),
      { what: 'lake', state: 'committing', ok: true },
      clickhouseUp === null ? null : { what: 'ClickHouse', state: clickhouseUp ? 'up' : 'down', ok: clickhouseUp === 1 },
      m.sum('somaflow_redis_up') === null ? null : { what: 'Redis', state: m.sum('somaflow_redis_up') ? 'up' : 'down', ok: m.sum('somaflow_redis_up') === 1 },
      m.sum('somaflow_kafka_broker_up') === null ? null : { what: 'Kafka', state: m.sum('somaflow_kafka_broker_up') ? 'up' : 'down', ok: m.sum('somaflow_kafka_broker_up') === 1 },
    ].filter(Boolean);
    sinks.fill(
      table([
        { label: 'part', value: (r) => r.what },
        { label: 'state', value: (r) => h('span', { class: r.ok ? 'ok' : 'bad' }, r.state) },
      ], health, { testid: 'live-health' }),
      table([
        { label: 'table', value: (r) => r[0] },
        { label: 'rows committed', num: true, value: (r) => count(r[1]), testid: (r) => `committed-${r[0]}`, raw: (r) => r[1] },
      ], Object.entries(committed).sort(), { empty: 'no rows committed yet', testid: 'live-committed' }),
    );
  }

  async function refreshDeadLetters() {
    const since = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10);
    const answer = await sql(
      `SELECT stage, reason, count(*) AS records, max(ingest_time) AS last_seen, arrow_cast(min(raw), 'Utf8') AS sample
       FROM dead_letters WHERE date >= '${since}'${ctx.tenant ? ` AND tenant_id = '${ctx.tenant}'` : ''} GROUP BY stage, reason ORDER BY records DESC LIMIT 12`);
    dead.fill(table([
      { label: 'reason', value: (r) => h('div', {}, h('div', {}, r.reason), h('code', { class: 'sample' }, (r.sample ?? '').slice(0, 240))) },
      { label: 'stage', value: (r) => r.stage },
      { label: 'records', num: true, value: (r) => count(r.records) },
    ], records(answer), { empty: 'no dead letters in the last 7 days', testid: 'live-dead-letters' }));
  }

  async function refreshRecent() {
    const answer = await api(`/v1/events/recent?limit=25${ctx.tenant ? `&tenant=${encodeURIComponent(ctx.tenant)}` : ''}`);
    recent.fill(table([
      { label: 'accepted', value: (e) => time(e.accepted_us / 1000) },
      { label: 'id', value: (e) => e.id, testid: () => 'recent-id' },
      { label: 'kind', value: (e) => e.table },
      { label: 'tenant', value: (e) => e.tenant },
      { label: 'event time', value: (e) => time(e.event_time_us / 1000) },
    ], answer.events, { empty: 'no events accepted over HTTP since the node started', testid: 'live-recent' }));
  }

  const guard = (p, fn) => fn().catch((e) => p.error(e));
  return {
    refresh: () => Promise.all([
      platform ? guard(tiles, refreshPlatform) : null,
      guard(dead, () => ctx.whenChanged('dead-letters', refreshDeadLetters)),
      guard(recent, refreshRecent),
    ]),
    destroy: () => chart?.destroy(),
  };
}

export default { title: 'Live', interval: 2000, mount };
