// What a loaded report shows: the totals, and four figures (consultations by
// a chosen breakdown, waits, abandonment, satisfaction), each a chart with a
// legend and a table of the same figures.

import { t } from '/web/shared/i18n.js';
import { h } from '/web/shared/dom.js';
import { CHANNELS, LANGUAGES, TOPICS } from '/web/shared/codes.js';
import { barChart, legend } from '/web/coordinator/reports-chart.js';
import {
  aggregate, count, decimal, formatDate, percent, periodStarts, totalsOf, waitText, waitsFor,
} from '/web/coordinator/reports-data.js';

/** Colours of the series (coordinator.css .series-N); more groups than this repeat them. */
const SERIES_COLOURS = 8;

/** @typedef {{holder: HTMLElement, draw: (width: number) => SVGElement}} Drawing a chart's holder and how to draw it at a width */
/** @typedef {{key: string, label: string, cls: string}} Group */
/** @typedef {ReturnType<typeof aggregate>[number]} Row */
/** @typedef {ReturnType<typeof totalsOf>} Total */

/**
 * What the figures are drawn from, and what they change.
 * @typedef {object} View
 * @property {{period?: string, waits?: object[]}} report
 * @property {{from: string, to: string}} query
 * @property {string} region the region shown ('' for all)
 * @property {string} breakdown what the consultations are stacked by
 * @property {Set<string>} open the figures whose table is open
 * @property {(id: string) => string} regionName
 * @property {boolean} manyRegions
 * @property {(breakdown: string) => void} onBreakdown the breakdown was changed
 */

/**
 * What one figure is made of: its period labels, rows, totals and how to make a figure.
 * @typedef {object} Parts
 * @property {'week' | 'month'} period
 * @property {Row[]} rows
 * @property {Total} total
 * @property {{key: string, label: string, long: string}[]} categories
 * @property {string} xLabel
 * @property {(start: string) => string} long a period's long name
 * @property {(spec: FigureSpec) => HTMLElement} figure
 */

/**
 * @typedef {object} FigureSpec
 * @property {string} id
 * @property {string} title
 * @property {string} [note]
 * @property {HTMLElement} [controls]
 * @property {{label: string, cls: string}[]} series
 * @property {HTMLElement} table
 * @property {(width: number) => SVGElement} draw
 */

const dash = () => t('list.none');

/**
 * The groups (languages, topics, channels or regions) of the report's lines, in order, each with its colour.
 * @param {View} view
 * @param {any[]} lines
 */
function groupsFor(view, lines) {
  const breakdown = view.breakdown === 'region' && !view.manyRegions ? 'language' : view.breakdown;
  /** @param {any} line */
  const keyOf = (line) => (breakdown === 'region' ? line.region_id
    : breakdown === 'topic' ? line.topic
      : breakdown === 'channel' ? (line.channel ?? 'kiosk') : line.language);
  /** @type {string[]} */
  const present = [...new Set(lines.map(keyOf))];
  const order = breakdown === 'topic' ? TOPICS : breakdown === 'language' ? LANGUAGES : breakdown === 'channel' ? CHANNELS : null;
  /** @param {string} key */
  const label = (key) => {
    if (breakdown === 'region') return view.regionName(key);
    if (breakdown === 'channel') return CHANNELS.includes(key) ? t(`reports.channel.${key}`) : key;
    if (breakdown === 'topic') return TOPICS.includes(key) ? t(`topic.${key}`) : key;
    return LANGUAGES.includes(key) ? t(`language.${key}`) : key;
  };
  present.sort((a, b) => {
    if (order) {
      const rank = (/** @type {string} */ k) => (order.includes(k) ? order.indexOf(k) : order.length);
      return rank(a) - rank(b) || a.localeCompare(b);
    }
    return label(a).localeCompare(label(b));
  });
  return {
    groupOf: keyOf,
    /** @type {Group[]} */
    groups: present.map((key, i) => ({ key, label: label(key), cls: `series-${i % SERIES_COLOURS}` })),
  };
}

/**
 * A period's short and long names.
 * @param {'week' | 'month'} period
 * @param {string} start
 */
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

/**
 * A table of a figure's numbers: one row per period, and the totals.
 * @param {string} caption
 * @param {string[]} headers
 * @param {{key: string, cells: string[]}[]} rows
 * @param {string[]} [foot]
 */
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

/**
 * The select that chooses what the consultations are stacked by.
 * @param {View} view
 */
