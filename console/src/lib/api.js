// The console's one way to call somaflow's public API: the bearer token
// pasted once and kept in this browser session (sessionStorage, gone when
// the tab closes), JSON in and out, and errors as the API words them.

const TOKEN_KEY = 'somaflow.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  const trimmed = (value || '').trim().replace(/^Bearer\s+/i, '');
  if (trimmed) sessionStorage.setItem(TOKEN_KEY, trimmed);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer other than 2xx: the API's `{error: {code, message}}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls `path` on this node. `accept` other than JSON returns the text
 * (CSV); `body` is sent as JSON.
 */
export async function api(path, { method = 'GET', body, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (!response.ok) {
    let code = String(response.status);
    let message = response.statusText;
    try {
      const answer = await response.json();
      code = answer.error?.code ?? code;
      message = answer.error?.message ?? message;
    } catch {
      // Not the error shape (a proxy's page, say): keep the status.
    }
    throw new ApiError(response.status, code, message);
  }
  return accept.includes('json') ? response.json() : response.text();
}

/** A query string of the parameters that have a value. */
export function query(params) {
  const kept = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return new URLSearchParams(kept).toString();
}

/** `POST /v1/sql`, tenant-scoped by the token like any other caller's. */
export function sql(text) {
  return api('/v1/sql', { method: 'POST', body: { sql: text } });
}

/** A `{columns, rows}` answer as objects keyed by column. */
export function records(answer) {
  return answer.rows.map((row) => Object.fromEntries(answer.columns.map((c, i) => [c, row[i]])));
}
