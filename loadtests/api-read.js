// One read endpoint under load: VUS clients (default 50) send GET
// $BASE$TARGET with a bearer token as fast as answers come back, for
// DURATION. Driven by loadtests/api.sh, which prints p50/p95/p99.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  // Bodies are read off the socket but not turned into JS strings: k6
  // shares this machine's 2 cores with the server, and converting ~700 kB
  // usage answers would measure k6, not somaflow.
  discardResponseBodies: true,
  vus: Number(__ENV.VUS || 50),
  duration: __ENV.DURATION || '30s',
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: ['rate<0.01'],
  },
};

const params = {
  headers: { Authorization: `Bearer ${__ENV.TOKEN}` },
  tags: { name: __ENV.NAME || 'read' },
};

export default function () {
  const res = http.get(`${__ENV.BASE}${__ENV.TARGET}`, params);
  check(res, { 'status is 200': (r) => r.status === 200 });
}