function breakdownControl(view) {
  const options = [['language', t('reports.breakdown.language')], ['topic', t('reports.breakdown.topic')], ['channel', t('reports.breakdown.channel')]];
  if (view.manyRegions) options.push(['region', t('reports.breakdown.region')]);
  const select = h('select', {
    id: 'reports-breakdown',
    dataset: { testid: 'reports-breakdown' },
    onchange: (/** @type {Event} */ event) => view.onBreakdown(/** @type {HTMLSelectElement} */ (event.currentTarget).value),
  }, ...options.map(([value, text]) => h('option', { value, textContent: text })));
  select.value = options.some(([v]) => v === view.breakdown) ? view.breakdown : 'language';
  return h('div', { className: 'field chart-control' },
    h('label', { htmlFor: 'reports-breakdown', textContent: t('reports.breakdown.label') }),
    select);
}

/**
 * The totals over the whole report, as tiles.
 * @param {Total} total
 */
function totalTiles(total) {
  /**
   * @param {string} key
   * @param {string} label
   * @param {string} value
   * @param {string | null} [detail]
   */
  const tile = (key, label, value, detail) => h('div', { className: 'total', dataset: { testid: `reports-total-${key}` } },
    h('dt', { textContent: label }),
    h('dd', {}, h('span', { className: 'total-value', textContent: value }),
      detail ? h('span', { className: 'total-detail', textContent: detail }) : null));
  return [
    tile('requests', t('reports.total.requests'), count(total.requests)),
    tile('consultations', t('reports.total.consultations'), count(total.consultations)),
    tile('abandoned', t('reports.total.abandoned'), count(total.abandoned),
      total.abandonmentRate == null ? null : t('reports.total.rate', { rate: percent(total.abandonmentRate) })),
    tile('wait', t('reports.total.wait'), total.p50 == null ? dash() : waitText(total.p50),
      total.p90 == null ? null : t('reports.total.p90', { wait: waitText(total.p90) })),
    tile('rating', t('reports.total.rating'), total.ratingAvg == null ? dash() : decimal(total.ratingAvg),
      t('reports.total.ratings', { count: count(total.ratings) })),
  ];
}

/**
 * 1. Consultations per period, stacked by the chosen breakdown.
 * @param {Parts} p
 * @param {Group[]} groups
 * @param {HTMLElement} controls
 */
function consultationsFigure(p, groups, controls) {
  const { rows, total } = p;
  const series = groups.map((g) => ({ ...g, values: rows.map((r) => r.groups.get(g.key) ?? 0) }));
  return p.figure({
    id: 'consultations',
    title: t(p.period === 'month' ? 'reports.chart.consultationsMonth' : 'reports.chart.consultationsWeek'),
    controls,
    series,
    table: dataTable(t('reports.chart.consultationsTable'),
      [t('reports.col.period'), ...groups.map((g) => g.label), t('reports.col.total')],
      rows.map((r) => ({ key: r.period, cells: [p.long(r.period), ...groups.map((g) => count(r.groups.get(g.key) ?? 0)), count(r.consultations)] })),
      [t('reports.col.total'), ...groups.map((g) => count(rows.reduce((a, r) => a + (r.groups.get(g.key) ?? 0), 0))), count(total.consultations)]),
    draw: (width) => barChart({
      categories: p.categories, series, stacked: true, integer: true, format: count,
      yLabel: t('reports.axis.consultations'), xLabel: p.xLabel, label: t('reports.chart.svgLabel', { title: t('reports.chart.consultationsTitle') }),
    }, width),
  });
}

/**
 * 2. Waits: the median and the 90th percentile, side by side.
 * @param {Parts} p
 */
function waitsFigure(p) {
  const { rows, total } = p;
  const maxWait = Math.max(0, ...rows.map((r) => r.p90 ?? 0));
  const minutes = maxWait >= 120;
  const unit = minutes ? 60 : 1;
  const series = [
    { key: 'p50', label: t('reports.wait.p50'), cls: 'wait-p50', values: rows.map((r) => (r.p50 == null ? null : r.p50 / unit)) },
    { key: 'p90', label: t('reports.wait.p90'), cls: 'wait-p90', values: rows.map((r) => (r.p90 == null ? null : r.p90 / unit)) },
  ];
  return p.figure({
    id: 'waits',
    title: t('reports.chart.waitsTitle'),
    note: t('reports.chart.waitsNote'),
    series,
    table: dataTable(t('reports.chart.waitsTitle'),
      [t('reports.col.period'), t('reports.wait.p50'), t('reports.wait.p90'), t('reports.col.consultations')],
      rows.map((r) => ({ key: r.period, cells: [p.long(r.period), r.p50 == null ? dash() : waitText(r.p50), r.p90 == null ? dash() : waitText(r.p90), count(r.consultations)] })),
      [t('reports.col.total'), total.p50 == null ? dash() : waitText(total.p50), total.p90 == null ? dash() : waitText(total.p90), count(total.consultations)]),
    draw: (width) => barChart({
      categories: p.categories, series, stacked: false, integer: !minutes,
      format: (v) => (minutes ? decimal(v, v < 10 && v % 1 ? 1 : 0) : count(v)),
      yLabel: t(minutes ? 'reports.axis.waitMinutes' : 'reports.axis.waitSeconds'), xLabel: p.xLabel,
      label: t('reports.chart.svgLabel', { title: t('reports.chart.waitsTitle') }),
    }, width),
  });
}

