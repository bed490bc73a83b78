// Small DOM helpers for the apps' scripts.

/**
 * The element with an id. Given its class (`$('x', HTMLInputElement)`), it is
 * checked to be one, and the type checker knows it is.
 * @template {Element} [T=HTMLElement]
 * @param {string} id
 * @param {abstract new (...args: any[]) => T} [type]
 * @returns {T}
 */
export function $(id, type) {
  const el = document.getElementById(id);
  if (type && el && !(el instanceof type)) throw new TypeError(`#${id} is not a ${type.name}`);
  return /** @type {T} */ (/** @type {unknown} */ (el));
}

/** @typedef {Node | string | null | undefined | false} Child null, undefined and false are left out */

/**
 * @param {Child} child
 * @returns {child is Node | string}
 */
const present = (child) => child !== null && child !== undefined && child !== false;

/**
 * Creates an element: h('td', {className: 'x', dataset: {testid: 'y'}}, child, 'text').
 * Props are set as properties, except `dataset`, `attrs` (attributes) and `on<event>`
 * (listeners); those null, undefined or false are left out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'attrs') for (const [name, v] of Object.entries(value)) el.setAttribute(name, v);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el[key] = value;
  }
  el.append(...children.flat().filter(present));
  return el;
}

/**
 * The element with a data-testid.
 * @param {string} testid
 * @param {ParentNode} [root]
 * @returns {HTMLElement | null}
 */
export const byTestId = (testid, root = document) => root.querySelector(`[data-testid="${CSS.escape(testid)}"]`);

/**
 * The values of the ticked checkboxes of a name in a form.
 * @param {ParentNode} form
 * @param {string} name
 */
export function checkedValues(form, name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => /** @type {HTMLInputElement} */ (input).value);
}

/**
 * A form's control by name.
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement}
 */
export const control = (form, name) => /** @type {any} */ (form.elements.namedItem(name));

/**
 * Re-renders a part of the page, keeping keyboard focus on the same control (by data-testid).
 * @param {() => void} render
 */
export function keepingFocus(render) {
  const active = document.activeElement;
  const testid = active instanceof HTMLElement || active instanceof SVGElement ? active.dataset.testid : null;
  render();
  if (testid && !document.contains(active)) byTestId(testid)?.focus();
}

/**
 * Wall-clock times of a day in steps ("00:00" ... "24:00"), with extra values kept in order.
 * @param {number} [stepMinutes]
 * @param {string[]} [extra]
 */
export function timeChoices(stepMinutes = 30, extra = []) {
  const out = new Set(extra.filter((v) => /^\d{2}:\d{2}$/.test(v)));
  for (let m = 0; m <= 24 * 60; m += stepMinutes) {
    out.add(`${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
  }
  return [...out].sort();
}

/**
 * A <select> of times with one chosen.
 * @param {Record<string, any>} props
 * @param {string} value
 * @param {number} [stepMinutes]
 */
export function timeSelect(props, value, stepMinutes = 30) {
  const select = h('select', props, ...timeChoices(stepMinutes, [value]).map((v) => h('option', { value: v, textContent: v })));
  select.value = value;
  return select;
}
