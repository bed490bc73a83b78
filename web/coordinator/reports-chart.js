// The reports' charts: bar charts (stacked or grouped) drawn as inline SVG at
// the width they get, and their legends.

import { t } from '/web/shared/i18n.js';
import { h } from '/web/shared/dom.js';

const SVG = 'http://www.w3.org/2000/svg';

/**
 * A round step for about `ticks` gridlines up to max.
 * @param {number} max
 * @param {number} ticks
 * @param {boolean} [integer]
 */
function niceStep(max, ticks, integer) {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  return integer ? Math.max(1, Math.ceil(step)) : step;
}

/**
 * Creates an SVG element with attributes (those null, undefined or false left out) and children.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...(Node | string | null | undefined | false | (Node | string)[])} children
 */
export function svg(tag, attrs = {}, ...children) {
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

/**
 * A rough width of a label in pixels (CJK characters are wider).
 * @param {string} text
 */
const labelWidth = (text) => [...text].reduce((w, ch) => w + (ch.charCodeAt(0) > 0x2e80 ? 13 : 7.5), 0);

/**
 * A bar chart, stacked or grouped, sized to `width` pixels so its text stays
 * at its real size.
 * @param {object} spec
 * @param {{key: string, label: string, long: string}[]} spec.categories the periods
 * @param {{key: string, label: string, cls: string, values: (number|null)[]}[]} spec.series
 * @param {boolean} spec.stacked
 * @param {number} [spec.fixedMax] the top of the scale (else from the data)
 * @param {number} [spec.cap] the highest top of a scale from the data
 * @param {boolean} [spec.integer] whole-number gridlines
 * @param {(v: number) => string} spec.format a value as text (ticks, labels, titles)
 * @param {string} spec.yLabel
 * @param {string} spec.xLabel
 * @param {string} spec.label the chart's name for assistive technology
 * @param {number} width in pixels
 */
export function barChart(spec, width) {
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

/**
 * The series' colours and names.
 * @param {{label: string, cls: string}[]} series
 */
export function legend(series) {
  return h('ul', { className: 'chart-legend' }, ...series.map((s) => h('li', {},
    svg('svg', { width: 16, height: 16, viewBox: '0 0 16 16', 'aria-hidden': 'true', class: 'legend-swatch' },
      svg('rect', { x: 1, y: 1, width: 14, height: 14, class: `bar ${s.cls}` })),
    h('span', { textContent: s.label }))));
}
