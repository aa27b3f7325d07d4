// Spend: month-to-date cost per tenant and per model (`/v1/usage`,
// cost_usd, from the closed minutes of usage_1m), each tenant's budget bar
// with its soft and hard lines (`/v1/budgets/{tenant}`, the live ledger
// budgets are enforced with), hourly spend over the last week, and a
// tenant's ledger for a month (`/v1/billing/ledgers`) with a CSV download.

import { api, query } from '../lib/api.js';
import { timeChart, seriesByGroup } from '../lib/charts.js';
import { count, csv, download, monthOf, monthStart, percent, usd, wholeMinute } from '../lib/format.js';
import { bar, h, panel, select, stat, table } from '../lib/dom.js';

/** How many tenants get a budget bar when every tenant is shown. */
const BUDGET_BARS = 12;

function mount(root, ctx) {
  const totals = panel('Month to date', { wide: true });
  const perTenant = panel('Cost per tenant', { note: 'this month' });
  const perModel = panel('Cost per model', { note: 'this month' });
  const budgets = panel('Budgets', { wide: true, note: 'month-to-date spend against the monthly budget; soft and hard lines' });
  const hourly = panel('Spend per hour, last 7 days', { wide: true });
  const ledger = panel('Ledger', { wide: true });
  root.append(h('div', { class: 'grid' },
    totals.element, ctx.tenant ? null : perTenant.element, perModel.element,
    budgets.element, hourly.element, ledger.element));
  const chart = timeChart(hourly.body, { money: true, height: 240 });
  let period = monthOf();
  let tenants = [];

  const usage = (params) => api(`/v1/usage?${query({ meter: 'cost_usd', tenant: ctx.tenant, ...params })}`);
  const to = () => wholeMinute(new Date(Date.now() + 60_000));

  async function refreshMonth() {
    const from = wholeMinute(monthStart());
    const [byTenant, byModel] = await Promise.all([
      usage({ window: 'month', group_by: 'tenant', from, to: to() }),
      usage({ window: 'month', group_by: 'model', from, to: to() }),
    ]);
    const tenants = byTenant.rows.map((r) => ({ tenant: r.group.tenant, value: r.value }))
      .sort((a, b) => Number(b.value) - Number(a.value));
    const total = tenants.reduce((sum, t) => sum + Number(t.value), 0);
    totals.fill(h('div', { class: 'stats' },
      stat(ctx.tenant ? `${ctx.tenant}, this month` : 'all tenants, this month', usd(total), { testid: 'spend-total', value: total }),
      stat('tenants with spend', count(tenants.length)),
      stat('models', count(byModel.rows.length)),
    ));
    const top = Number(tenants[0]?.value ?? 0) || 1;
    perTenant.fill(table([
      { label: 'tenant', value: (r) => r.tenant },
      { label: '', value: (r) => bar(Number(r.value) / top) },
      { label: 'cost', num: true, value: (r) => usd(r.value), testid: (r) => `tenant-cost-${r.tenant}`, raw: (r) => r.value },
    ], tenants.slice(0, 25), { empty: 'no spend this month', testid: 'spend-tenants' }));
    const models = byModel.rows.map((r) => ({ model: r.group.model, value: r.value }))
      .sort((a, b) => Number(b.value) - Number(a.value));
    const topModel = Number(models[0]?.value ?? 0) || 1;
    perModel.fill(table([
      { label: 'model', value: (r) => r.model },
      { label: '', value: (r) => bar(Number(r.value) / topModel) },
      { label: 'cost', num: true, value: (r) => usd(r.value), testid: (r) => `model-cost-${r.model}`, raw: (r) => r.value },
    ], models, { empty: 'no spend this month', testid: 'spend-models' }));
    return tenants;
  }

  async function refreshBudgets() {
    const names = ctx.tenant ? [ctx.tenant] : tenants.slice(0, BUDGET_BARS).map((t) => t.tenant);
    const answers = await Promise.all(names.map((t) =>
      api(`/v1/budgets/${encodeURIComponent(t)}`).catch((e) => ({ tenant: t, error: e }))));
    budgets.fill(answers.length ? h('div', { class: 'budgets', 'data-testid': 'budgets' }, answers.map(budgetBar)) : h('p', { class: 'empty' }, 'no tenant has spend this month'));
  }

  async function refreshHourly() {
    const now = Date.now();
    const answer = await usage({ window: 'hour', group_by: 'model', from: wholeMinute(now - 7 * 86_400_000, { hour: true }), to: to() });
    const { x, series } = seriesByGroup(answer.rows, { limit: 6 });
    if (x.length) chart.update({ x, series });
  }

  async function refreshLedger() {
    const tenant = ctx.oneTenant;
    if (!tenant) {
      ledger.fill(h('p', { class: 'empty' }, 'no tenant to show a ledger for'));
      return;
    }
    const answer = await api(`/v1/billing/ledgers?${query({ tenant, period })}`);
    const months = [0, 1, 2, 3].map((back) => {
      const d = monthStart();
      d.setUTCMonth(d.getUTCMonth() - back);
      return monthOf(d);
    });
    const columns = ['category', 'item', 'provider', 'price_id', 'price_tier', 'meter', 'quantity', 'unit', 'unit_price_usd', 'amount_usd'];
    const lines = [...answer.lines].sort((a, b) => Number(b.amount_usd) - Number(a.amount_usd));
    ledger.fill(
      h('div', { class: 'toolbar' },
        select(months.map((m) => [m, m]), period, (m) => { period = m; showLedger().catch((e) => ledger.error(e)); }, { label: 'month', testid: 'ledger-month' }),
        h('span', {}, `tenant ${tenant}`),
        h('button', {
          type: 'button',
          'data-testid': 'ledger-csv',
          onclick: () => download(`ledger-${tenant}-${period}.csv`, csv(columns, answer.lines.map((l) => columns.map((c) => l[c])))),
        }, 'download CSV')),
      h('div', { class: 'stats' },
        stat('owed', usd(answer.totals.total_usd), { testid: 'ledger-total', value: answer.totals.total_usd }),
        stat('LLM', usd(answer.totals.llm_usd)),
        stat('capsule runs', usd(answer.totals.capsule_runs_usd)),
        stat('marketplace', usd(Number(answer.totals.marketplace_purchases_usd) - Number(answer.totals.marketplace_refunds_usd))),
        stat('unpriced requests', count(answer.unpriced_requests))),
      table([
        { label: 'category', value: (l) => l.category },
        { label: 'item', value: (l) => l.item },
        { label: 'meter', value: (l) => l.meter },
        { label: 'quantity', num: true, value: (l) => `${l.quantity} ${l.unit}` },
        { label: 'unit price', num: true, value: (l) => (l.unit_price_usd === null ? '' : usd(l.unit_price_usd)) },
        { label: 'amount', num: true, value: (l) => usd(l.amount_usd) },
      ], lines.slice(0, 50), { empty: 'no ledger lines this month', testid: 'ledger-lines' }),
      lines.length > 50 ? h('p', { class: 'note' }, `… ${count(lines.length - 50)} more lines in the CSV`) : null,
    );
  }

  const showLedger = () => ctx.whenChanged(`ledger:${ctx.oneTenant}:${period}`, refreshLedger);
  return {
    async refresh() {
      // Cost per tenant and model, the hourly chart and the ledger read the
      // lake (asked again after a checkpoint); budgets read the live ledger.
      await ctx.whenChanged('month', async () => { tenants = await refreshMonth(); }).catch((e) => totals.error(e));
      await Promise.all([
        refreshBudgets().catch((e) => budgets.error(e)),
        ctx.whenChanged('hourly', refreshHourly).catch((e) => hourly.error(e)),
        showLedger().catch((e) => ledger.error(e)),
      ]);
    },
    destroy: () => chart.destroy(),
  };
}

