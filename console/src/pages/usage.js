// Usage and forecast: any meter over time (`/v1/usage`: window, time zone,
// group by), the tenant's 7-day forecast with its 80 % and 95 % bands and
// the chosen model's backtest error (`/v1/forecasts`), and anomalies
// (`POST /v1/anomalies/scan`) marked on the hourly series.

import { api, query } from '../lib/api.js';
import { PALETTE, timeChart, seriesByGroup } from '../lib/charts.js';
import { count, number, percent, time, usd, wholeMinute } from '../lib/format.js';
import { h, panel, select, stat, table } from '../lib/dom.js';

const METERS = ['cost_usd', 'tokens', 'input_tokens', 'output_tokens', 'requests', 'capsule_runs', 'workflow_steps'];
const WINDOWS = ['minute', 'hour', 'day', 'month'];
const GROUPS = ['', 'model', 'provider', 'capsule', 'user', 'tenant'];
const RANGES = { '6h': 6, '24h': 24, '7d': 168, '30d': 720 };

function mount(root, ctx) {
  const settings = JSON.parse(sessionStorage.getItem('somaflow.usage') || 'null')
    ?? { meter: 'cost_usd', window: 'hour', tz: 'UTC', group_by: 'model', range: '7d' };
  const form = h('div', { class: 'toolbar' });
  const series = panel('Usage', { wide: true });
  const forecast = panel('Forecast, next 7 days', { wide: true, note: 'hourly; 80 % and 95 % intervals; anomalies marked in red' });
  const anomalies = panel('Anomalies', { wide: true, note: 'hours far from what the tenant’s own history expects' });
  root.append(form, h('div', { class: 'grid' }, series.element, forecast.element, anomalies.element));
  const usageChart = timeChart(series.body, { height: 280, money: settings.meter === 'cost_usd' });
  const forecastBox = h('div', {});
  const forecastChart = timeChart(forecastBox, { height: 280 });
  const forecastStats = h('div', { class: 'stats' });
  forecast.body.append(forecastStats, forecastBox);
  let refreshAll = async () => {};

  const change = (key) => (value) => {
    settings[key] = value;
    sessionStorage.setItem('somaflow.usage', JSON.stringify(settings));
    // A new meter changes the axes' units: build the page again.
    if (key === 'meter') ctx.remount();
    else refreshAll().catch(() => {});
  };
  form.append(
    select(METERS.map((m) => [m, m]), settings.meter, change('meter'), { label: 'meter', testid: 'usage-meter' }),
    select(WINDOWS.map((w) => [w, w]), settings.window, change('window'), { label: 'window', testid: 'usage-window' }),
    select(GROUPS.map((g) => [g, g || 'nothing']), settings.group_by, change('group_by'), { label: 'group by', testid: 'usage-group' }),
    select(Object.keys(RANGES).map((r) => [r, `last ${r}`]), settings.range, change('range'), { label: 'range', testid: 'usage-range' }),
    h('label', { class: 'field' }, 'time zone', h('input', {
      value: settings.tz, size: 16, 'data-testid': 'usage-tz',
      onchange: (e) => change('tz')(e.target.value.trim() || 'UTC'),
    })),
  );

  async function refreshUsage() {
    const hours = RANGES[settings.range];
    const to = Date.now() + 60_000;
    const answer = await api(`/v1/usage?${query({
      meter: settings.meter, window: settings.window, tz: settings.tz, group_by: settings.group_by,
      tenant: ctx.tenant, from: wholeMinute(to - hours * 3_600_000, { hour: true }), to: wholeMinute(to),
    })}`);
    const { x, series: lines, totals } = seriesByGroup(answer.rows, { limit: 8 });
    const total = [...totals.values()].reduce((a, b) => a + b, 0);
    series.error(null);
    series.body.dataset.total = String(total);
    series.body.dataset.testid = 'usage-total';
    if (x.length) usageChart.update({ x, series: lines });
    series.element.querySelector('h2').textContent =
      `${settings.meter} per ${settings.window}${settings.group_by ? ` by ${settings.group_by}` : ''}: ${settings.meter === 'cost_usd' ? usd(total) : number(total)} in all`;
  }

  async function refreshForecast() {
    const tenant = ctx.oneTenant;
    if (!tenant) {
      forecastStats.replaceChildren(h('p', { class: 'empty' }, 'no tenant to forecast'));
      return;
    }
    const meter = METERS.includes(settings.meter) ? settings.meter : 'cost_usd';
    const hourNow = wholeMinute(Date.now(), { hour: true });
    const from = wholeMinute(Date.now() - 7 * 86_400_000, { hour: true });
    const [f, past, scan] = await Promise.all([
      api(`/v1/forecasts?${query({ tenant, meter, horizon: '7d' })}`),
      api(`/v1/usage?${query({ tenant, meter, window: 'hour', from, to: hourNow })}`),
      api('/v1/anomalies/scan', { method: 'POST', body: { from, to: hourNow, meters: [meter], tenants: [tenant] } }),
    ]);
    const observed = new Map(past.rows.map((r) => [Date.parse(r.window_start) / 1000, Number(r.value)]));
    const flagged = new Map(scan.anomalies.map((a) => [Date.parse(a.window_start) / 1000, Number(a.observed)]));
    const historyX = [];
    for (let t = Date.parse(from) / 1000; t < Date.parse(hourNow) / 1000; t += 3600) historyX.push(t);
    const futureX = f.points.map((p) => Date.parse(p.window_start) / 1000);
    const x = [...historyX, ...futureX];
    const pad = (values, before) => [...new Array(before).fill(null), ...values];
    const tail = new Array(futureX.length).fill(null);
    const lines = [
      { label: 'observed', values: [...historyX.map((t) => observed.get(t) ?? 0), ...tail], color: PALETTE[7] },
      { label: 'anomaly', values: [...historyX.map((t) => flagged.get(t) ?? null), ...tail], color: '#dc2626', points: true },
      { label: 'forecast', values: pad(f.points.map((p) => p.value), historyX.length), color: PALETTE[0] },
      { label: '95 % high', values: pad(f.points.map((p) => p.upper_95), historyX.length), color: 'rgba(37,99,235,0.25)', dash: [4, 4] },
      { label: '95 % low', values: pad(f.points.map((p) => p.lower_95), historyX.length), color: 'rgba(37,99,235,0.25)', dash: [4, 4] },
      { label: '80 % high', values: pad(f.points.map((p) => p.upper_80), historyX.length), color: 'rgba(37,99,235,0.45)' },
      { label: '80 % low', values: pad(f.points.map((p) => p.lower_80), historyX.length), color: 'rgba(37,99,235,0.45)' },
    ];
    forecastChart.update({ x, series: lines, bands: [[4, 5, 'rgba(37,99,235,0.08)'], [6, 7, 'rgba(37,99,235,0.16)']] });
    const sum = f.points.reduce((a, p) => a + Number(p.value), 0);
    forecastStats.replaceChildren(
      stat(`${tenant}, next 7 days`, meter === 'cost_usd' ? usd(sum) : number(sum), { testid: 'forecast-sum', value: sum }),
      stat('model', f.model, {
        testid: 'forecast-model',
        value: f.model,
        // An ensemble says what it is made of: each candidate and its weight.
        hint: f.members?.length > 1
          ? f.members.map((m) => `${m.model.replaceAll('_', ' ')} ${Math.round(m.weight * 100)} %`).join(' · ')
          : undefined,
      }),
      stat('backtest error (MAPE)', f.backtest?.mape_percent === null || f.backtest?.mape_percent === undefined ? '–' : percent(f.backtest.mape_percent), { testid: 'forecast-mape', value: f.backtest?.mape_percent }),
      stat('bias', f.backtest?.bias_percent === undefined ? '–' : percent(f.backtest.bias_percent)),
      stat('history', `${count(f.history_hours)} h`),
    );
    anomalies.fill(table([
      { label: 'hour', value: (a) => time(a.window_start) },
      { label: 'meter', value: (a) => a.meter },
      { label: 'observed', num: true, value: (a) => number(a.observed) },
      { label: 'expected', num: true, value: (a) => number(a.expected) },
      { label: 'direction', value: (a) => a.direction },
      { label: 'score', num: true, value: (a) => number(a.score) },
    ], scan.anomalies, { empty: `no anomalies for ${tenant} in the last 7 days`, testid: 'anomalies' }));
  }

  // The usage series is asked again after a checkpoint; the forecast and
  // the scan read closed hours only, so once a minute at most.
  refreshAll = () => Promise.all([
    ctx.whenChanged(`usage:${JSON.stringify(settings)}`, refreshUsage).catch((e) => series.error(e)),
    ctx.whenChanged(`forecast:${settings.meter}`, refreshForecast, { every: 60_000 }).catch((e) => forecast.error(e)),
  ]);
  return {
    refresh: refreshAll,
    destroy() {
      usageChart.destroy();
      forecastChart.destroy();
    },
  };
}

export default { title: 'Usage & forecast', interval: 5000, mount };
