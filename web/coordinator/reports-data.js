// The figures behind the coordinator's reports: dates and periods (the
// calendar arithmetic itself is shared, dates.js), numbers in the page's
// language, and the report's lines added up per period and group.

import { t, currentLanguage } from '/web/shared/i18n.js';
import { addDays, addMonths } from '/web/shared/dates.js';

// ---------------------------------------------------------------- dates

export { addDays, addMonths, daysBetween, isDate, today } from '/web/shared/dates.js';

export const mondayOf = (date) => addDays(date, -((new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7));

export function formatDate(date, options) {
  try {
    return new Intl.DateTimeFormat(currentLanguage(), { timeZone: 'UTC', ...options }).format(new Date(`${date}T00:00:00Z`));
  } catch {
    return date;
  }
}

/** The first days of every week (Monday) or month from `from` up to the day before `to`. */
export function periodStarts(from, to, period) {
  const out = [];
  let start = period === 'month' ? `${from.slice(0, 7)}-01` : mondayOf(from);
  while (start < to && out.length < 400) {
    out.push(start);
    start = period === 'month' ? addMonths(start, 1) : addDays(start, 7);
  }
  return out;
}

// ---------------------------------------------------------------- numbers

const numberFormat = (options) => {
  try {
    return new Intl.NumberFormat(currentLanguage(), options);
  } catch {
    return new Intl.NumberFormat(undefined, options);
  }
};
export const count = (n) => numberFormat({ maximumFractionDigits: 0 }).format(n);
export const percent = (r) => numberFormat({ style: 'percent', maximumFractionDigits: 1 }).format(r);
export const decimal = (n, digits = 1) => numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);

/** Seconds as "m:ss" (or "h:mm:ss"). */
export function waitText(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const two = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours) return t('reports.duration.hms', { h: hours, m: two(minutes), s: two(s % 60) });
  return t('reports.duration.ms', { m: minutes, s: two(s % 60) });
}

// ---------------------------------------------------------------- aggregation

/**
 * The report's waits (`{period_start, region_id, wait_p50_secs, wait_p90_secs}`) of one
 * region, or of all (`region` empty): `waitsOf(period)` a period's, `waitsOf(null)` the
 * whole report's. Percentiles do not add up, so these come from the server, over the
 * requests themselves.
 */
export function waitsFor(report, region) {
  const found = new Map();
  for (const w of report.waits ?? []) {
    if ((w.region_id ?? '') === (region || '')) found.set(w.period_start ?? null, w);
  }
  return (period) => found.get(period) ?? null;
}

/** Per period: totals over the report's lines (of one region, or all). */
export function aggregate(lines, periods, groupOf, waitsOf) {
  const emptyRow = (period) => ({
    period, requests: 0, consultations: 0, abandoned: 0, ratings: 0, ratingSum: 0, groups: new Map(),
  });
  const rows = new Map(periods.map((p) => [p, emptyRow(p)]));
  for (const line of lines) {
    if (!rows.has(line.period_start)) rows.set(line.period_start, emptyRow(line.period_start));
    const row = rows.get(line.period_start);
    row.requests += line.requests;
    row.consultations += line.consultations;
    row.abandoned += line.abandoned;
    if (line.ratings > 0 && line.rating_avg != null) {
      row.ratings += line.ratings;
      row.ratingSum += line.rating_avg * line.ratings;
    }
    const group = groupOf(line);
    row.groups.set(group, (row.groups.get(group) ?? 0) + line.consultations);
  }
  const out = [...rows.values()].sort((a, b) => a.period.localeCompare(b.period));
  for (const row of out) {
    const ended = row.consultations + row.abandoned;
    row.abandonmentRate = ended ? row.abandoned / ended : null;
    const waits = waitsOf(row.period);
    row.p50 = waits?.wait_p50_secs ?? null;
    row.p90 = waits?.wait_p90_secs ?? null;
    row.ratingAvg = row.ratings ? row.ratingSum / row.ratings : null;
  }
  return out;
}

export function totalsOf(rows, waits) {
  const total = rows.reduce((acc, r) => ({
    requests: acc.requests + r.requests,
    consultations: acc.consultations + r.consultations,
    abandoned: acc.abandoned + r.abandoned,
    ratings: acc.ratings + r.ratings,
    ratingSum: acc.ratingSum + r.ratingSum,
  }), { requests: 0, consultations: 0, abandoned: 0, ratings: 0, ratingSum: 0 });
  const ended = total.consultations + total.abandoned;
  return {
    ...total,
    abandonmentRate: ended ? total.abandoned / ended : null,
    p50: waits?.wait_p50_secs ?? null,
    p90: waits?.wait_p90_secs ?? null,
    ratingAvg: total.ratings ? total.ratingSum / total.ratings : null,
  };
}

