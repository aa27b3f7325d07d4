// Building the page: elements, panels, tables, stat tiles and bars. Text
// always goes in as text (never as HTML), so nothing an event carries can
// run as script in the console.

/** An element: `h('td', {class: 'num'}, 'text', child)`. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

/** A titled panel; its body is where the content goes. */
export function panel(title, { wide = false, note } = {}) {
  const body = h('div', { class: 'panel-body' });
  const status = h('span', { class: 'panel-status' });
  const element = h('section', { class: wide ? 'panel wide' : 'panel' },
    h('header', {}, h('h2', {}, title), note ? h('span', { class: 'note' }, note) : null, status),
    body);
  return {
    element,
    body,
    /** Shows what went wrong in place of the content, keeping the last content. */
    error(err) {
      status.textContent = err ? `⚠ ${err.message || err}` : '';
      status.classList.toggle('error', Boolean(err));
    },
    fill(...children) {
      body.replaceChildren(...children.flat().filter(Boolean));
      this.error(null);
    },
  };
}

/** A big number with its label; `testid` and `value` let a test read it. */
export function stat(label, text, { testid, value, hint } = {}) {
  return h('div', { class: 'stat', 'data-testid': testid, 'data-value': value ?? undefined },
    h('div', { class: 'stat-value' }, text),
    h('div', { class: 'stat-label' }, label),
    hint ? h('div', { class: 'stat-hint' }, hint) : null);
}

/**
 * A table: `columns` as `{label, value: row => text, num?, testid?: row => id, raw?: row => value}`.
 */
export function table(columns, rows, { empty = 'nothing yet', testid } = {}) {
  if (!rows.length) return h('p', { class: 'empty', 'data-testid': testid }, empty);
  return h('table', { 'data-testid': testid },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : '' }, c.label)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c) => h('td', {
      class: c.num ? 'num' : '',
      'data-testid': c.testid ? c.testid(row) : undefined,
      'data-value': c.raw ? c.raw(row) : undefined,
    }, c.value(row)))))));
}

/** A horizontal bar of `fraction` (0..1) of the row's width. */
export function bar(fraction, { color } = {}) {
  const width = Math.max(0, Math.min(1, Number(fraction) || 0)) * 100;
  return h('div', { class: 'bar' }, h('div', { class: 'bar-fill', style: `width:${width}%${color ? `;background:${color}` : ''}` }));
}

/** A select of `options` (`[value, label]`), calling `onchange(value)`. */
export function select(options, selected, onchange, { label, testid } = {}) {
  const element = h('select', { 'data-testid': testid, onchange: (e) => onchange(e.target.value) },
    options.map(([value, text]) => h('option', { value, selected: value === selected }, text)));
  return label ? h('label', { class: 'field' }, label, element) : element;
}
