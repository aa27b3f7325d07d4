// The console's shell: who the token is, which tenant is shown, the pages
// and their refresh. Each page module exports `{title, interval, mount}`;
// `mount(root, ctx)` builds the page and returns `{refresh, destroy}`.
// Refreshes run every `interval` ms (at most 5 s), never two at once, and
// pause while the tab is hidden.

import { api, ApiError, setToken, token } from './lib/api.js';
import { monthStart, time, wholeMinute } from './lib/format.js';
import { h } from './lib/dom.js';
import live from './pages/live.js';
import spend from './pages/spend.js';
import usage from './pages/usage.js';
import workflows from './pages/workflows.js';
import marketplace from './pages/marketplace.js';
import sqlPage from './pages/sql.js';

const PAGES = { live, spend, usage, workflows, marketplace, sql: sqlPage };
const ALL = '';

const state = { me: null, tenants: [], tenant: ALL, page: null, timer: null, busy: false, generation: 0, epoch: null, ready: null };

function banner(message) {
  const element = document.getElementById('banner');
  element.hidden = !message;
  element.textContent = message || '';
}

/** Who the token is; a 401 asks for a token. */
async function whoAmI() {
  try {
    state.me = await api('/v1/me');
    banner('');
  } catch (e) {
    state.me = null;
    if (e instanceof ApiError && e.status === 401) {
      document.getElementById('token-form').hidden = false;
      banner(token()
        ? `The token was refused: ${e.message}. Paste another (somaflow token mints one).`
        : 'This node checks tokens: paste a bearer token to see its data (somaflow token mints one).');
    } else {
      banner(`The node does not answer: ${e.message}`);
    }
  }
  const identity = document.getElementById('identity');
  if (!state.me) identity.textContent = 'no token';
  else if (!state.me.auth) identity.textContent = 'auth off (localhost): admin';
  else identity.textContent = `${state.me.subject} · ${state.me.tenant ?? 'all tenants'} · ${state.me.scopes.join(' ')}`;
}

/** The tenants an unbound token may pick: those with usage in the last 35 days. */
async function loadTenants() {
  const picker = document.getElementById('tenant-picker');
  picker.replaceChildren();
  if (!state.me) return;
  if (state.me.tenant) {
    state.tenant = state.me.tenant;
    state.tenants = [state.me.tenant];
    return;
  }
  try {
    const to = new Date(Date.now() + 60_000);
    const from = new Date(Math.min(to.getTime() - 35 * 86_400_000, monthStart().getTime()));
    const answer = await api(`/v1/usage?meter=requests&window=month&group_by=tenant&from=${wholeMinute(from)}&to=${wholeMinute(to)}`);
    state.tenants = [...new Set(answer.rows.map((r) => r.group.tenant))].sort();
  } catch {
    state.tenants = [];
  }
  const remembered = sessionStorage.getItem('somaflow.tenant') ?? ALL;
  state.tenant = state.tenants.includes(remembered) ? remembered : ALL;
  picker.append(h('label', { class: 'field' }, 'tenant',
    h('select', {
      'data-testid': 'tenant-select',
      onchange: (e) => {
        state.tenant = e.target.value;
        sessionStorage.setItem('somaflow.tenant', state.tenant);
        show();
      },
    }, h('option', { value: ALL }, 'all tenants'),
    state.tenants.map((t) => h('option', { value: t, selected: t === state.tenant }, t)))));
}

/**
 * Whether a panel reading the lake or ClickHouse should ask again: rows
 * change only when a checkpoint publishes them, so it asks when `/ready`
 * names a newer checkpoint than its last answer was read after (and at
 * least once a minute, for rows another worker published). `every` sets a
 * longer floor for answers that change slowly (a forecast over closed
 * hours).
 */
function changedSince(seen) {
  return async (key, fetchAndShow, { every = 0 } = {}) => {
    const last = seen.get(key);
    const now = Date.now();
    if (last && (now - last.at < every || (last.epoch === state.epoch && now - last.at < 60_000))) return;
    const epoch = state.epoch;
    await fetchAndShow();
    seen.set(key, { epoch, at: now });
  };
}

function context() {
  return {
    me: state.me,
    /** The tenant shown, or null for every tenant the token may see. */
    tenant: state.tenant || null,
    /** A tenant for questions about one: the chosen one, else the first. */
    oneTenant: state.tenant || state.tenants[0] || null,
    tenants: state.tenants,
    admin: Boolean(state.me && state.me.tenant === null),
    /** Builds the page again (a setting that changes its layout). */
    remount: show,
    /** This tick's `/ready` answer (null when the node did not answer). */
    ready: () => state.ready,
    /** Runs a panel's query only when new rows may be there ([`changedSince`]). */
    whenChanged: changedSince(new Map()),
  };
}

function navigation(current) {
  const nav = document.getElementById('nav');
  nav.replaceChildren(...Object.entries(PAGES).map(([id, page]) =>
    h('a', { href: `#${id}`, class: id === current ? 'active' : '', 'data-testid': `nav-${id}` }, page.title)));
}

async function refresh() {
  if (!state.page || state.busy || document.hidden) return;
  state.busy = true;
  try {
    // The newest checkpoint: lake-backed panels ask again only after one.
    state.ready = await fetch('/ready', { cache: 'no-store' }).then((r) => r.json()).catch(() => null);
    state.epoch = state.ready?.last_checkpoint ?? state.epoch;
    await state.page.refresh();
    document.getElementById('updated').textContent = `updated ${time(new Date())}`;
  } catch (e) {
    banner(`Refresh failed: ${e.message}`);
  } finally {
    state.busy = false;
  }
}

/** Mounts the page the URL names and starts its refresh. */
function show() {
  const id = (location.hash.slice(1) || 'live').split('?')[0];
  const page = PAGES[id] ?? live;
  navigation(PAGES[id] ? id : 'live');
  clearInterval(state.timer);
  state.page?.destroy?.();
  const root = document.getElementById('page');
  root.replaceChildren();
  root.dataset.page = PAGES[id] ? id : 'live';
  root.dataset.ready = 'false';
  if (!state.me) {
    root.append(h('p', { class: 'empty' }, 'Paste a token above to see this node.'));
    return;
  }
  state.page = page.mount(root, context());
  state.busy = false;
  // `data-ready` tells a watcher (the browser test) the first data is in.
  const generation = ++state.generation;
  refresh().then(() => {
    if (generation === state.generation) root.dataset.ready = 'true';
  });
  if (page.interval) state.timer = setInterval(refresh, Math.min(page.interval, 5000));
}

async function start() {
  document.getElementById('token-button').addEventListener('click', () => {
    const form = document.getElementById('token-form');
    form.hidden = !form.hidden;
  });
  document.getElementById('token-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    setToken(document.getElementById('token-input').value);
    document.getElementById('token-input').value = '';
    document.getElementById('token-form').hidden = true;
    await whoAmI();
    await loadTenants();
    show();
  });
  document.getElementById('token-clear').addEventListener('click', async () => {
    setToken('');
    await whoAmI();
    await loadTenants();
    show();
  });
  document.addEventListener('visibilitychange', refresh);
  window.addEventListener('hashchange', show);
  await whoAmI();
  await loadTenants();
  show();
}

start();
