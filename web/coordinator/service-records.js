// Service records (GET /api/service-records): what the volunteers gave in a
// period (consultations, hours in calls, appointments kept, referrals the
// residents agreed to, ratings) per volunteer, aid team or region, as a table
// with the total and as CSV; each volunteer's service certificate and a
// region's monthly report for the justice bureau as PDF. Files come through
// shared/download.js (the API wants the bearer token). Coordinators see their
// regions', admins all; caseworkers never see this section.

import { t, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus, byTestId } from '/web/shared/dom.js';
import { addDays, addMonths, daysBetween, isDate, today } from '/web/shared/dates.js';
import { downloadFile } from '/web/shared/download.js';
import { count, decimal, formatDate } from '/web/coordinator/reports-data.js';
import { regionTree } from '/web/coordinator/regions.js';

/** The longest period the API counts, in days. */
const MAX_DAYS = 366;
/** How many months back the monthly report offers. */
const MONTHS_BACK = 24;
const GROUPINGS = ['volunteer', 'team', 'region'];
/** The texts of the groupings, named in full so that the string tables can be checked. */
const NAME_COLUMN = { volunteer: 'serviceRecords.col.volunteer', team: 'serviceRecords.col.team', region: 'serviceRecords.col.region' };
const CAPTION = {
  volunteer: 'serviceRecords.caption.volunteer',
  team: 'serviceRecords.caption.team',
  region: 'serviceRecords.caption.region',
};

/**
 * One line of the service records.
 * @typedef {{key: string, name: string, consultations: number, minutes: number, appointments_kept: number,
 *   referrals: number, ratings: number, rating_avg: number | null}} ServiceLine
 */

/** @typedef {{from: string, to: string, by: string, lines: ServiceLine[], total: ServiceLine}} ServiceRecords */

/** @typedef {{from: string, to: string, last: string, by: string}} Query `to` the day after `last` (as the API counts) */

/** @typedef {{kind: 'ok', key: string, vars?: object} | {kind: 'error', error: unknown}} Status */

/** The figures of a line, in the table's order: the field, its value as a number, and as shown. */
const FIGURES = /** @type {const} */ (['consultations', 'minutes', 'appointments_kept', 'referrals', 'ratings', 'rating_avg']);

/**
 * A figure of a line as the table shows it.
 * @param {ServiceLine} line
 * @param {typeof FIGURES[number]} field
 */
function figureText(line, field) {
  if (field === 'minutes') return decimal(line.minutes / 60, 1);
  if (field === 'rating_avg') return line.rating_avg == null ? t('list.none') : decimal(line.rating_avg, 2);
  return count(line[field]);
}

/**
 * A status line (downloads): a text of the string tables or an error, shown again in a new language.
 * @param {HTMLElement} el
 */
function statusLine(el) {
  /** @type {Status | null} */
  let status = null;
  const render = () => {
    el.dataset.kind = status ? status.kind : '';
    if (!status) {
      clearError(el);
      el.hidden = false;
    } else if (status.kind === 'error') {
      showError(el, status.error);
    } else {
      delete el.dataset.errorCode;
      el.hidden = false;
      el.textContent = t(status.key, status.vars);
    }
  };
  return {
    /** @param {Status | null} next */
    set(next) {
      status = next;
      render();
    },
    render,
  };
}

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => import('/web/coordinator/regions.js').Region[]} options.regions the coordinator's regions
 * @param {() => import('/web/coordinator/regions.js').Region | null} options.region the region chosen at the top
 */
