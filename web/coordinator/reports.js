// The coordinator's reports: consultations, waits, abandonment and
// satisfaction per week or month (GET /api/reports/consultations), drawn as
// inline SVG bar charts, each with a legend and a table of the same figures
// (reports-figures.js, reports-chart.js, with the arithmetic in
// reports-data.js), and a CSV download of the same query (reports-csv.js).
// This module has the query form, the region filter and the status line.

import { t, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus, byTestId } from '/web/shared/dom.js';
import { addDays, daysBetween, formatDate, isDate, mondayOf, today } from '/web/coordinator/reports-data.js';
import { reportFigures } from '/web/coordinator/reports-figures.js';
import { downloadCsv, queryString } from '/web/coordinator/reports-csv.js';

const MAX_DAYS = 366;

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => import('/web/coordinator/regions.js').Region[]} options.regions the coordinator's regions
 * @param {() => import('/web/coordinator/regions.js').Region | null} options.region the region chosen at the top (its zone makes "today")
 */
export function setupReports({ client, regions, region }) {
  const els = {
    section: byTestId('reports'),
    form: $('reports-form', HTMLFormElement),
    from: $('reports-from', HTMLInputElement),
    to: $('reports-to', HTMLInputElement),
    period: $('reports-period', HTMLSelectElement),
    regionField: $('reports-region-field'),
    regionSelect: $('reports-region', HTMLSelectElement),
    show: $('reports-show', HTMLButtonElement),
    csv: $('reports-csv', HTMLButtonElement),
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
    const drawn = reportFigures({
      report,
      query,
      region: state.region,
      breakdown: state.breakdown,
      open: state.open,
      regionName,
      manyRegions: manyRegions(),
      onBreakdown: (breakdown) => {
        state.breakdown = breakdown;
        render();
      },
    }, lines);
    els.totals.replaceChildren(...drawn.totals);
    drawings = drawn.drawings;
    keepingFocus(() => els.charts.replaceChildren(...drawn.figures));
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
      clearError(els.error);
      const query = formQuery();
      if (query) await downloadCsv(client, query, state.region);
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
