// Marketplace: the top capsules by runs, cost and revenue over the last 30
// days (`/v1/tenants/{tenant}/capsules/top`; tenant `*`, every tenant, for
// a token bound to none) and author payouts (`POST /v1/sql` over
// marketplace_transactions, tenant-scoped like any SQL).

import { api, query, records, sql } from '../lib/api.js';
import { count, usd, wholeMinute } from '../lib/format.js';
import { bar, h, panel, table } from '../lib/dom.js';

const BY = [['runs', 'Top capsules by runs'], ['cost', 'by cost'], ['revenue', 'by revenue']];

function mount(root, ctx) {
  const boards = BY.map(([by, title]) => ({ by, panel: panel(title, { note: 'last 30 days' }) }));
  const payouts = panel('Author payouts', { wide: true, note: 'last 30 days, marketplace transactions' });
  root.append(h('div', { class: 'grid three' }, boards.map((b) => b.panel.element)), h('div', { class: 'grid' }, payouts.element));

  async function refreshBoard({ by, panel: p }) {
    const tenant = ctx.tenant ?? (ctx.admin ? '*' : ctx.oneTenant);
    // Whole minutes: the same question for a minute, so its answer is kept.
    const to = Date.now() + 60_000;
    const answer = await api(`/v1/tenants/${encodeURIComponent(tenant)}/capsules/top?${query({ by, limit: 10, from: wholeMinute(to - 30 * 86_400_000), to: wholeMinute(to) })}`);
    const value = (c) => (by === 'runs' ? Number(c.runs) : Number(by === 'cost' ? c.cost_usd : c.revenue_usd));
    const top = Math.max(...answer.capsules.map(value), 1e-9);
    p.fill(table([
      { label: 'capsule', value: (c) => c.capsule_id },
      { label: '', value: (c) => bar(value(c) / top) },
      {
        label: by,
        num: true,
        value: (c) => (by === 'runs' ? count(c.runs) : usd(by === 'cost' ? c.cost_usd : c.revenue_usd)),
        testid: (c) => `top-${by}-${c.capsule_id}`,
        raw: (c) => (by === 'runs' ? c.runs : by === 'cost' ? c.cost_usd : c.revenue_usd),
      },
    ], answer.capsules, { empty: 'no capsule activity', testid: `top-${by}` }));
  }

  async function refreshPayouts() {
    const since = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);
    const tenant = ctx.tenant ? ` AND tenant_id = '${ctx.tenant}'` : '';
    const answer = await sql(`
      SELECT author_id,
             count(*) FILTER (WHERE tx_type = 'payout') AS payouts,
             sum(CASE WHEN tx_type = 'payout' THEN amount_cents ELSE 0 END) AS payout_cents,
             sum(CASE WHEN tx_type = 'purchase' THEN amount_cents WHEN tx_type = 'refund' THEN -amount_cents ELSE 0 END) AS revenue_cents
      FROM marketplace_transactions
      WHERE currency = 'USD' AND date >= '${since}'${tenant}
      GROUP BY author_id ORDER BY payout_cents DESC, author_id LIMIT 20`);
    payouts.fill(table([
      { label: 'author', value: (r) => r.author_id },
      { label: 'payouts', num: true, value: (r) => count(r.payouts) },
      { label: 'paid', num: true, value: (r) => usd(Number(r.payout_cents) / 100), testid: (r) => `payout-${r.author_id}`, raw: (r) => r.payout_cents },
      { label: 'net sales', num: true, value: (r) => usd(Number(r.revenue_cents) / 100) },
    ], records(answer), { empty: 'no marketplace transactions in the last 30 days', testid: 'payouts' }));
  }

  return {
    refresh: () => Promise.all([
      ...boards.map((b) => ctx.whenChanged(`top-${b.by}`, () => refreshBoard(b)).catch((e) => b.panel.error(e))),
      ctx.whenChanged('payouts', refreshPayouts).catch((e) => payouts.error(e)),
    ]),
  };
}

export default { title: 'Marketplace', interval: 5000, mount };
