// A week of duty coverage for one language in the selected region: an hour by
// day grid (covered, partly, a gap) in the region's time zone, with the week
// before and after, and a summary (GET /api/regions/{id}/coverage).

import { seg } from '/web/shared/api.js';
import { t, currentLanguage } from '/web/shared/i18n.js';
import { $, h } from '/web/shared/dom.js';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

// ---------------------------------------------------------------- dates

/**
 * "YYYY-MM-DD" plus n days (pure calendar arithmetic).
 * @param {string} date
 * @param {number} n
 */
export function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** @type {Map<string, Intl.DateTimeFormat>} */
const zoneFormats = new Map();
/**
 * Local date ("YYYY-MM-DD") and hour (0-23) of an instant in a time zone.
 * @param {number} ms
 * @param {string} zone
 */
function localParts(ms, zone) {
  if (!zoneFormats.has(zone)) {
    zoneFormats.set(zone, new Intl.DateTimeFormat('en-CA', {
      timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23',
    }));
  }
  const parts = Object.fromEntries(zoneFormats.get(zone).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, hour: Number(parts.hour) % 24 };
}

/**
 * The Monday of the week that holds today in a time zone.
 * @param {string} zone
 */
export function mondayOf(zone) {
  const today = localParts(Date.now(), zone).date;
  const weekday = (new Date(`${today}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday = 0
  return addDays(today, -weekday);
}

/**
 * @param {string} date "YYYY-MM-DD"
 * @param {Intl.DateTimeFormatOptions} options
 */
function formatDate(date, options) {
  try {
    return new Intl.DateTimeFormat(currentLanguage(), { timeZone: 'UTC', ...options }).format(new Date(`${date}T00:00:00Z`));
  } catch {
    return date;
  }
}

const STEP_MS = 5 * 60_000;

/**
 * @typedef {{start: string, end: string}} Span
 * @typedef {{language: string, time_zone?: string, total_minutes: number, covered_minutes: number,
 *   covered?: Span[], gaps?: Span[]}} Coverage
 */

/**
 * Minutes covered and uncovered per local day and hour: a map from
 * "date|hour" to {covered, gap}. Spans are walked in 5-minute steps, each
 * placed by its local wall-clock time, so DST days come out right.
 * @param {Coverage} coverage
 * @param {string} zone
 */
function cellMinutes(coverage, zone) {
  /** @type {Map<string, {covered: number, gap: number}>} */
  const cells = new Map();
  /**
   * @param {Span[] | undefined} spans
   * @param {'covered' | 'gap'} kind
   */
  const add = (spans, kind) => {
    for (const span of spans ?? []) {
      const end = Date.parse(span.end);
      for (let ms = Date.parse(span.start); ms < end; ms += STEP_MS) {
        const { date, hour } = localParts(ms, zone);
        const key = `${date}|${hour}`;
        const cell = cells.get(key) ?? { covered: 0, gap: 0 };
        cell[kind] += Math.min(STEP_MS, end - ms) / 60_000;
        cells.set(key, cell);
      }
    }
  };
  add(coverage.covered, 'covered');
  add(coverage.gaps, 'gap');
  return cells;
}

// ---------------------------------------------------------------- the grid

/**
 * @param {import('/web/coordinator/schedule.js').Schedule} schedule
 */
export function setupCoverage(schedule) {
  const els = {
    language: $('coverage-language', HTMLSelectElement),
    prev: $('coverage-prev', HTMLButtonElement),
    next: $('coverage-next', HTMLButtonElement),
    week: $('coverage-week'),
    summary: $('coverage-summary'),
    head: $('coverage-head'),
    body: $('coverage-body'),
  };

  const fresh = () => ({
    /** @type {Coverage | null} */
    coverage: null,
    /** @type {string | null} the Monday shown */
    week: null,
    language: 'bo',
  });
  let state = fresh();

  async function load() {
    const r = schedule.region();
    if (!r) {
      state.coverage = null;
      render();
      return;
    }
    const { week, language } = state;
    try {
      const coverage = await schedule.client.get(
        `/api/regions/${seg(r.id)}/coverage?from=${week}&to=${addDays(week, 7)}&language=${encodeURIComponent(language)}`);
      if (schedule.region()?.id === r.id && state.week === week && state.language === language) state.coverage = coverage;
    } catch (error) {
      state.coverage = null;
      schedule.reportError(error);
    }
    render();
  }

  function render() {
    const week = state.week;
    els.language.value = state.language;
    if (!week) {
      els.head.replaceChildren();
      els.body.replaceChildren();
      return;
    }
    const z = state.coverage?.time_zone || schedule.zone();
    const days = WEEKDAYS.map((d, i) => ({ weekday: d, date: addDays(week, i) }));
    els.week.textContent = t('coverage.week', {
      from: formatDate(week, { year: 'numeric', month: 'short', day: 'numeric' }),
      to: formatDate(addDays(week, 6), { year: 'numeric', month: 'short', day: 'numeric' }),
      zone: z,
    });
    const c = state.coverage;
    els.summary.textContent = c
      ? t('coverage.summary', {
        language: t(`language.${c.language}`),
        percent: c.total_minutes ? Math.round((100 * c.covered_minutes) / c.total_minutes) : 0,
        hours: Math.round(((c.total_minutes - c.covered_minutes) / 60) * 10) / 10,
      })
      : '';
    els.head.replaceChildren(h('tr', {},
      h('th', { scope: 'col', className: 'hour-col', textContent: t('coverage.hour') }),
      ...days.map((d) => h('th', { scope: 'col', dataset: { date: d.date } },
        h('span', { className: 'day-name', textContent: t(`weekdayShort.${d.weekday}`) }),
        h('span', { className: 'day-date', textContent: formatDate(d.date, { month: 'numeric', day: 'numeric' }) })))));
    const cells = c ? cellMinutes(c, z) : new Map();
    const rows = [];
    for (let hour = 0; hour < 24; hour += 1) {
      const label = `${String(hour).padStart(2, '0')}:00`;
      rows.push(h('tr', {},
        h('th', { scope: 'row', className: 'hour-col', textContent: label }),
        ...days.map((d) => hourCell(d, hour, label, cells.get(`${d.date}|${hour}`)))));
    }
    els.body.replaceChildren(...rows);
  }

  /**
   * One hour of one day: covered, partly, a gap, or unknown.
   * @param {{weekday: string, date: string}} day
   * @param {number} hour
   * @param {string} label
   * @param {{covered: number, gap: number} | undefined} cell
   */
  function hourCell(day, hour, label, cell) {
    let kind = 'unknown';
    if (cell) kind = cell.gap === 0 ? 'covered' : cell.covered === 0 ? 'gap' : 'partial';
    const mark = kind === 'unknown' ? '' : t(`coverage.${kind}Mark`);
    return h('td', {
      className: `cov ${kind}`,
      dataset: { state: kind, testid: `coverage-cell-${day.date}-${String(hour).padStart(2, '0')}` },
      title: kind === 'unknown' ? undefined : t(`coverage.cell.${kind}`, { day: t(`weekday.${day.weekday}`), hour: label }),
    }, h('span', { attrs: { 'aria-hidden': 'true' }, textContent: mark }),
    kind === 'unknown' ? null : h('span', { className: 'visually-hidden', textContent: t(`coverage.legend${kind[0].toUpperCase()}${kind.slice(1)}`) }));
  }

  /** @param {number} days */
  function moveWeek(days) {
    state.week = addDays(state.week, days);
    render();
    load();
  }

  els.prev.addEventListener('click', () => moveWeek(-7));
  els.next.addEventListener('click', () => moveWeek(7));
  els.language.addEventListener('change', () => {
    state.language = els.language.value;
    state.coverage = null;
    render();
    load();
  });

  return {
    load,
    render,
    /** The Monday shown, or null before a region is chosen. */
    week: () => state.week,
    /** Another region: this week of it, loaded next. */
    regionChanged() {
      state.week = schedule.region() ? mondayOf(schedule.zone()) : null;
      state.coverage = null;
    },
    /** Forgets the grid (logged out). */
    reset() {
      state = fresh();
      els.head.replaceChildren();
      els.body.replaceChildren();
      els.week.textContent = '';
      els.summary.textContent = '';
    },
  };
}
