// The coordinator's reports: consultations, waits, abandonment and
// satisfaction per week or month (GET /api/reports/consultations), drawn as
// inline SVG bar charts, each with a legend and a table of the same figures,
// and a CSV download of the same query.

import { ApiError } from '/web/shared/api.js';
import { t, currentLanguage, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus } from '/web/shared/dom.js';
import { CHANNELS, LANGUAGES, TOPICS } from '/web/shared/codes.js';

const SVG = 'http://www.w3.org/2000/svg';
/** Colours of the series (coordinator.css .series-N); more groups than this repeat them. */
const SERIES_COLOURS = 8;
const MAX_DAYS = 366;

// ---------------------------------------------------------------- dates

/** "YYYY-MM-DD" plus n days. */
function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function addMonths(date, n) {
  const d = new Date(`${date.slice(0, 7)}-01T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 10);
}

const daysBetween = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
const mondayOf = (date) => addDays(date, -((new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7));
const isDate = (value) => /^\d{4}-\d{2}-\d{2}$/.test(value ?? '') && !Number.isNaN(Date.parse(`${value}T00:00:00Z`));

/** Today's date in a time zone (the browser's when the zone is unknown). */
function today(zone) {
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

function formatDate(date, options) {
  try {
    return new Intl.DateTimeFormat(currentLanguage(), { timeZone: 'UTC', ...options }).format(new Date(`${date}T00:00:00Z`));
  } catch {
    return date;
  }
}

/** The first days of every week (Monday) or month from `from` up to the day before `to`. */
function periodStarts(from, to, period) {
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
const count = (n) => numberFormat({ maximumFractionDigits: 0 }).format(n);
const percent = (r) => numberFormat({ style: 'percent', maximumFractionDigits: 1 }).format(r);
const decimal = (n, digits = 1) => numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);

/** Seconds as "m:ss" (or "h:mm:ss"). */
function waitText(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const two = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours) return t('reports.duration.hms', { h: hours, m: two(minutes), s: two(s % 60) });
  return t('reports.duration.ms', { m: minutes, s: two(s % 60) });
}

/** A round step for about `ticks` gridlines up to max. */
function niceStep(max, ticks, integer) {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  return integer ? Math.max(1, Math.ceil(step)) : step;
}

// ---------------------------------------------------------------- aggregation

/**
 * The report's waits (`{period_start, region_id, wait_p50_secs, wait_p90_secs}`) of one
 * region, or of all (`region` empty): `waitsOf(period)` a period's, `waitsOf(null)` the
 * whole report's. Percentiles do not add up, so these come from the server, over the
 * requests themselves.
 */
function waitsFor(report, region) {
  const found = new Map();
  for (const w of report.waits ?? []) {
    if ((w.region_id ?? '') === (region || '')) found.set(w.period_start ?? null, w);
  }
  return (period) => found.get(period) ?? null;
}

/** Per period: totals over the report's lines (of one region, or all). */
function aggregate(lines, periods, groupOf, waitsOf) {
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

function totalsOf(rows, waits) {
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

// ---------------------------------------------------------------- SVG charts

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

/** A rough width of a label in pixels (CJK characters are wider). */
const labelWidth = (text) => [...text].reduce((w, ch) => w + (ch.charCodeAt(0) > 0x2e80 ? 13 : 7.5), 0);

/**
 * A bar chart, stacked or grouped, sized to `width` pixels so its text stays
 * at its real size.
 * @param {object} spec
 * @param {{key: string, label: string, long: string}[]} spec.categories the periods
 * @param {{key: string, label: string, cls: string, values: (number|null)[]}[]} spec.series
 * @param {boolean} spec.stacked
 * @param {number} [spec.fixedMax] the top of the scale (else from the data)
 * @param {boolean} [spec.integer] whole-number gridlines
 * @param {(v: number) => string} spec.format a value as text (ticks, labels, titles)
 * @param {string} spec.yLabel
 * @param {string} spec.xLabel
 * @param {string} spec.label the chart's name for assistive technology
 */
function barChart(spec, width) {
  const height = 280;
  const margin = { top: 24, right: 12, bottom: 60, left: 72 };
  const plotW = Math.max(80, width - margin.left - margin.right);
  const plotH = height - margin.top - margin.bottom;
  const n = spec.categories.length;
  const slot = plotW / Math.max(1, n);

  const valuesAt = (i) => spec.series.map((s) => s.values[i]);
  const tops = spec.categories.map((_, i) => (spec.stacked
    ? valuesAt(i).reduce((a, v) => a + (v ?? 0), 0)
    : Math.max(0, ...valuesAt(i).map((v) => v ?? 0))));
  const dataMax = Math.max(0, ...tops);
  let max = spec.fixedMax;
  let step;
  if (max === undefined) {
    step = niceStep(dataMax || 1, 4, spec.integer);
    max = Math.max(step, Math.ceil(dataMax / step - 1e-9) * step);
    if (spec.cap !== undefined) max = Math.min(max, spec.cap);
  } else {
    step = niceStep(max, 5, spec.integer);
  }
  const y = (v) => margin.top + plotH - (plotH * v) / max;

  const root = svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': spec.label, class: 'chart-svg',
  });
  // Gridlines and the value axis.
  const grid = svg('g', { class: 'chart-grid' });
  for (let v = 0; v <= max + step / 1e6; v += step) {
    const yy = y(v);
    grid.append(
      svg('line', { x1: margin.left, x2: margin.left + plotW, y1: yy, y2: yy, class: v === 0 ? 'axis-line' : 'grid-line' }),
      svg('text', { x: margin.left - 8, y: yy + 4, 'text-anchor': 'end', class: 'tick-label' }, spec.format(v)),
    );
  }
  root.append(grid);
  root.append(svg('line', { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotH, class: 'axis-line' }));
  root.append(svg('text', {
    x: 0, y: 0, transform: `translate(16 ${margin.top + plotH / 2}) rotate(-90)`, 'text-anchor': 'middle', class: 'axis-label',
  }, spec.yLabel));

  // Bars.
  const bars = svg('g', { class: 'chart-bars' });
  const groupW = Math.min(slot * 0.72, spec.stacked ? 56 : 28 * spec.series.length);
  const barW = spec.stacked ? groupW : groupW / spec.series.length;
  const labels = [];
  spec.categories.forEach((category, i) => {
    const x0 = margin.left + slot * i + (slot - groupW) / 2;
    let base = 0;
    spec.series.forEach((series, j) => {
      const v = series.values[i];
      if (v === null || v === undefined) return;
      const bottom = spec.stacked ? base : 0;
      const top = bottom + v;
      if (spec.stacked) base = top;
      const x = spec.stacked ? x0 : x0 + barW * j;
      const height0 = Math.max(0, y(bottom) - y(Math.min(top, max)));
      if (v > 0) {
        bars.append(svg('rect', {
          x: x.toFixed(1), y: y(Math.min(top, max)).toFixed(1), width: Math.max(1, barW - (spec.stacked ? 0 : 2)).toFixed(1),
          height: Math.max(height0, 1).toFixed(1), class: `bar ${series.cls}`,
        }, svg('title', {}, t('reports.chart.barTitle', { period: category.long, series: series.label, value: spec.format(v) }))));
      }
      if (!spec.stacked && spec.series.length === 1) {
        labels.push(svg('text', { x: (x + (barW - 2) / 2).toFixed(1), y: (y(Math.min(v, max)) - 5).toFixed(1), 'text-anchor': 'middle', class: 'value-label' }, spec.format(v)));
      }
    });
    if (spec.stacked && base > 0) {
      labels.push(svg('text', { x: (x0 + groupW / 2).toFixed(1), y: (y(Math.min(base, max)) - 5).toFixed(1), 'text-anchor': 'middle', class: 'value-label' }, spec.format(base)));
    }
  });
  // Values above the bars, when every one fits its slot.
  const fits = labels.every((label) => labelWidth(label.textContent) * 0.9 + 4 <= slot);
  root.append(bars, ...(fits ? labels : []));

  // Period labels: as many as fit.
  const widest = Math.max(0, ...spec.categories.map((c) => labelWidth(c.label))) + 10;
  const every = Math.max(1, Math.ceil(widest / slot));
  const xLabels = svg('g', { class: 'chart-x' });
  spec.categories.forEach((category, i) => {
    if ((n - 1 - i) % every !== 0) return;
    const cx = margin.left + slot * i + slot / 2;
    xLabels.append(svg('text', { x: cx.toFixed(1), y: margin.top + plotH + 20, 'text-anchor': 'middle', class: 'tick-label' }, category.label));
  });
  root.append(xLabels);
  root.append(svg('text', {
    x: margin.left + plotW / 2, y: height - 10, 'text-anchor': 'middle', class: 'axis-label',
  }, spec.xLabel));
  return root;
}

function legend(series) {
  return h('ul', { className: 'chart-legend' }, ...series.map((s) => h('li', {},
    svg('svg', { width: 16, height: 16, viewBox: '0 0 16 16', 'aria-hidden': 'true', class: 'legend-swatch' },
      svg('rect', { x: 1, y: 1, width: 14, height: 14, class: `bar ${s.cls}` })),
    h('span', { textContent: s.label }))));
}

// ---------------------------------------------------------------- setup

/**
 * @param {object} options
 * @param {ReturnType<import('/web/shared/api.js').createClient>} options.client
 * @param {() => object[]} options.regions the coordinator's regions ({id, name, time_zone})
 * @param {() => object|null} options.region the region chosen at the top (its zone makes "today")
 */
export function setupReports({ client, regions, region }) {
  const els = {
    section: document.querySelector('[data-testid="reports"]'),
    form: $('reports-form'),
    from: $('reports-from'),
    to: $('reports-to'),
    period: $('reports-period'),
    regionField: $('reports-region-field'),
    regionSelect: $('reports-region'),
    show: $('reports-show'),
    csv: $('reports-csv'),
    error: $('reports-error'),
    status: $('reports-status'),
    empty: $('reports-empty'),
    totals: $('reports-totals'),
    charts: $('reports-charts'),
  };

  const fresh = () => ({
    active: false,
    report: null,
    query: null,
    loading: false,
    seq: 0,
    region: '',
    breakdown: 'language',
    open: new Set(),
    width: 0,
    /** The person changed the dates: the defaults no longer replace them. */
    touched: false,
  });
  let state = fresh();
  let observer = null;
  /** The chart holders and how to draw each, for a redraw at a new width. */
  let drawings = [];

  const regionName = (id) => (regions() ?? []).find((r) => r.id === id)?.name ?? id;
  const manyRegions = () => (regions() ?? []).length > 1;

  // ------------------------------------------------------------ the query

  function setDefaults() {
    const zone = region()?.time_zone;
    const end = today(zone);
    els.to.value = end;
    els.from.value = addDays(mondayOf(end), -7 * 11);
    els.period.value = 'week';
  }

  /** The form's query, or null (and a message) when it cannot be asked. */
  function formQuery() {
    const from = els.from.value;
    const last = els.to.value;
    if (!isDate(from) || !isDate(last) || last < from) {
      showMessage(t('reports.error.range'));
      return null;
    }
    const to = addDays(last, 1);
    if (daysBetween(from, to) > MAX_DAYS) {
      showMessage(t('reports.error.tooLong', { days: MAX_DAYS }));
      return null;
    }
    return { from, to, last, period: els.period.value === 'month' ? 'month' : 'week' };
  }

  const queryString = (q, format) => {
    const params = new URLSearchParams({ from: q.from, to: q.to, period: q.period });
    if (format) params.set('format', format);
    return params.toString();
  };

  function showMessage(text) {
    els.error.replaceChildren(h('span', { className: 'error-text', textContent: text }));
    delete els.error.dataset.errorCode;
    els.error.hidden = false;
  }

  async function load() {
    clearError(els.error);
    const query = formQuery();
    if (!query) return;
    const seq = ++state.seq;
    state.loading = true;
    renderStatus();
    try {
      const report = await client.get(`/api/reports/consultations?${queryString(query)}`);
      if (seq !== state.seq || !state.active) return;
      state.report = report;
      state.query = query;
    } catch (error) {
      if (seq !== state.seq || !state.active) return;
      showError(els.error, error);
    } finally {
      if (seq === state.seq) state.loading = false;
    }
    render();
  }

  // ------------------------------------------------------------ CSV

  /** Keeps the header and the lines of one region (the API's CSV has every region). */
  function onlyRegion(text, regionId) {
    const lines = text.split('\n');
    const field = (line) => {
      // The second field: the region id, quoted ("" inside quotes is one quote).
      const m = line.match(/^[^,]*,("((?:[^"]|"")*)"|[^,]*)/);
      if (!m) return null;
      return m[2] !== undefined ? m[2].replace(/""/g, '"') : m[1];
    };
    return lines.filter((line, i) => i === 0 || line === '' || field(line) === regionId).join('\n');
  }

  async function downloadCsv() {
    clearError(els.error);
    const query = formQuery();
    if (!query) return;
    const url = `/api/reports/consultations?${queryString(query, 'csv')}`;
    const fetchCsv = async () => {
      const token = await client.accessToken();
      try {
        return await fetch(url, {
          headers: { Authorization: `Bearer ${token}`, Accept: 'text/csv' }, cache: 'no-store', credentials: 'same-origin',
        });
      } catch {
        throw new ApiError(0, 'network', '');
      }
    };
    let response = await fetchCsv();
    if (response.status === 401) {
      // The API client refreshes the session (or logs out) on its own 401.
      await client.get('/api/me');
      response = await fetchCsv();
    }
    if (!response.ok) {
      let code = `http_${response.status}`;
      let message = '';
      try {
        const body = await response.json();
        code = body?.error?.code ?? code;
        message = body?.error?.message ?? '';
      } catch {
        // Not JSON.
      }
      throw new ApiError(response.status, code, message);
    }
    let text = await response.text();
    let name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '')?.[1]
      ?? `consultations-${query.from}-${query.to}.csv`;
    if (state.region) {
      text = onlyRegion(text, state.region);
      name = name.replace(/\.csv$/, `-${state.region.replace(/[^\w.-]+/g, '_')}.csv`);
    }
    const href = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
    const link = h('a', { href, download: name, className: 'visually-hidden', tabIndex: -1 });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  }

  // ------------------------------------------------------------ drawing

  function renderRegionSelect() {
    const list = [...(regions() ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    els.regionField.hidden = list.length < 2;
    if (!list.some((r) => r.id === state.region)) state.region = '';
    els.regionSelect.replaceChildren(
      h('option', { value: '', textContent: t('reports.allRegions') }),
      ...list.map((r) => h('option', { value: r.id, textContent: r.name })));
    els.regionSelect.value = state.region;
  }

  function renderStatus() {
    let text = '';
    if (state.loading) text = t('reports.loading');
    else if (state.report && state.query) {
      text = t(state.query.period === 'month' ? 'reports.rangeMonths' : 'reports.rangeWeeks', {
        from: formatDate(state.query.from, { year: 'numeric', month: 'short', day: 'numeric' }),
        to: formatDate(state.query.last, { year: 'numeric', month: 'short', day: 'numeric' }),
      });
    } else text = t('reports.notLoaded');
    if (els.status.textContent !== text) els.status.textContent = text;
  }

  function groupsFor(lines) {
    const breakdown = state.breakdown === 'region' && !manyRegions() ? 'language' : state.breakdown;
    const keyOf = (line) => (breakdown === 'region' ? line.region_id
      : breakdown === 'topic' ? line.topic
        : breakdown === 'channel' ? (line.channel ?? 'kiosk') : line.language);
    const present = [...new Set(lines.map(keyOf))];
    const order = breakdown === 'topic' ? TOPICS : breakdown === 'language' ? LANGUAGES : breakdown === 'channel' ? CHANNELS : null;
    const label = (key) => {
      if (breakdown === 'region') return regionName(key);
      if (breakdown === 'channel') return CHANNELS.includes(key) ? t(`reports.channel.${key}`) : key;
      if (breakdown === 'topic') return TOPICS.includes(key) ? t(`topic.${key}`) : key;
      return LANGUAGES.includes(key) ? t(`language.${key}`) : key;
    };
    present.sort((a, b) => {
      if (order) {
        const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
        return rank(a) - rank(b) || a.localeCompare(b);
      }
      return label(a).localeCompare(label(b));
    });
    return {
      breakdown,
      groupOf: keyOf,
      groups: present.map((key, i) => ({ key, label: label(key), cls: `series-${i % SERIES_COLOURS}` })),
    };
  }

  function periodLabels(period, start) {
    if (period === 'month') {
      return {
        label: formatDate(start, { year: 'numeric', month: 'short' }),
        long: formatDate(start, { year: 'numeric', month: 'long' }),
      };
    }
    return {
      label: formatDate(start, { month: 'numeric', day: 'numeric' }),
      long: t('reports.weekOf', { date: formatDate(start, { year: 'numeric', month: 'short', day: 'numeric' }) }),
    };
  }

  /** A figure: title, optional controls, legend, the chart and its table. */
  function figure({ id, title, note, controls, series, table, draw }) {
    const holder = h('div', { className: 'chart-holder' });
    const details = h('details', {
      className: 'chart-table', open: state.open.has(id),
      ontoggle: (event) => {
        if (event.currentTarget.open) state.open.add(id);
        else state.open.delete(id);
      },
    },
    h('summary', { dataset: { testid: `chart-${id}-table-toggle` }, textContent: t('reports.showTable') }),
    h('div', { className: 'table-wrap' }, table));
    drawings.push({ holder, draw });
    return h('figure', { className: 'chart', dataset: { testid: `chart-${id}` }, attrs: { 'aria-labelledby': `chart-${id}-title` } },
      h('figcaption', {},
        h('h3', { id: `chart-${id}-title`, className: 'chart-title', textContent: title }),
        note ? h('p', { className: 'hint', textContent: note }) : null),
      controls ?? null,
      series ? legend(series) : null,
      holder,
      details);
  }

  function dataTable(caption, headers, rows, foot) {
    return h('table', { className: 'figures' },
      h('caption', { className: 'visually-hidden', textContent: caption }),
      h('thead', {}, h('tr', {}, ...headers.map((text) => h('th', { scope: 'col', textContent: text })))),
      h('tbody', {}, ...rows.map(({ key, cells }) => h('tr', { dataset: { period: key } },
        h('th', { scope: 'row', className: 'nowrap', textContent: cells[0] }),
        ...cells.slice(1).map((text) => h('td', { className: 'num', textContent: text }))))),
      foot ? h('tfoot', {}, h('tr', {},
        h('th', { scope: 'row', textContent: foot[0] }),
        ...foot.slice(1).map((text) => h('td', { className: 'num', textContent: text })))) : null);
  }

  function breakdownControl() {
    const options = [['language', t('reports.breakdown.language')], ['topic', t('reports.breakdown.topic')], ['channel', t('reports.breakdown.channel')]];
    if (manyRegions()) options.push(['region', t('reports.breakdown.region')]);
    const select = h('select', {
      id: 'reports-breakdown',
      dataset: { testid: 'reports-breakdown' },
      onchange: (event) => {
        state.breakdown = event.currentTarget.value;
        render();
      },
    }, ...options.map(([value, text]) => h('option', { value, textContent: text })));
    select.value = options.some(([v]) => v === state.breakdown) ? state.breakdown : 'language';
    return h('div', { className: 'field chart-control' },
      h('label', { htmlFor: 'reports-breakdown', textContent: t('reports.breakdown.label') }),
      select);
  }

  function renderReport() {
    drawings = [];
    const report = state.report;
    const query = state.query;
    if (!report || !query) {
      els.empty.hidden = true;
      els.totals.replaceChildren();
      els.charts.replaceChildren();
      return;
    }
    const lines = (report.lines ?? []).filter((l) => !state.region || l.region_id === state.region);
    if (!lines.length) {
      els.empty.hidden = false;
      els.totals.replaceChildren();
      els.charts.replaceChildren();
      return;
    }
    els.empty.hidden = true;
    const period = report.period === 'month' ? 'month' : 'week';
    const { groups, groupOf } = groupsFor(lines);
    const waitsOf = waitsFor(report, state.region);
    const rows = aggregate(lines, periodStarts(query.from, query.to, period), groupOf, waitsOf);
    const total = totalsOf(rows, waitsOf(null));
    const categories = rows.map((r) => ({ key: r.period, ...periodLabels(period, r.period) }));
    const xLabel = t(period === 'month' ? 'reports.axis.month' : 'reports.axis.week');
    const dash = t('list.none');

    // Totals.
    const tile = (key, label, value, detail) => h('div', { className: 'total', dataset: { testid: `reports-total-${key}` } },
      h('dt', { textContent: label }),
      h('dd', {}, h('span', { className: 'total-value', textContent: value }),
        detail ? h('span', { className: 'total-detail', textContent: detail }) : null));
    els.totals.replaceChildren(
      tile('requests', t('reports.total.requests'), count(total.requests)),
      tile('consultations', t('reports.total.consultations'), count(total.consultations)),
      tile('abandoned', t('reports.total.abandoned'), count(total.abandoned),
        total.abandonmentRate == null ? null : t('reports.total.rate', { rate: percent(total.abandonmentRate) })),
      tile('wait', t('reports.total.wait'), total.p50 == null ? dash : waitText(total.p50),
        total.p90 == null ? null : t('reports.total.p90', { wait: waitText(total.p90) })),
      tile('rating', t('reports.total.rating'), total.ratingAvg == null ? dash : decimal(total.ratingAvg),
        t('reports.total.ratings', { count: count(total.ratings) })));

    // 1. Consultations per period, stacked by the chosen breakdown.
    const series = groups.map((g) => ({ ...g, values: rows.map((r) => r.groups.get(g.key) ?? 0) }));
    const consultations = figure({
      id: 'consultations',
      title: t(period === 'month' ? 'reports.chart.consultationsMonth' : 'reports.chart.consultationsWeek'),
      controls: breakdownControl(),
      series,
      table: dataTable(t('reports.chart.consultationsTable'),
        [t('reports.col.period'), ...groups.map((g) => g.label), t('reports.col.total')],
        rows.map((r) => ({ key: r.period, cells: [periodLabels(period, r.period).long, ...groups.map((g) => count(r.groups.get(g.key) ?? 0)), count(r.consultations)] })),
        [t('reports.col.total'), ...groups.map((g) => count(rows.reduce((a, r) => a + (r.groups.get(g.key) ?? 0), 0))), count(total.consultations)]),
      draw: (width) => barChart({
        categories, series, stacked: true, integer: true, format: count,
        yLabel: t('reports.axis.consultations'), xLabel, label: t('reports.chart.svgLabel', { title: t('reports.chart.consultationsTitle') }),
      }, width),
    });

    // 2. Waits: the median and the 90th percentile, side by side.
    const maxWait = Math.max(0, ...rows.map((r) => r.p90 ?? 0));
    const minutes = maxWait >= 120;
    const unit = minutes ? 60 : 1;
    const waitSeries = [
      { key: 'p50', label: t('reports.wait.p50'), cls: 'wait-p50', values: rows.map((r) => (r.p50 == null ? null : r.p50 / unit)) },
      { key: 'p90', label: t('reports.wait.p90'), cls: 'wait-p90', values: rows.map((r) => (r.p90 == null ? null : r.p90 / unit)) },
    ];
    const waits = figure({
      id: 'waits',
      title: t('reports.chart.waitsTitle'),
      note: t('reports.chart.waitsNote'),
      series: waitSeries,
      table: dataTable(t('reports.chart.waitsTitle'),
        [t('reports.col.period'), t('reports.wait.p50'), t('reports.wait.p90'), t('reports.col.consultations')],
        rows.map((r) => ({ key: r.period, cells: [periodLabels(period, r.period).long, r.p50 == null ? dash : waitText(r.p50), r.p90 == null ? dash : waitText(r.p90), count(r.consultations)] })),
        [t('reports.col.total'), total.p50 == null ? dash : waitText(total.p50), total.p90 == null ? dash : waitText(total.p90), count(total.consultations)]),
      draw: (width) => barChart({
        categories, series: waitSeries, stacked: false, integer: !minutes,
        format: (v) => (minutes ? decimal(v, v < 10 && v % 1 ? 1 : 0) : count(v)),
        yLabel: t(minutes ? 'reports.axis.waitMinutes' : 'reports.axis.waitSeconds'), xLabel,
        label: t('reports.chart.svgLabel', { title: t('reports.chart.waitsTitle') }),
      }, width),
    });

    // 3. Abandonment rate.
    const abandonSeries = [{ key: 'rate', label: t('reports.abandon.rate'), cls: 'abandon', values: rows.map((r) => r.abandonmentRate) }];
    const abandonment = figure({
      id: 'abandonment',
      title: t('reports.chart.abandonTitle'),
      note: t('reports.chart.abandonNote'),
      series: abandonSeries,
      table: dataTable(t('reports.chart.abandonTitle'),
        [t('reports.col.period'), t('reports.col.requests'), t('reports.col.abandoned'), t('reports.abandon.rate')],
        rows.map((r) => ({ key: r.period, cells: [periodLabels(period, r.period).long, count(r.requests), count(r.abandoned), r.abandonmentRate == null ? dash : percent(r.abandonmentRate)] })),
        [t('reports.col.total'), count(total.requests), count(total.abandoned), total.abandonmentRate == null ? dash : percent(total.abandonmentRate)]),
      draw: (width) => barChart({
        categories, series: abandonSeries, stacked: false, cap: 1,
        format: (v) => percent(v),
        yLabel: t('reports.axis.rate'), xLabel, label: t('reports.chart.svgLabel', { title: t('reports.chart.abandonTitle') }),
      }, width),
    });

    // 4. Satisfaction: the average rating (1 to 5); how many rated is in the table and the tooltips.
    const ratingSeries = [{ key: 'rating', label: t('reports.rating.average'), cls: 'rating', values: rows.map((r) => r.ratingAvg) }];
    const satisfaction = figure({
      id: 'satisfaction',
      title: t('reports.chart.ratingTitle'),
      note: total.ratings
        ? t('reports.chart.ratingNote', { average: decimal(total.ratingAvg), count: count(total.ratings) })
        : t('reports.chart.ratingNone'),
      series: ratingSeries,
      table: dataTable(t('reports.chart.ratingTitle'),
        [t('reports.col.period'), t('reports.rating.average'), t('reports.col.ratings')],
        rows.map((r) => ({ key: r.period, cells: [periodLabels(period, r.period).long, r.ratingAvg == null ? dash : decimal(r.ratingAvg), count(r.ratings)] })),
        [t('reports.col.total'), total.ratingAvg == null ? dash : decimal(total.ratingAvg), count(total.ratings)]),
      draw: (width) => barChart({
        categories, series: ratingSeries, stacked: false, fixedMax: 5, integer: true,
        format: (v) => (Number.isInteger(v) ? count(v) : decimal(v)),
        yLabel: t('reports.axis.rating'), xLabel, label: t('reports.chart.svgLabel', { title: t('reports.chart.ratingTitle') }),
      }, width),
    });

    keepingFocus(() => els.charts.replaceChildren(consultations, waits, abandonment, satisfaction));
    draw();
  }

  /** Draws every chart at its holder's width (again after a resize). */
  function draw() {
    for (const { holder, draw: drawOne } of drawings) {
      const width = Math.max(280, Math.floor(holder.clientWidth || els.charts.clientWidth || 640));
      holder.replaceChildren(drawOne(width));
    }
    state.width = els.charts.clientWidth;
  }

  function render() {
    if (!state.active) return;
    renderRegionSelect();
    renderStatus();
    renderReport();
  }

  // ------------------------------------------------------------ events

  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  els.period.addEventListener('change', () => load());
  for (const input of [els.from, els.to, els.period]) {
    input.addEventListener('input', () => {
      state.touched = true;
    });
  }
  els.regionSelect.addEventListener('change', () => {
    state.region = els.regionSelect.value;
    render();
  });
  els.csv.addEventListener('click', async () => {
    els.csv.disabled = true;
    try {
      await downloadCsv();
    } catch (error) {
      showError(els.error, error);
    } finally {
      els.csv.disabled = false;
    }
  });
  let resizeTimer = null;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (state.active && drawings.length && Math.abs(els.charts.clientWidth - state.width) > 4) draw();
    }, 150);
  }).observe(els.charts);

  return {
    show() {
      state = fresh();
      state.active = true;
      setDefaults();
      render();
      // The first report loads when the section comes into view (each read is audited).
      observer?.disconnect();
      observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          observer?.disconnect();
          observer = null;
          if (state.active && !state.report && !state.loading) load();
        }
      });
      observer.observe(els.section);
    },
    hide() {
      observer?.disconnect();
      observer = null;
      state = fresh();
      drawings = [];
      clearError(els.error);
      els.status.textContent = '';
      els.empty.hidden = true;
      els.totals.replaceChildren();
      els.charts.replaceChildren();
      els.form.reset();
    },
    /** The regions arrived: the filter, and "today" in the region's zone. */
    regionsChanged() {
      if (!state.active) return;
      if (!state.touched && !state.report && !state.loading) setDefaults();
      render();
    },
    render,
  };
}
