// My service record: what the lawyer or interpreter gave in a period
// (GET /api/service-records, their own line): consultations, time in calls,
// appointments kept, referrals the residents agreed to, ratings; and the same
// as a service certificate (PDF, GET /api/service-records/certificate) or a
// CSV line, both fetched with the bearer token (shared/download.js).
//
// The period is this month so far by default, in the person's time zone. The
// first read waits until the section is seen (every read is audited).

import { t, currentLanguage, onLanguageChange } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { addDays, daysBetween, isDate, today } from '/web/shared/dates.js';
import { downloadFile } from '/web/shared/download.js';
import { StatusLine } from '/web/lawyer/status-line.js';

/** The longest period the API counts, in days. */
const MAX_DAYS = 366;

/**
 * One line of the service records.
 * @typedef {{key: string, name: string, consultations: number, minutes: number, appointments_kept: number,
 *   referrals: number, ratings: number, rating_avg: number | null}} ServiceLine
 */

/** @typedef {{from: string, to: string, last: string}} Period `to` the day after `last` (as the API counts) */

/**
 * A number in the page's language.
 * @param {number} n
 * @param {number} [digits] decimals, always shown
 */
function number(n, digits = 0) {
  const options = { minimumFractionDigits: digits, maximumFractionDigits: digits };
  try {
    return new Intl.NumberFormat(currentLanguage(), options).format(n);
  } catch {
    return new Intl.NumberFormat(undefined, options).format(n);
  }
}

/**
 * A date "YYYY-MM-DD" in the page's language.
 * @param {string} date
 */
function dateText(date) {
  const options = /** @type {Intl.DateTimeFormatOptions} */ ({ timeZone: 'UTC', year: 'numeric', month: 'short', day: 'numeric' });
  try {
    return new Intl.DateTimeFormat(currentLanguage(), options).format(new Date(`${date}T00:00:00Z`));
  } catch {
    return date;
  }
}

/**
 * @param {import('/web/shared/api.js').Client} client
 */
export function setupServiceRecord(client) {
  const els = {
    section: $('service-record'),
    form: $('service-form', HTMLFormElement),
    from: $('service-from', HTMLInputElement),
    to: $('service-to', HTMLInputElement),
    show: $('service-show', HTMLButtonElement),
    period: $('service-period'),
    figures: $('service-figures'),
    consultations: $('service-consultations'),
    hours: $('service-hours'),
    appointments: $('service-appointments'),
    referrals: $('service-referrals'),
    ratings: $('service-ratings'),
    certificate: $('service-certificate', HTMLButtonElement),
    csv: $('service-csv', HTMLButtonElement),
  };
  const status = new StatusLine($('service-status'));

  const fresh = () => ({
    active: false,
    loading: false,
    /** Counts the reads, so that a late answer to an older one is dropped. */
    seq: 0,
    /** @type {ServiceLine | null} */
    line: null,
    /** @type {Period | null} the period of `line` */
    period: null,
  });
  let state = fresh();
  /** @type {IntersectionObserver | null} */
  let observer = null;

  function setDefaults(/** @type {string | undefined} */ zone) {
    const end = today(zone);
    els.from.value = `${end.slice(0, 7)}-01`;
    els.to.value = end;
  }

  /** The form's period, or null (and why, on the status line). */
  function formPeriod() {
    const from = els.from.value;
    const last = els.to.value;
    if (!isDate(from) || !isDate(last) || last < from) {
      status.set({ kind: 'error', error: { code: 'service_range', serverMessage: '' } });
      return null;
    }
    const to = addDays(last, 1);
    if (daysBetween(from, to) > MAX_DAYS) {
      status.set({ kind: 'error', error: { code: 'service_too_long', serverMessage: '' } });
      return null;
    }
    return { from, to, last };
  }

  async function load() {
    const period = formPeriod();
    if (!period) return;
    const seq = ++state.seq;
    state.loading = true;
    status.set(null);
    render();
    try {
      const query = new URLSearchParams({ from: period.from, to: period.to, by: 'volunteer' });
      const records = await client.get(`/api/service-records?${query}`);
      if (seq !== state.seq || !state.active) return;
      state.line = records?.total ?? null;
      state.period = period;
    } catch (error) {
      if (seq !== state.seq || !state.active) return;
      status.set({ kind: 'error', error });
    } finally {
      if (seq === state.seq) state.loading = false;
    }
    render();
  }

  function render() {
    if (!state.active) return;
    const { line, period } = state;
    els.period.textContent = state.loading ? t('service.loading')
      : period ? t('service.period', { from: dateText(period.from), to: dateText(period.last) }) : '';
    els.figures.hidden = !line;
    if (!line) return;
    /** @type {[HTMLElement, number, string][]} */
    const figures = [
      [els.consultations, line.consultations, number(line.consultations)],
      [els.hours, line.minutes, t('service.hoursValue', { hours: number(line.minutes / 60, 1), minutes: number(line.minutes) })],
      [els.appointments, line.appointments_kept, number(line.appointments_kept)],
      [els.referrals, line.referrals, number(line.referrals)],
      [els.ratings, line.ratings, line.ratings && line.rating_avg != null
        ? t('service.ratingsValue', { count: number(line.ratings), average: number(line.rating_avg, 2) })
        : t('service.noRatings')],
    ];
    for (const [el, value, text] of figures) {
      el.textContent = text;
      el.dataset.value = String(value);
    }
  }

  /**
   * Downloads a file of the form's period.
   * @param {HTMLButtonElement} button
   * @param {(period: Period) => {path: string, accept: string, name: string}} file
   */
  async function download(button, file) {
    const period = formPeriod();
    if (!period) return;
    const { path, accept, name } = file(period);
    button.disabled = true;
    status.set({ kind: 'ok', key: 'service.preparing' });
    try {
      const saved = await downloadFile(client, path, { accept, name });
      if (state.active) status.set({ kind: 'ok', key: 'service.downloaded', vars: { name: saved } });
    } catch (error) {
      if (state.active) status.set({ kind: 'error', error });
    } finally {
      button.disabled = false;
    }
  }

  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  els.certificate.addEventListener('click', () => download(els.certificate, ({ from, to }) => ({
    path: `/api/service-records/certificate?${new URLSearchParams({ from, to })}`,
    accept: 'application/pdf',
    name: `service-certificate-${from}-${to}.pdf`,
  })));
  els.csv.addEventListener('click', () => download(els.csv, ({ from, to }) => ({
    path: `/api/service-records?${new URLSearchParams({ from, to, by: 'volunteer', format: 'csv' })}`,
    accept: 'text/csv',
    name: `service-${from}-${to}.csv`,
  })));

  onLanguageChange(() => {
    if (!state.active) return;
    render();
    status.render();
  });

  return {
    /** @param {{time_zone?: string}} account */
    show(account) {
      state = fresh();
      state.active = true;
      setDefaults(account.time_zone);
      render();
      // The first read when the section comes into view.
      observer?.disconnect();
      observer = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        observer?.disconnect();
        observer = null;
        if (state.active && !state.line && !state.loading) load();
      });
      observer.observe(els.section);
    },
    /** Logged out: nothing of it stays. */
    hide() {
      observer?.disconnect();
      observer = null;
      state = fresh();
      els.form.reset();
      els.period.textContent = '';
      els.figures.hidden = true;
      for (const el of [els.consultations, els.hours, els.appointments, els.referrals, els.ratings]) {
        el.textContent = '';
        delete el.dataset.value;
      }
      status.set(null);
    },
  };
}