/** One tenant's budget: spend against the budget, with the soft line. */
function budgetBar(b) {
  if (b.error) return h('div', { class: 'budget' }, h('div', { class: 'budget-name' }, b.tenant), h('span', { class: 'note' }, b.error.message));
  const spend = Number(b.spend_usd ?? 0);
  const limit = Number(b.budget_usd ?? 0);
  const scale = Math.max(limit * 1.25, spend, 1e-9);
  const status = { ok: 'ok', soft_exceeded: 'warn', hard_exceeded: 'bad', no_budget: 'none' }[b.status] ?? 'none';
  return h('div', { class: `budget ${status}`, 'data-testid': `budget-${b.tenant}`, 'data-value': b.spend_usd ?? '' },
    h('div', { class: 'budget-name' }, b.tenant),
    h('div', { class: 'budget-track' },
      h('div', { class: 'budget-fill', style: `width:${Math.min(100, (spend / scale) * 100)}%` }),
      limit ? h('div', { class: 'budget-line soft', title: `soft ${b.soft_percent}%`, style: `left:${((limit * b.soft_percent) / 100 / scale) * 100}%` }) : null,
      limit ? h('div', { class: 'budget-line hard', title: 'hard 100%', style: `left:${(limit / scale) * 100}%` }) : null),
    h('div', { class: 'budget-text' },
      limit ? `${usd(b.spend_usd)} of ${usd(b.budget_usd)} (${percent(b.percent_used)})` : `${usd(b.spend_usd)}, no budget`,
      h('span', { class: `badge ${status}` }, b.status.replace('_', ' '))));
}

export default { title: 'Spend', interval: 5000, mount };
