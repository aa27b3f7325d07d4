// The console in a real browser: Debian's Chromium driven by playwright-core
// against a running somaflow node that `tests/it/console.rs` started and
// seeded. Every page loads without console errors; the numbers it shows are
// the API's answers to the same questions (and, where somaflow holds the
// same fact twice, the other copy: the lake's committed rows, the agent
// pools' queues); a tenant's token shows that tenant only; an event posted
// now is on the Live page, and its cost in the Spend page's budget, within
// 10 s. Screenshots of every page go to $SHOTS (an admin's first screen,
// and a tenant's whole page).
//
// Environment: BASE (the node's URL), ADMIN_TOKEN, TENANT_TOKEN, TENANT (the
// tenant token's tenant), ACCEPTED (events the seeding accepted), CHROMIUM,
// SHOTS (a folder). Exit code 0 when every check passes.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const { BASE, ADMIN_TOKEN, TENANT_TOKEN, TENANT, ACCEPTED, CHROMIUM, SHOTS } = process.env;
const PAGES = ['live', 'spend', 'usage', 'workflows', 'marketplace', 'sql'];
const TENANT_ID = /tenant-\d{4}/g;
mkdirSync(SHOTS, { recursive: true });

let failures = 0;
async function check(name, body) {
  const started = Date.now();
  try {
    await body();
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures += 1;
    console.log(`not ok - ${name}\n  ${String(e.stack || e).replaceAll('\n', '\n  ')}`);
  }
}

async function api(token, path, { method = 'GET', body, accept = 'application/json' } = {}) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: accept,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return accept.includes('json') ? JSON.parse(text) : text;
}

const minute = (ms) => new Date(ms).toISOString().replace(/:\d\d\.\d+Z$/, ':00Z');
const monthStart = () => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().replace(/\.\d+Z$/, 'Z');
};

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});

/** A browser tab signed in with `token`, recording console errors. */
async function openAs(token) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await context.addInitScript((t) => sessionStorage.setItem('somaflow.token', t), token);
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(`${BASE}/`);
  return page;
}

/** Opens page `id` and waits for its first data. */
async function show(page, id) {
  await page.goto(`${BASE}/#${id}`);
  await page.waitForSelector(`#page[data-page="${id}"][data-ready="true"]`, { timeout: 30_000 });
  const broken = await page.$$eval('.panel-status.error', (els) => els.map((e) => e.textContent));
  assert.deepEqual(broken, [], `panels of ${id} that failed`);
  assert.deepEqual(page.errors, [], `console errors on ${id}`);
}

const value = (page, testid) => page.getAttribute(`[data-testid="${testid}"]`, 'data-value');
const values = (page, prefix) => page.$$eval(`[data-testid^="${prefix}"]`, (els, p) =>
  Object.fromEntries(els.map((e) => [e.dataset.testid.slice(p.length), e.dataset.value])), prefix);

function conversation(id, tenant, inputTokens) {
  return {
    specversion: '1.0', id, source: '/console-test', type: 'soma.conversation.v1',
    time: new Date().toISOString(), tenantid: tenant,
    data: {
      user_id: 'user-console', session_id: 'session-console', provider: 'openai', model: 'gpt-4o',
      input_tokens: inputTokens, output_tokens: 1000, cached_input_tokens: 0, reasoning_tokens: 0,
      latency_ms: 900, status: 'ok',
    },
  };
}

const admin = await openAs(ADMIN_TOKEN);
const tenantPage = await openAs(TENANT_TOKEN);
let allTenants = [];

await check('every page loads for an admin token, without console errors', async () => {
  for (const id of PAGES) {
    await show(admin, id);
    // What a person sees on opening the page (the README shows two).
    await admin.waitForTimeout(300);
    await admin.screenshot({ path: `${SHOTS}/admin-${id}.png` });
  }
});

await check('Live shows what the node counted: events accepted, rows committed', async () => {
  await show(admin, 'live');
  assert.equal(Number(await value(admin, 'live-accepted')), Number(ACCEPTED));
  const committed = await values(admin, 'committed-');
  const lake = await api(ADMIN_TOKEN, '/v1/sql', { method: 'POST', body: { sql: 'SELECT count(*) FROM conversations' } });
  assert.equal(Number(committed.conversations), Number(lake.rows[0][0]), 'conversations committed = rows in the lake');
  const dead = await admin.$$('[data-testid="live-dead-letters"] tbody tr');
  assert.ok(dead.length > 0, 'the seeded malformed records are listed by reason');
});

