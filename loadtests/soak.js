// Soak: a steady arrival rate of RATE requests/s (default 20) of BATCH
// events (default 100) for DURATION (default 30m). Latency is kept apart for
// the first and the last WINDOW (default 5m) so loadtests/run.sh can compare
// p99 at the start and the end; it also samples the server's RSS.
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { body } from './lib/events.js';

const BATCH = Number(__ENV.BATCH || 100);
const RATE = Number(__ENV.RATE || 20);
const DURATION = __ENV.DURATION || '30m';
const WINDOW_S = Number(__ENV.WINDOW_S || 300);

function seconds(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`DURATION ${text}: use 30s, 30m, 1h`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}
const TOTAL_S = seconds(DURATION);

const accepted = new Counter('events_accepted');
const firstWindow = new Trend('latency_first_window', true);
const lastWindow = new Trend('latency_last_window', true);

export const options = {
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(10, RATE * 2),
      maxVUs: Math.max(50, RATE * 10),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    http_req_duration: [`p(99)<${Number(__ENV.P99_MS || 500)}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

const headers = __ENV.TOKEN ? { Authorization: `Bearer ${__ENV.TOKEN}` } : {};

export function setup() {
  return { started: Date.now() };
}

export default function (data) {
  const { body: payload, contentType } = body(`soak-${__VU}-${__ITER}-${Date.now()}`, BATCH);
  const res = http.post(`${__ENV.BASE}/v1/events`, payload, {
    headers: Object.assign({ 'Content-Type': contentType }, headers),
    tags: { name: 'POST /v1/events' },
  });
  if (check(res, { 'accepted (202)': (r) => r.status === 202 })) {
    accepted.add(res.json('accepted') || 0);
  }
  const elapsed = (Date.now() - data.started) / 1000;
  if (elapsed < WINDOW_S) firstWindow.add(res.timings.duration);
  if (elapsed > TOTAL_S - WINDOW_S) lastWindow.add(res.timings.duration);
}
