// Workflows (KAMACHIQ): a tenant's runs over the last 30 days
// (`/v1/kamachiq/summary`: runs, success rate, duration p50/p95, steps per
// run, retries, auto-approval rate, spend per run), workflow steps per hour,
// and the steps dispatch sent to each agent pool or refused, with why
// (`POST /v1/sql` over workflow_executions and dispatch's policy_decisions
// rows, which name their pool; scoped to the token's tenant like any SQL).

import { api, query, records, sql } from '../lib/api.js';
import { timeChart, seriesByGroup } from '../lib/charts.js';
import { count, duration, number, percent, usd, wholeMinute } from '../lib/format.js';
import { h, panel, stat, table } from '../lib/dom.js';

function mount(root, ctx) {
  const summary = panel('Runs, last 30 days', { wide: true });
  const steps = panel('Workflow steps per hour, last 7 days', { wide: true });
  const pools = panel('Agent pools, last 7 days', { wide: true, note: 'queued steps dispatch sent to each pool, and those it refused' });
  root.append(h('div', { class: 'grid' }, summary.element, steps.element, pools.element));
  const chart = timeChart(steps.body, { height: 220 });

  async function refreshSummary() {
    const tenant = ctx.oneTenant;
    if (!tenant) {
      summary.fill(h('p', { class: 'empty' }, 'no tenant to show'));
      return;
    }
    // Whole minutes: the same question for a minute, so its answer is kept.
    const to = Date.now() + 60_000;
    const s = await api(`/v1/kamachiq/summary?${query({ tenant, from: wholeMinute(to - 30 * 86_400_000), to: wholeMinute(to) })}`);
    summary.fill(h('p', { class: 'note' }, `tenant ${tenant}`), h('div', { class: 'stats' },
      stat('runs', count(s.runs), { testid: 'wf-runs', value: s.runs }),
      stat('success rate', percent(s.success_rate, { ratio: true }), { testid: 'wf-success', value: s.success_rate }),
      stat('duration p50', duration(s.duration_ms_p50), { testid: 'wf-p50', value: s.duration_ms_p50 }),
      stat('duration p95', duration(s.duration_ms_p95), { testid: 'wf-p95', value: s.duration_ms_p95 }),
      stat('steps per run', number(s.steps_per_run), { testid: 'wf-steps', value: s.steps_per_run }),
      stat('retries', count(s.retries), { testid: 'wf-retries', value: s.retries }),
      stat('auto-approved', percent(s.auto_approval_rate, { ratio: true }), { testid: 'wf-auto', value: s.auto_approval_rate, hint: 'quality score ≥ 0.8' }),
      stat('spend per run', usd(s.spend_per_run_usd), { testid: 'wf-spend-per-run', value: s.spend_per_run_usd }),
    ));
  }

  async function refreshSteps() {
    const to = Date.now() + 60_000;
    const answer = await api(`/v1/usage?${query({
      meter: 'workflow_steps', window: 'hour', group_by: ctx.tenant ? '' : 'tenant', tenant: ctx.tenant,
      from: wholeMinute(to - 7 * 86_400_000, { hour: true }), to: wholeMinute(to),
    })}`);
    const { x, series } = seriesByGroup(answer.rows, { limit: 6 });
    if (x.length) chart.update({ x, series });
  }

  async function refreshPools() {
    const since = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10);
    const tenant = ctx.tenant ? ` AND tenant_id = '${ctx.tenant}'` : '';
    // Dispatch's refusal rows name their pool in `action` (dispatch:<pool>):
    // two group-bys, no join.
    const answer = await sql(`
      SELECT pool, sum(queued) AS queued, sum(refused) AS refused, sum(over_budget) AS over_budget,
             sum(rate_limited) AS rate_limited, sum(policy_denied) AS policy_denied
      FROM (
        SELECT agent_pool AS pool, count(*) AS queued, 0 AS refused, 0 AS over_budget, 0 AS rate_limited, 0 AS policy_denied
        FROM workflow_executions WHERE status = 'queued' AND date >= '${since}'${tenant} GROUP BY agent_pool
        UNION ALL
        SELECT substr(action, 10) AS pool, 0, count(*),
               count(*) FILTER (WHERE reason = 'budget_exceeded'),
               count(*) FILTER (WHERE reason = 'rate_limited'),
               count(*) FILTER (WHERE reason = 'policy_denied')
        FROM policy_decisions WHERE policy_id LIKE 'dispatch.%' AND date >= '${since}'${tenant} GROUP BY 1
      ) GROUP BY pool ORDER BY queued DESC, pool`);
    const rows = records(answer).map((r) => ({ ...r, dispatched: r.queued - r.refused }));
    pools.fill(table([
      { label: 'pool', value: (r) => r.pool },
      { label: 'dispatched', num: true, value: (r) => count(r.dispatched), testid: (r) => `pool-dispatched-${r.pool}`, raw: (r) => r.dispatched },
      { label: 'refused', num: true, value: (r) => count(r.refused), testid: (r) => `pool-refused-${r.pool}`, raw: (r) => r.refused },
      { label: 'over budget', num: true, value: (r) => count(r.over_budget) },
      { label: 'rate limited', num: true, value: (r) => count(r.rate_limited) },
      { label: 'policy denied', num: true, value: (r) => count(r.policy_denied) },
    ], rows, { empty: 'no queued workflow steps in the last 7 days', testid: 'wf-pools' }));
  }

  return {
    refresh: () => Promise.all([
      ctx.whenChanged('summary', refreshSummary).catch((e) => summary.error(e)),
      ctx.whenChanged('steps', refreshSteps).catch((e) => steps.error(e)),
      ctx.whenChanged('pools', refreshPools).catch((e) => pools.error(e)),
    ]),
    destroy: () => chart.destroy(),
  };
}

export default { title: 'Workflows', interval: 5000, mount };
