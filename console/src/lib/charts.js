// Charts, drawn by uPlot (npm `uplot`, vendored in console/vendor and
// loaded as the global `uPlot`): time series with optional bands (the
// forecast's intervals) and marked points (anomalies). One chart object per
// panel; new data replaces the old without rebuilding when the series stay
// the same, so a refresh every few seconds does not flicker.

export const PALETTE = ['#2563eb', '#db2777', '#059669', '#d97706', '#7c3aed', '#0891b2', '#dc2626', '#4b5563'];

/**
 * A time-series chart in `container`. `update({x, series, bands, yLabel})`:
 * `x` in seconds, each series `{label, values, color?, dash?, points?, fill?}`;
 * `bands` as `[[upperIndex, lowerIndex, fill]]` (1-based series indexes).
 */
export function timeChart(container, { height = 260, money = false } = {}) {
  let plot = null;
  let shape = '';
  const width = () => Math.max(320, container.clientWidth - 8);
  const format = money
    ? (v) => (v === null ? '' : `$${Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 })}`)
    : (v) => (v === null ? '' : Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 }));
  const observer = new ResizeObserver(() => plot && plot.setSize({ width: width(), height }));
  observer.observe(container);

  return {
    update({ x, series, bands = [] }) {
      const key = JSON.stringify([series.map((s) => [s.label, !!s.points]), bands]);
      const data = [x, ...series.map((s) => s.values)];
      if (plot && key === shape) {
        plot.setData(data);
        return;
      }
      plot?.destroy();
      shape = key;
      plot = new uPlot({
        width: width(),
        height,
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: s.color ?? PALETTE[i % PALETTE.length],
            width: s.points ? 0 : 2,
            dash: s.dash,
            fill: s.fill,
            paths: s.points ? () => null : undefined,
            points: s.points ? { show: true, size: 9, fill: s.color, stroke: s.color } : { show: false },
            value: (_, v) => format(v),
          })),
        ],
        bands: bands.map(([upper, lower, fill]) => ({ series: [upper, lower], fill })),
        axes: [{}, { values: (_, ticks) => ticks.map(format), size: 70 }],
        scales: { x: { time: true } },
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
      }, data, container);
    },
    destroy() {
      observer.disconnect();
      plot?.destroy();
      plot = null;
    },
  };
}

/**
 * Rows of `{window_start, group, value}` (the usage API's answer) as
 * aligned series, the `limit` largest groups by total, the rest summed
 * as "other".
 */
export function seriesByGroup(rows, { limit = 8 } = {}) {
  const groupName = (g) => Object.values(g || {}).join(' · ') || 'all';
  const totals = new Map();
  for (const r of rows) totals.set(groupName(r.group), (totals.get(groupName(r.group)) ?? 0) + Number(r.value));
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([name]) => name);
  const kept = new Set(ranked.slice(0, limit));
  const times = [...new Set(rows.map((r) => Date.parse(r.window_start) / 1000))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const names = [...ranked.slice(0, limit), ...(ranked.length > limit ? ['other'] : [])];
  // A window the API leaves out had no usage: 0, not a gap.
  const values = new Map(names.map((n) => [n, new Array(times.length).fill(0)]));
  for (const r of rows) {
    const name = kept.has(groupName(r.group)) ? groupName(r.group) : 'other';
    const column = values.get(name);
    const i = index.get(Date.parse(r.window_start) / 1000);
    column[i] = (column[i] ?? 0) + Number(r.value);
  }
  return { x: times, series: names.map((label) => ({ label, values: values.get(label) })), totals };
}