await check('Spend shows the API\'s month-to-date cost per tenant and model, budgets and the ledger', async () => {
  await show(admin, 'spend');
  const to = minute(Date.now() + 60_000);
  const byTenant = await api(ADMIN_TOKEN, `/v1/usage?meter=cost_usd&window=month&group_by=tenant&from=${monthStart()}&to=${to}`);
  const shown = await values(admin, 'tenant-cost-');
  const expected = Object.fromEntries(byTenant.rows.map((r) => [r.group.tenant, r.value]));
  allTenants = Object.keys(expected).sort();
  assert.ok(allTenants.length >= 5, `seeded tenants have spend: ${allTenants}`);
  assert.deepEqual(shown, Object.fromEntries(Object.entries(expected).filter(([t]) => t in shown)));
  assert.equal(Object.keys(shown).length, Math.min(25, allTenants.length));
  const total = Object.values(expected).reduce((a, v) => a + Number(v), 0);
  assert.ok(Math.abs(Number(await value(admin, 'spend-total')) - total) < 1e-6);
  const byModel = await api(ADMIN_TOKEN, `/v1/usage?meter=cost_usd&window=month&group_by=model&from=${monthStart()}&to=${to}`);
  assert.deepEqual(await values(admin, 'model-cost-'), Object.fromEntries(byModel.rows.map((r) => [r.group.model, r.value])));
  for (const [tenant, spend] of Object.entries(await values(admin, 'budget-'))) {
    const budget = await api(ADMIN_TOKEN, `/v1/budgets/${tenant}`);
    assert.equal(spend, budget.spend_usd ?? '', `budget of ${tenant}`);
  }
  const first = allTenants[0];
  const ledger = await api(ADMIN_TOKEN, `/v1/billing/ledgers?tenant=${first}&period=${new Date().toISOString().slice(0, 7)}`);
  assert.equal(await value(admin, 'ledger-total'), ledger.totals.total_usd, `ledger of ${first}`);
});

await check('the ledger downloads as CSV with every line', async () => {
  const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('[data-testid="ledger-csv"]')]);
  const path = await download.path();
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync(path, 'utf8').trim().split('\r\n');
  const ledger = await api(ADMIN_TOKEN, `/v1/billing/ledgers?tenant=${allTenants[0]}&period=${new Date().toISOString().slice(0, 7)}`);
  assert.equal(lines.length, ledger.lines.length + 1, 'a header and one row per ledger line');
  assert.ok(lines[0].startsWith('category,item,'));
});

await check('Usage & forecast shows the API\'s forecast, its model and backtest error', async () => {
  await show(admin, 'usage');
  const forecast = await api(ADMIN_TOKEN, `/v1/forecasts?tenant=${allTenants[0]}&meter=cost_usd&horizon=7d`);
  assert.equal(await value(admin, 'forecast-model'), forecast.model);
  assert.equal(Number(await value(admin, 'forecast-mape')), forecast.backtest.mape_percent);
  const sum = forecast.points.reduce((a, p) => a + Number(p.value), 0);
  assert.ok(Math.abs(Number(await value(admin, 'forecast-sum')) - sum) < 1e-6);
  assert.ok(await admin.$('#page canvas'), 'the charts are drawn');
});

await check('Workflows shows the API\'s run summary, and each pool\'s dispatched steps are what its queue holds', async () => {
  await show(admin, 'workflows');
  const s = await api(ADMIN_TOKEN, `/v1/kamachiq/summary?tenant=${allTenants[0]}`);
  for (const [testid, field] of [['wf-runs', 'runs'], ['wf-success', 'success_rate'], ['wf-p50', 'duration_ms_p50'],
    ['wf-p95', 'duration_ms_p95'], ['wf-steps', 'steps_per_run'], ['wf-retries', 'retries'],
    ['wf-auto', 'auto_approval_rate'], ['wf-spend-per-run', 'spend_per_run_usd']]) {
    assert.equal(await value(admin, testid), s[field] === null ? null : String(s[field]), field);
  }
  const dispatched = await values(admin, 'pool-dispatched-');
  assert.ok(Object.keys(dispatched).length >= 3, `pools shown: ${JSON.stringify(dispatched)}`);
  for (const [pool, count] of Object.entries(dispatched)) {
    const queue = await api(ADMIN_TOKEN, `/v1/dispatch/${pool}?group=console-test&max=10000`);
    assert.equal(Number(count), queue.steps.length, `steps in the ${pool} queue`);
  }
});

