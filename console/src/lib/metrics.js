// Reading the node's own Prometheus exposition (`GET /metrics`, the same
// numbers a Prometheus server would scrape) into samples the Live page
// sums and differences.

/** `[{name, labels, value}]` of every sample in the text. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

/** The samples of one metric, indexed for quick questions. */
export class Metrics {
  constructor(text) {
    this.samples = parseMetrics(text);
  }

  /** Every sample of `name` whose labels include `where`. */
  select(name, where = {}) {
    return this.samples.filter((s) => s.name === name
      && Object.entries(where).every(([k, v]) => s.labels[k] === v));
  }

  /** The sum of `name` over the samples matching `where` (null if none). */
  sum(name, where = {}) {
    const found = this.select(name, where);
    return found.length ? found.reduce((total, s) => total + s.value, 0) : null;
  }

  /** `name` summed per value of label `by`. */
  by(name, by, where = {}) {
    const totals = {};
    for (const s of this.select(name, where)) {
      const key = s.labels[by] ?? '';
      totals[key] = (totals[key] ?? 0) + s.value;
    }
    return totals;
  }
}
