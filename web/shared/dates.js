// Calendar dates as the API writes them ("YYYY-MM-DD"): a day's neighbours,
// the days between two, and today in a time zone. No words: the apps format.

/**
 * "YYYY-MM-DD" plus n days.
 * @param {string} date
 * @param {number} n
 */
export function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/**
 * The first day of the month n months after the date's.
 * @param {string} date
 * @param {number} n
 */
export function addMonths(date, n) {
  const d = new Date(`${date.slice(0, 7)}-01T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 10);
}

/**
 * Days from a to b.
 * @param {string} a
 * @param {string} b
 */
export const daysBetween = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);

/**
 * Whether a value is a date "YYYY-MM-DD".
 * @param {unknown} value
 * @returns {value is string}
 */
export const isDate = (value) => typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)
  && !Number.isNaN(Date.parse(`${value}T00:00:00Z`));

/**
 * Today's date in a time zone (the browser's when the zone is unknown).
 * @param {string | null | undefined} [zone]
 */
export function today(zone) {
  /** @param {Intl.DateTimeFormatOptions} options */
  const parts = (options) => Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    ...options, year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(new Date()).map((p) => [p.type, p.value]));
  let p;
  try {
    p = parts(zone ? { timeZone: zone } : {});
  } catch {
    p = parts({});
  }
  return `${p.year}-${p.month}-${p.day}`;
}