/**
 * 3. Abandonment rate.
 * @param {Parts} p
 */
function abandonmentFigure(p) {
  const { rows, total } = p;
  const series = [{ key: 'rate', label: t('reports.abandon.rate'), cls: 'abandon', values: rows.map((r) => r.abandonmentRate) }];
  return p.figure({
    id: 'abandonment',
    title: t('reports.chart.abandonTitle'),
    note: t('reports.chart.abandonNote'),
    series,
    table: dataTable(t('reports.chart.abandonTitle'),
      [t('reports.col.period'), t('reports.col.requests'), t('reports.col.abandoned'), t('reports.abandon.rate')],
      rows.map((r) => ({ key: r.period, cells: [p.long(r.period), count(r.requests), count(r.abandoned), r.abandonmentRate == null ? dash() : percent(r.abandonmentRate)] })),
      [t('reports.col.total'), count(total.requests), count(total.abandoned), total.abandonmentRate == null ? dash() : percent(total.abandonmentRate)]),
    draw: (width) => barChart({
      categories: p.categories, series, stacked: false, cap: 1,
      format: (v) => percent(v),
      yLabel: t('reports.axis.rate'), xLabel: p.xLabel, label: t('reports.chart.svgLabel', { title: t('reports.chart.abandonTitle') }),
    }, width),
  });
}

/**
 * 4. Satisfaction: the average rating (1 to 5); how many rated is in the table and the tooltips.
 * @param {Parts} p
 */
function satisfactionFigure(p) {
  const { rows, total } = p;
  const series = [{ key: 'rating', label: t('reports.rating.average'), cls: 'rating', values: rows.map((r) => r.ratingAvg) }];
  return p.figure({
    id: 'satisfaction',
    title: t('reports.chart.ratingTitle'),
    note: total.ratings
      ? t('reports.chart.ratingNote', { average: decimal(total.ratingAvg), count: count(total.ratings) })
      : t('reports.chart.ratingNone'),
    series,
    table: dataTable(t('reports.chart.ratingTitle'),
      [t('reports.col.period'), t('reports.rating.average'), t('reports.col.ratings')],
      rows.map((r) => ({ key: r.period, cells: [p.long(r.period), r.ratingAvg == null ? dash() : decimal(r.ratingAvg), count(r.ratings)] })),
      [t('reports.col.total'), total.ratingAvg == null ? dash() : decimal(total.ratingAvg), count(total.ratings)]),
    draw: (width) => barChart({
      categories: p.categories, series, stacked: false, fixedMax: 5, integer: true,
      format: (v) => (Number.isInteger(v) ? count(v) : decimal(v)),
      yLabel: t('reports.axis.rating'), xLabel: p.xLabel, label: t('reports.chart.svgLabel', { title: t('reports.chart.ratingTitle') }),
    }, width),
  });
}

/**
 * The totals and the figures of a report's lines (of the region shown), and
 * the charts to draw into them once they are on the page.
 * @param {View} view
 * @param {any[]} lines
 */
export function reportFigures(view, lines) {
  const period = view.report.period === 'month' ? 'month' : 'week';
  const { groups, groupOf } = groupsFor(view, lines);
  const waitsOf = waitsFor(view.report, view.region);
  const rows = aggregate(lines, periodStarts(view.query.from, view.query.to, period), groupOf, waitsOf);
  /** @type {Drawing[]} */
  const drawings = [];
  /** A figure: title, optional controls, legend, the chart and its table. */
  const figure = (/** @type {FigureSpec} */ { id, title, note, controls, series, table, draw }) => {
    const holder = h('div', { className: 'chart-holder' });
    const details = h('details', {
      className: 'chart-table', open: view.open.has(id),
      ontoggle: (/** @type {Event} */ event) => {
        if (/** @type {HTMLDetailsElement} */ (event.currentTarget).open) view.open.add(id);
        else view.open.delete(id);
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
  };
  /** @type {Parts} */
  const parts = {
    period,
    rows,
    total: totalsOf(rows, waitsOf(null)),
    categories: rows.map((r) => ({ key: r.period, ...periodLabels(period, r.period) })),
    xLabel: t(period === 'month' ? 'reports.axis.month' : 'reports.axis.week'),
    long: (start) => periodLabels(period, start).long,
    figure,
  };
  const totals = totalTiles(parts.total);
  const figures = [
    consultationsFigure(parts, groups, breakdownControl(view)),
    waitsFigure(parts),
    abandonmentFigure(parts),
    satisfactionFigure(parts),
  ];
  return { totals, figures, drawings };
}