await check('Marketplace shows the API\'s top capsules by runs, cost and revenue', async () => {
  await show(admin, 'marketplace');
  for (const by of ['runs', 'cost', 'revenue']) {
    const top = await api(ADMIN_TOKEN, `/v1/tenants/*/capsules/top?by=${by}&limit=10`);
    const field = { runs: 'runs', cost: 'cost_usd', revenue: 'revenue_usd' }[by];
    assert.deepEqual(await values(admin, `top-${by}-`), Object.fromEntries(top.capsules.map((c) => [c.capsule_id, String(c[field])])), by);
  }
  assert.ok((await admin.$$('[data-testid="payouts"] tbody tr')).length > 0, 'author payouts listed');
});

const SQL = 'SELECT tenant_id, count(*) AS conversations FROM conversations GROUP BY tenant_id ORDER BY tenant_id';

async function runSql(page) {
  await page.fill('[data-testid="sql-input"]', SQL);
  await page.click('[data-testid="sql-run"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="sql-summary"]')?.textContent.includes(' rows')
    && document.querySelector('.panel-body[data-state="done"]'));
  return page.$$eval('[data-testid="sql-result"] tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
}

await check('SQL shows the API\'s result for the same query', async () => {
  await show(admin, 'sql');
  const rows = await runSql(admin);
  const answer = await api(ADMIN_TOKEN, '/v1/sql', { method: 'POST', body: { sql: SQL } });
  assert.deepEqual(rows, answer.rows.map((r) => r.map(String)));
  assert.ok(rows.length >= 5);
});

await check('a tenant token\'s pages show that tenant only, without console errors', async () => {
  assert.ok(allTenants.includes(TENANT) && allTenants.length > 1, 'other tenants exist to leak');
  for (const id of PAGES) {
    await show(tenantPage, id);
    if (id === 'sql') assert.deepEqual((await runSql(tenantPage)).map((r) => r[0]), [TENANT]);
    else await tenantPage.waitForTimeout(500);
    const html = await tenantPage.content();
    const seen = new Set(html.match(TENANT_ID) ?? []);
    assert.deepEqual([...seen], [TENANT], `tenant ids on ${id}`);
    assert.deepEqual(tenantPage.errors, [], `console errors on ${id}`);
    await tenantPage.screenshot({ path: `${SHOTS}/tenant-${id}.png`, fullPage: true });
  }
});

await check('an event posted now is on the Live page within 10 s of its 202', async () => {
  await show(admin, 'live');
  const id = `console-live-${Date.now()}`;
  await api(ADMIN_TOKEN, '/v1/events', { method: 'POST', body: conversation(id, TENANT, 2000) });
  const accepted = Date.now();
  await admin.waitForFunction((want) => [...document.querySelectorAll('[data-testid="recent-id"]')]
    .some((e) => e.textContent === want), id, { timeout: 10_000 });
  console.log(`  shown ${Date.now() - accepted} ms after its 202`);
});

await check('a conversation posted now is in the Spend page\'s budget within 10 s of its 202', async () => {
  await show(tenantPage, 'spend');
  const before = Number(await value(tenantPage, `budget-${TENANT}`));
  const id = `console-spend-${Date.now()}`;
  await api(TENANT_TOKEN, '/v1/events', { method: 'POST', body: conversation(id, TENANT, 400_000) });
  const accepted = Date.now();
  // 400,000 input tokens of gpt-4o: $1.00 at $2.50 per million, plus output.
  await tenantPage.waitForFunction(([testid, floor]) =>
    Number(document.querySelector(`[data-testid="${testid}"]`)?.dataset.value) >= floor,
  [`budget-${TENANT}`, before + 1], { timeout: 10_000 });
  console.log(`  shown ${Date.now() - accepted} ms after its 202`);
});

await browser.close();
console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
