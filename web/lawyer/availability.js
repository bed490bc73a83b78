// The lawyer's availability: the weekly hours and the date overrides (an
// extra time, or a day off), edited as rows and saved together (GET and PUT
// /api/accounts/{id}/availability), in the lawyer's own time zone.

import { seg } from '/web/shared/api.js';
import { t } from '/web/shared/i18n.js';
import { $, h, keepingFocus, timeSelect, byTestId } from '/web/shared/dom.js';
import { StatusLine } from '/web/lawyer/status-line.js';

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const KINDS = ['extra', 'off'];

/**
 * Rows of the editor; `key` keeps focus on a row over a re-render.
 * @typedef {{key: number, weekday: string, start: string, end: string}} Weekly
 * @typedef {{key: number, date: string, start: string, end: string, kind: string}} Override
 */

/**
 * @param {import('/web/shared/api.js').Client} client
 * @param {() => {id: string, time_zone?: string} | null} me the person logged in
 */
export function setupAvailability(client, me) {
  const els = {
    weekly: $('availability-weekly'),
    overrides: $('availability-overrides'),
    addWeekly: $('availability-add-weekly', HTMLButtonElement),
    addOverride: $('availability-add-override', HTMLButtonElement),
    form: $('availability-form', HTMLFormElement),
    zone: $('availability-zone'),
    reload: $('availability-reload', HTMLButtonElement),
  };
  const status = new StatusLine($('availability-status'));

  const fresh = () => ({
    /** @type {string | null} */
    timeZone: null,
    /** @type {Weekly[]} */
    weekly: [],
    /** @type {Override[]} */
    overrides: [],
  });
  let state = fresh();
  /** Row keys, so that focus survives a re-render. */
  let nextKey = 1;

  /**
   * The rows of a list on the page, with the value of each of their controls by name.
   * @param {HTMLElement} list
   */
  function rowsIn(list) {
    return [.../** @type {NodeListOf<HTMLElement>} */ (list.querySelectorAll('[data-row]'))].map((row) => ({
      key: row.dataset.row,
      /** @param {string} name */
      value: (name) => /** @type {HTMLInputElement | HTMLSelectElement} */ (row.querySelector(`[name="${name}"]`)).value,
    }));
  }

  /** What the rows on the page say now (before they are drawn again). */
  function readRows() {
    for (const row of rowsIn(els.weekly)) {
      const item = state.weekly.find((w) => String(w.key) === row.key);
      if (!item) continue;
      item.weekday = row.value('weekday');
      item.start = row.value('start');
      item.end = row.value('end');
    }
    for (const row of rowsIn(els.overrides)) {
      const item = state.overrides.find((o) => String(o.key) === row.key);
      if (!item) continue;
      item.date = row.value('date');
      item.start = row.value('start');
      item.end = row.value('end');
      item.kind = row.value('kind');
    }
  }

  function field(id, labelKey, vars, control) {
    control.id = id;
    return h('div', { className: 'field' }, h('label', { htmlFor: id, textContent: t(labelKey, vars) }), control);
  }

  function weeklyRow(item, index) {
    const k = item.key;
    const n = { n: index + 1 };
    return h('div', { className: 'avail-row', dataset: { row: String(k), testid: `weekly-row-${index}` } },
      field(`weekly-${k}-day`, 'availability.weekday', n,
        h('select', { name: 'weekday', dataset: { testid: `weekly-weekday-${index}` } },
          ...WEEKDAYS.map((d) => h('option', { value: d, textContent: t(`weekday.${d}`), selected: d === item.weekday })))),
      field(`weekly-${k}-start`, 'availability.start', n,
        timeSelect({ name: 'start', dataset: { testid: `weekly-start-${index}` } }, item.start)),
      field(`weekly-${k}-end`, 'availability.end', n,
        timeSelect({ name: 'end', dataset: { testid: `weekly-end-${index}` } }, item.end)),
      h('button', {
        type: 'button', className: 'danger remove', dataset: { testid: `weekly-remove-${index}` },
        textContent: t('availability.remove'),
        attrs: { 'aria-label': t('availability.removeWeeklyLabel', n) },
        onclick: () => removeRow('weekly', k, index),
      }));
  }

  function overrideRow(item, index) {
    const k = item.key;
    const n = { n: index + 1 };
    const date = h('input', { type: 'date', name: 'date', value: item.date, min: '2000-01-01', max: '2100-12-31', required: true,
      dataset: { testid: `override-date-${index}` } });
    return h('div', { className: 'avail-row', dataset: { row: String(k), testid: `override-row-${index}` } },
      field(`override-${k}-date`, 'availability.date', n, date),
      field(`override-${k}-start`, 'availability.start', n,
        timeSelect({ name: 'start', dataset: { testid: `override-start-${index}` } }, item.start)),
      field(`override-${k}-end`, 'availability.end', n,
        timeSelect({ name: 'end', dataset: { testid: `override-end-${index}` } }, item.end)),
      field(`override-${k}-kind`, 'availability.kind', n,
        h('select', { name: 'kind', dataset: { testid: `override-kind-${index}` } },
          ...KINDS.map((kind) => h('option', { value: kind, textContent: t(`availability.kind.${kind}`), selected: kind === item.kind })))),
      h('button', {
        type: 'button', className: 'danger remove', dataset: { testid: `override-remove-${index}` },
        textContent: t('availability.remove'),
        attrs: { 'aria-label': t('availability.removeOverrideLabel', n) },
        onclick: () => removeRow('overrides', k, index),
      }));
  }

  function renderAvailability() {
    keepingFocus(() => {
      const weekly = state.weekly.map(weeklyRow);
      els.weekly.replaceChildren(...(weekly.length ? weekly : [h('p', { className: 'hint empty', textContent: t('availability.noWeekly') })]));
      const overrides = state.overrides.map(overrideRow);
      els.overrides.replaceChildren(...(overrides.length ? overrides : [h('p', { className: 'hint empty', textContent: t('availability.noOverrides') })]));
    });
    els.zone.textContent = state.timeZone ? t('availability.zone', { zone: state.timeZone }) : '';
  }

  function removeRow(list, key, index) {
    readRows();
    state[list] = state[list].filter((item) => item.key !== key);
    renderAvailability();
    const prefix = list === 'weekly' ? 'weekly' : 'override';
    const next = byTestId(`${prefix}-remove-${Math.min(index, state[list].length - 1)}`);
    (next ?? (list === 'weekly' ? els.addWeekly : els.addOverride)).focus();
  }

  function addWeekly() {
    readRows();
    const last = state.weekly[state.weekly.length - 1];
    const day = last ? WEEKDAYS[(WEEKDAYS.indexOf(last.weekday) + 1) % 7] : 'mon';
    state.weekly.push({ key: nextKey++, weekday: day, start: last?.start ?? '09:00', end: last?.end ?? '17:00' });
    renderAvailability();
    byTestId(`weekly-weekday-${state.weekly.length - 1}`)?.focus();
  }

  function addOverride() {
    readRows();
    const tomorrow = new Date(Date.now() + 86_400_000);
    const date = `${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, '0')}-${String(tomorrow.getDate()).padStart(2, '0')}`;
    state.overrides.push({ key: nextKey++, date, start: '00:00', end: '24:00', kind: 'off' });
    renderAvailability();
    byTestId(`override-date-${state.overrides.length - 1}`)?.focus();
  }

  function adopt(body) {
    state.timeZone = body.time_zone ?? me()?.time_zone ?? null;
    state.weekly = (body.weekly ?? []).map((w) => ({ key: nextKey++, ...w }));
    state.overrides = (body.overrides ?? []).map((o) => ({ key: nextKey++, ...o }));
  }

  async function loadAvailability() {
    try {
      adopt(await client.get(`/api/accounts/${seg(me().id)}/availability`));
      status.set(null);
    } catch (error) {
      status.set({ kind: 'error', error });
    }
    renderAvailability();
  }

  /** The first row whose end is not after its start, or whose date is missing. */
  function firstInvalid() {
    const bad = (item) => !(item.end > item.start);
    const w = state.weekly.findIndex(bad);
    if (w >= 0) return `weekly-end-${w}`;
    const o = state.overrides.findIndex((item) => bad(item) || !/^\d{4}-\d{2}-\d{2}$/.test(item.date));
    if (o >= 0) return state.overrides[o].date ? `override-end-${o}` : `override-date-${o}`;
    return null;
  }

  async function saveAvailability(button) {
    readRows();
    const invalid = firstInvalid();
    if (invalid) {
      status.set({ kind: 'error', error: { code: 'time_order', serverMessage: '' } });
      byTestId(invalid)?.focus();
      return;
    }
    const body = {
      weekly: state.weekly.map(({ weekday, start, end }) => ({ weekday, start, end })),
      overrides: state.overrides.map(({ date, start, end, kind }) => ({ date, start, end, kind })),
    };
    button.disabled = true;
    try {
      const saved = await client.request('PUT', `/api/accounts/${seg(me().id)}/availability`, body);
      if (saved && saved.weekly) adopt(saved);
      renderAvailability();
      status.set({ kind: 'ok', key: 'availability.saved' });
    } catch (error) {
      status.set({ kind: 'error', error });
    } finally {
      button.disabled = false;
    }
  }

  els.addWeekly.addEventListener('click', addWeekly);
  els.addOverride.addEventListener('click', addOverride);
  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    saveAvailability(els.form.querySelector('[data-testid="availability-save"]'));
  });
  els.reload.addEventListener('click', () => loadAvailability());

  return {
    load: loadAvailability,
    status,
    /** Shows the rows again (in a new language), keeping what was typed. */
    render() {
      readRows();
      renderAvailability();
    },
    /**
     * Logged in: the person's time zone until their availability arrives.
     * @param {string | null} timeZone
     */
    show(timeZone) {
      state = fresh();
      state.timeZone = timeZone;
      renderAvailability();
    },
    /** Logged out: nothing of it stays. */
    hide() {
      state = fresh();
      els.weekly.replaceChildren();
      els.overrides.replaceChildren();
      status.set(null);
    },
  };
}
