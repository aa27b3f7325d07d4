// How numbers, money and times read in the console, and CSV downloads.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** A count: 1,234,567. */
export function count(n) {
  return n === null || n === undefined || Number.isNaN(Number(n)) ? '–' : integer.format(Number(n));
}

/** A number with up to two decimals. */
export function number(n) {
  return n === null || n === undefined || Number.isNaN(Number(n)) ? '–' : decimal.format(Number(n));
}

/**
 * Dollars from the API's exact decimal string (or a number): cents, or
 * four places for a nonzero amount under a cent so it never reads as $0.00.
 */
export function usd(value) {
  if (value === null || value === undefined || value === '') return '–';
  const n = Number(value);
  if (Number.isNaN(n)) return String(value);
  const small = n !== 0 && Math.abs(n) < 0.01;
  return n.toLocaleString('en-US', {
    style: 'currency',
    currency: 'USD',
    minimumFractionDigits: small ? 4 : 2,
    maximumFractionDigits: small ? 4 : 2,
  });
}

/** A ratio (0.42) or a percentage (42) as "42.0%". */
export function percent(value, { ratio = false } = {}) {
  if (value === null || value === undefined) return '–';
  const n = Number(value) * (ratio ? 100 : 1);
  return `${n.toFixed(1)}%`;
}

/** Milliseconds as "850 ms", "12.3 s" or "4 min". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '–';
  const n = Number(ms);
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 120_000) return `${(n / 1000).toFixed(1)} s`;
  if (n < 7_200_000) return `${Math.round(n / 60_000)} min`;
  return `${(n / 3_600_000).toFixed(1)} h`;
}

/** A time (Date, ms, or RFC 3339 text) as "2026-12-06 13:05:02" UTC. */
export function time(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** RFC 3339 on a whole minute (or hour), as the API's `from`/`to` take. */
export function wholeMinute(date, { hour = false } = {}) {
  const d = new Date(date);
  d.setUTCSeconds(0, 0);
  if (hour) d.setUTCMinutes(0);
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The first instant of `date`'s UTC month, and its `YYYY-MM`. */
export function monthStart(date = new Date()) {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}

export function monthOf(date = new Date()) {
  return date.toISOString().slice(0, 7);
}

/** Rows as CSV (RFC 4180 quoting). */
export function csv(columns, rows) {
  const cell = (v) => {
    const text = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [columns, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** Saves `text` as a file the browser downloads. */
export function download(filename, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
