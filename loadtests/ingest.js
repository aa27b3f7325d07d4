// HTTP ingestion under load: POST /v1/events with BATCH events per request
// (1, 100 or 500), up to VUS (default 1000) virtual users, ramping then
// holding. Thresholds: error rate < 1% and p95 below P95_MS (default 500 ms,
// the platform's original goal). Driven by loadtests/run.sh.
//
//   BASE=http://127.0.0.1:8080 TOKEN=… BATCH=500 VUS=1000 k6 run loadtests/ingest.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { bodyMaker } from './lib/events.js';

const BATCH = Number(__ENV.BATCH || 1);
const VUS = Number(__ENV.VUS || 1000);
const RAMP = __ENV.RAMP || '30s';
const HOLD = __ENV.HOLD || '60s';
const P95_MS = Number(__ENV.P95_MS || 500);

const accepted = new Counter('events_accepted');
const refused = new Counter('events_refused');

// Without RATE: closed loop, VUs ramping 1 → VUS, each sending as fast as
// answers come (finds the saturation throughput; latency is then VUs /
// throughput, by Little's law). With RATE (events/s): open loop, requests
// arriving at RATE / BATCH per second after a ramp, served by up to VUS
// virtual users (latency at a given load).
const RATE = Number(__ENV.RATE || 0);
const scenario = RATE > 0
  ? {
    executor: 'ramping-arrival-rate',
    startRate: 1,
    timeUnit: '1s',
    preAllocatedVUs: Math.min(VUS, 100),
    maxVUs: VUS,
    stages: [
      { duration: RAMP, target: Math.ceil(RATE / BATCH) },
      { duration: HOLD, target: Math.ceil(RATE / BATCH) },
    ],
    gracefulStop: '10s',
  }
  : {
    executor: 'ramping-vus',
    startVUs: 1,
    stages: [
      { duration: RAMP, target: VUS },
      { duration: HOLD, target: VUS },
    ],
    gracefulRampDown: '10s',
    gracefulStop: '10s',
  };

export const options = {
  scenarios: { ingest: scenario },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(95)<${P95_MS}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  discardResponseBodies: false,
};

const makeBody = bodyMaker(BATCH);
const headers = __ENV.TOKEN ? { Authorization: `Bearer ${__ENV.TOKEN}` } : {};

export default function () {
  const { body: payload, contentType } = makeBody(`k6-${__VU}-${__ITER}-${Date.now()}`);
  const res = http.post(`${__ENV.BASE}/v1/events`, payload, {
    headers: Object.assign({ 'Content-Type': contentType }, headers),
    tags: { name: 'POST /v1/events' },
  });
  const ok = check(res, { 'accepted (202)': (r) => r.status === 202 });
  if (ok) {
    const n = res.json('accepted');
    accepted.add(typeof n === 'number' ? n : 0);
    refused.add(BATCH - (typeof n === 'number' ? n : 0));
  } else {
    refused.add(BATCH);
  }
}