export function setupServiceRecords({ client, regions, region }) {
  const els = {
    section: byTestId('service-records'),
    form: $('service-records-form', HTMLFormElement),
    from: $('service-records-from', HTMLInputElement),
    to: $('service-records-to', HTMLInputElement),
    by: $('service-records-by', HTMLSelectElement),
    csv: $('service-records-csv', HTMLButtonElement),
    error: $('service-records-error'),
    status: $('service-records-status'),
    empty: $('service-records-empty'),
    wrap: $('service-records-wrap'),
    caption: $('service-records-caption'),
    head: $('service-records-head'),
    body: $('service-records-body'),
    foot: $('service-records-foot'),
    monthlyForm: $('monthly-report-form', HTMLFormElement),
    monthlyRegion: $('monthly-report-region', HTMLSelectElement),
    monthlyMonth: $('monthly-report-month', HTMLSelectElement),
    monthlyDownload: $('monthly-report-download', HTMLButtonElement),
  };
  const downloads = statusLine($('service-records-download'));
  const monthlyStatus = statusLine($('monthly-report-status'));

  const fresh = () => ({
    active: false,
    loading: false,
    /** Counts the reads, so that a late answer to an older one is dropped. */
    seq: 0,
    /** @type {ServiceRecords | null} */
    records: null,
    /** @type {Query | null} the query of `records` */
    query: null,
    /** The person changed the dates: the defaults no longer replace them. */
    touched: false,
    /** The monthly report's choices, kept over a re-render ('' until chosen). */
    monthlyRegion: '',
    month: '',
  });
  let state = fresh();
  /** @type {IntersectionObserver | null} */
  let observer = null;

  const zone = () => region()?.time_zone;

  // ------------------------------------------------------------ the query

  function setDefaults() {
    const end = today(zone());
    els.from.value = `${end.slice(0, 7)}-01`;
    els.to.value = end;
    els.by.value = 'volunteer';
  }

  /** @param {string} text */
  function showMessage(text) {
    els.error.replaceChildren(h('span', { className: 'error-text', textContent: text }));
    delete els.error.dataset.errorCode;
    els.error.hidden = false;
  }

  /** The form's query, or null (and a message) when it cannot be asked. */
  function formQuery() {
    const from = els.from.value;
    const last = els.to.value;
    if (!isDate(from) || !isDate(last) || last < from) {
      showMessage(t('serviceRecords.error.range'));
      return null;
    }
    const to = addDays(last, 1);
    if (daysBetween(from, to) > MAX_DAYS) {
      showMessage(t('serviceRecords.error.tooLong', { days: MAX_DAYS }));
      return null;
    }
    const by = GROUPINGS.includes(els.by.value) ? els.by.value : 'volunteer';
    return { from, to, last, by };
  }

  /**
   * @param {Query} query
   * @param {string} [format]
   */
  const recordsPath = (query, format) => {
    const params = new URLSearchParams({ from: query.from, to: query.to, by: query.by });
    if (format) params.set('format', format);
    return `/api/service-records?${params}`;
  };

  async function load() {
    clearError(els.error);
    const query = formQuery();
    if (!query) return;
    const seq = ++state.seq;
    state.loading = true;
    renderStatus();
    try {
      const records = await client.get(recordsPath(query));
      if (seq !== state.seq || !state.active) return;
      state.records = records;
      state.query = query;
    } catch (error) {
      if (seq !== state.seq || !state.active) return;
      showError(els.error, error);
    } finally {
      if (seq === state.seq) state.loading = false;
    }
    render();
  }

  /**
   * Downloads a file; what happens is said on a status line.
   * @param {HTMLButtonElement} button
   * @param {ReturnType<typeof statusLine>} line
   * @param {string} path
   * @param {{accept: string, name: string}} file
   */
  async function download(button, line, path, file) {
    button.disabled = true;
    line.set({ kind: 'ok', key: 'serviceRecords.preparing' });
    try {
      const saved = await downloadFile(client, path, file);
      if (state.active) line.set({ kind: 'ok', key: 'serviceRecords.downloaded', vars: { name: saved } });
    } catch (error) {
      if (state.active) line.set({ kind: 'error', error });
    } finally {
      if (document.contains(button)) button.disabled = false;
    }
  }

  // ------------------------------------------------------------ drawing

  function renderStatus() {
    let text = '';
    if (state.loading) text = t('serviceRecords.loading');
    else if (state.records && state.query) {
      const options = /** @type {Intl.DateTimeFormatOptions} */ ({ year: 'numeric', month: 'short', day: 'numeric' });
      text = t('serviceRecords.range', { from: formatDate(state.query.from, options), to: formatDate(state.query.last, options) });
    } else text = t('serviceRecords.notLoaded');
    if (els.status.textContent !== text) els.status.textContent = text;
  }

  /**
   * A figure's cell, with its value for code and tests.
   * @param {ServiceLine} line
   * @param {typeof FIGURES[number]} field
   */
  const figureCell = (line, field) => h('td', {
    className: 'num', dataset: { field, value: String(line[field] ?? '') }, textContent: figureText(line, field),
  });

  function renderTable() {
    const { records, query } = state;
    if (!records || !query) {
      els.empty.hidden = true;
      els.wrap.hidden = true;
      for (const part of [els.head, els.body, els.foot]) part.replaceChildren();
      return;
    }
    const lines = records.lines ?? [];
    els.empty.hidden = lines.length > 0;
    els.wrap.hidden = lines.length === 0;
    if (!lines.length) {
      for (const part of [els.head, els.body, els.foot]) part.replaceChildren();
      return;
    }
    const volunteers = query.by === 'volunteer';
    els.caption.textContent = t(CAPTION[query.by] ?? CAPTION.volunteer);
    els.head.replaceChildren(h('tr', {},
      h('th', { scope: 'col', textContent: t(NAME_COLUMN[query.by] ?? NAME_COLUMN.volunteer) }),
      h('th', { scope: 'col', className: 'num', textContent: t('serviceRecords.col.consultations') }),
      h('th', { scope: 'col', className: 'num', textContent: t('serviceRecords.col.hours') }),
      h('th', { scope: 'col', className: 'num', textContent: t('serviceRecords.col.appointmentsKept') }),
      h('th', { scope: 'col', className: 'num', textContent: t('serviceRecords.col.referrals') }),
      h('th', { scope: 'col', className: 'num', textContent: t('serviceRecords.col.ratings') }),
      h('th', { scope: 'col', className: 'num', textContent: t('serviceRecords.col.ratingAvg') }),
      volunteers && h('th', { scope: 'col', textContent: t('serviceRecords.col.certificate') })));
    keepingFocus(() => els.body.replaceChildren(...lines.map((line) => h('tr', { dataset: { testid: `service-row-${line.key}`, key: line.key } },
      h('th', { scope: 'row', textContent: line.name }),
      ...FIGURES.map((field) => figureCell(line, field)),
      volunteers && h('td', {},
        h('button', {
          type: 'button',
          dataset: { testid: `service-certificate-${line.key}` },
          textContent: t('serviceRecords.certificate'),
          attrs: { 'aria-label': t('serviceRecords.certificateLabel', { name: line.name }) },
          onclick: (/** @type {MouseEvent} */ event) => download(/** @type {HTMLButtonElement} */ (event.currentTarget), downloads,
            `/api/service-records/certificate?${new URLSearchParams({ account: line.key, from: query.from, to: query.to })}`,
            { accept: 'application/pdf', name: `service-certificate-${query.from}-${query.to}.pdf` }),
        }))))));
    const total = records.total;
    els.foot.replaceChildren(total ? h('tr', { dataset: { testid: 'service-total' } },
      h('th', { scope: 'row', textContent: t('serviceRecords.total') }),
      ...FIGURES.map((field) => figureCell(total, field)),
      volunteers && h('td', {})) : '');
  }

  /** The monthly report's choices: the regions (as a tree) and the last months. */
  function renderMonthly() {
    const list = regionTree(regions() ?? []);
    const ids = list.map(({ region: r }) => r.id);
    if (!ids.includes(state.monthlyRegion)) {
      const chosen = region()?.id;
      state.monthlyRegion = chosen && ids.includes(chosen) ? chosen : (ids[0] ?? '');
    }
    els.monthlyRegion.replaceChildren(...(list.length
      ? list.map(({ region: r, depth }) => h('option', { value: r.id, textContent: `${'\u2003'.repeat(depth)}${r.name}` }))
      : [h('option', { value: '', textContent: t('serviceRecords.noRegions') })]));
    els.monthlyRegion.value = state.monthlyRegion;
    els.monthlyRegion.disabled = !list.length;
    els.monthlyDownload.disabled = !list.length;

    const thisMonth = `${today(zone()).slice(0, 7)}-01`;
    const months = Array.from({ length: MONTHS_BACK }, (_, i) => addMonths(thisMonth, -i).slice(0, 7));
    // The last whole month by default: the one a report is made for.
    if (!months.includes(state.month)) state.month = months[1];
    els.monthlyMonth.replaceChildren(...months.map((m) => h('option', {
      value: m, textContent: formatDate(`${m}-01`, { year: 'numeric', month: 'long' }),
    })));
    els.monthlyMonth.value = state.month;
  }

  function render() {
    if (!state.active) return;
    renderStatus();
    renderTable();
    renderMonthly();
    downloads.render();
    monthlyStatus.render();
  }

  // ------------------------------------------------------------ events

  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  els.by.addEventListener('change', () => load());
  for (const input of [els.from, els.to]) {
    input.addEventListener('input', () => {
      state.touched = true;
    });
  }
  els.csv.addEventListener('click', () => {
    clearError(els.error);
    const query = formQuery();
    if (!query) return;
    download(els.csv, downloads, recordsPath(query, 'csv'),
      { accept: 'text/csv', name: `service-${query.by}-${query.from}-${query.to}.csv` });
  });
  els.monthlyRegion.addEventListener('change', () => {
    state.monthlyRegion = els.monthlyRegion.value;
  });
  els.monthlyMonth.addEventListener('change', () => {
    state.month = els.monthlyMonth.value;
  });
  els.monthlyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const { monthlyRegion: id, month } = state;
    if (!id || !/^\d{4}-\d{2}$/.test(month)) return;
    download(els.monthlyDownload, monthlyStatus,
      `/api/service-records/monthly-report?${new URLSearchParams({ region: id, month })}`,
      { accept: 'application/pdf', name: `monthly-report-${id}-${month}.pdf` });
  });

  return {
    show() {
      state = fresh();
      state.active = true;
      setDefaults();
      render();
      // The first read when the section comes into view (each read is audited).
      observer?.disconnect();
      observer = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        observer?.disconnect();
        observer = null;
        if (state.active && !state.records && !state.loading) load();
      });
      observer.observe(els.section);
    },
    hide() {
      observer?.disconnect();
      observer = null;
      state = fresh();
      clearError(els.error);
      els.status.textContent = '';
      els.empty.hidden = true;
      els.wrap.hidden = true;
      for (const part of [els.head, els.body, els.foot, els.monthlyRegion, els.monthlyMonth]) part.replaceChildren();
      downloads.set(null);
      monthlyStatus.set(null);
      els.form.reset();
    },
    /** The regions arrived or changed: the monthly report's choices, and "today" in the region's zone. */
    regionsChanged() {
      if (!state.active) return;
      if (!state.touched && !state.records && !state.loading) setDefaults();
      render();
    },
    /** Another region chosen at the top: the monthly report is of it. */
    regionChanged() {
      if (!state.active) return;
      state.monthlyRegion = region()?.id ?? '';
      renderMonthly();
    },
    render,
  };
}
