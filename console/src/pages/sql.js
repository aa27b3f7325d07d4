// SQL: a query box over the lake (`POST /v1/sql`): read-only, limited,
// and scoped to the token's tenant exactly as the API scopes any caller.
// The result is a table and a CSV download (the API's own CSV).

import { api, ApiError } from '../lib/api.js';
import { count, download } from '../lib/format.js';
import { h, panel } from '../lib/dom.js';

const EXAMPLES = [
  ['Cost per model', "SELECT model, count(*) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(rated_cost_usd) AS cost_usd\nFROM conversations GROUP BY model ORDER BY cost_usd DESC"],
  ['Newest usage minutes', 'SELECT * FROM usage_1m ORDER BY window_start DESC LIMIT 20'],
  ['Spend per day and model (rollup)', 'SELECT window_start AS day, model, sum(requests) AS requests, sum(cost_usd) AS cost_usd\nFROM rollup_1d GROUP BY 1, 2 ORDER BY day DESC, cost_usd DESC LIMIT 50'],
  ['Budget crossings', 'SELECT tenant_id, month, level, spend_usd, budget_usd, event_time FROM budget_events ORDER BY event_time DESC LIMIT 20'],
  ['Why events were dead-lettered', "SELECT split_part(reason, ':', 1) AS field, count(*) AS records FROM dead_letters GROUP BY 1 ORDER BY records DESC"],
];

/** Rows shown; the CSV holds all of them. */
const SHOWN = 500;

function mount(root) {
  const box = h('textarea', { rows: 6, spellcheck: 'false', 'data-testid': 'sql-input' });
  box.value = sessionStorage.getItem('somaflow.sql') ?? EXAMPLES[0][1];
  const result = panel('Result', { wide: true });
  const run = async () => {
    sessionStorage.setItem('somaflow.sql', box.value);
    result.body.dataset.state = 'running';
    try {
      const started = performance.now();
      const answer = await api('/v1/sql', { method: 'POST', body: { sql: box.value } });
      const ms = performance.now() - started;
      result.fill(
        h('p', { class: 'note', 'data-testid': 'sql-summary' }, `${count(answer.rows.length)} rows in ${Math.round(ms)} ms`),
        h('div', { class: 'scroll' }, h('table', { 'data-testid': 'sql-result' },
          h('thead', {}, h('tr', {}, answer.columns.map((c) => h('th', {}, c)))),
          h('tbody', {}, answer.rows.slice(0, SHOWN).map((row) => h('tr', {}, row.map((v) => h('td', {}, v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v)))))))),
      );
      result.body.dataset.state = 'done';
    } catch (e) {
      result.fill(h('p', { class: 'error', 'data-testid': 'sql-error' }, e instanceof ApiError ? `${e.code}: ${e.message}` : String(e)));
      result.body.dataset.state = 'failed';
    }
  };
  const csv = async () => {
    try {
      download('query.csv', await api('/v1/sql', { method: 'POST', body: { sql: box.value }, accept: 'text/csv' }));
    } catch (e) {
      result.error(e);
    }
  };
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run();
  });
  root.append(h('div', { class: 'grid' }, h('section', { class: 'panel wide' },
    h('header', {}, h('h2', {}, 'SQL'), h('span', { class: 'note' }, 'read-only; a tenant token sees its own rows only; Ctrl+Enter runs')),
    h('div', { class: 'panel-body' },
      h('div', { class: 'toolbar' },
        h('select', { onchange: (e) => { box.value = e.target.value; run(); } },
          h('option', { value: box.value }, 'examples…'),
          EXAMPLES.map(([title, text]) => h('option', { value: text }, title))),
        h('button', { type: 'button', onclick: run, 'data-testid': 'sql-run' }, 'run'),
        h('button', { type: 'button', onclick: csv, 'data-testid': 'sql-csv' }, 'download CSV')),
      box)),
  result.element));
  result.fill(h('p', { class: 'empty' }, 'Run a query (Ctrl+Enter): it reads the lake when asked, never on a timer.'));
  return { refresh: async () => {} };
}

// A query runs when asked, not on opening nor on a timer.
export default { title: 'SQL', interval: 0, mount };
