// The query API under load: VUS clients (default 50) each send, in turn,
// GET /v1/usage (30 days, hourly, by model), GET /v1/billing/ledgers (the
// month) and POST /v1/sql (a one-tenant aggregate), for DURATION. Per-route
// latency is tagged, so the summary splits p95 by endpoint.
import http from 'k6/http';
import { check } from 'k6';

const TENANT = __ENV.TENANT || 'tenant-0000';

export const options = {
  vus: Number(__ENV.VUS || 50),
  duration: __ENV.DURATION || '60s',
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:usage}': [`p(95)<${Number(__ENV.P95_MS || 100)}`],
    'http_req_duration{name:ledger}': [`p(95)<${Number(__ENV.P95_MS || 100)}`],
    'http_req_duration{name:sql}': [`p(95)<${Number(__ENV.SQL_P95_MS || 1000)}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

const auth = { Authorization: `Bearer ${__ENV.TOKEN}` };

function iso(date) {
  return `${date.toISOString().slice(0, 16)}:00Z`;
}

export default function () {
  const now = new Date();
  const to = iso(now);
  const from = iso(new Date(now.getTime() - 30 * 86400 * 1000));
  const period = now.toISOString().slice(0, 7);
  const pick = __ITER % 3;
  let res;
  if (pick === 0) {
    res = http.get(`${__ENV.BASE}/v1/usage?meter=tokens&window=hour&group_by=model&from=${from}&to=${to}`,
      { headers: auth, tags: { name: 'usage' } });
  } else if (pick === 1) {
    res = http.get(`${__ENV.BASE}/v1/billing/ledgers?tenant=${TENANT}&period=${period}`,
      { headers: auth, tags: { name: 'ledger' } });
  } else {
    const sql = "SELECT model, count(*) AS requests, sum(input_tokens + output_tokens) AS tokens FROM conversations GROUP BY model ORDER BY tokens DESC";
    res = http.post(`${__ENV.BASE}/v1/sql`, JSON.stringify({ sql }),
      { headers: Object.assign({ 'Content-Type': 'application/json' }, auth), tags: { name: 'sql' } });
  }
  check(res, { 'status is 200': (r) => r.status === 200 });
}
