// The regions card: the regions the account can see (GET /api/regions), and
// for admins a form that creates one (POST /api/regions). The list itself is
// app.js's (state.regions, loaded by its loadRegions()), so that after a
// region is created the picker, the queue, the schedule and the reports all
// see it; this module only shows it and asks app.js to load it again.

import { t, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus, control } from '/web/shared/dom.js';

/** Zones offered first in the time-zone list (the server's default, Asia/Shanghai, is the form's). */
const COMMON_ZONES = [
  'Asia/Shanghai', 'Asia/Urumqi', 'Asia/Hong_Kong', 'Asia/Taipei', 'Asia/Kathmandu', 'Asia/Thimphu',
  'Asia/Kolkata', 'Asia/Dhaka', 'Asia/Yangon', 'Asia/Bangkok', 'Asia/Singapore', 'Asia/Tokyo', 'UTC',
];

/**
 * A region as GET /api/regions gives it.
 * @typedef {{id: string, name: string, parent_id?: string | null, time_zone?: string}} Region
 */

/** Regions in tree order (parents before their children), with their depth. */
export function regionTree(regions) {
  const byParent = new Map();
  const known = new Set(regions.map((r) => r.id));
  for (const region of regions) {
    const parent = region.parent_id && known.has(region.parent_id) ? region.parent_id : null;
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(region);
  }
  const out = [];
  const walk = (parent, depth) => {
    const children = (byParent.get(parent) ?? []).sort((a, b) => a.name.localeCompare(b.name));
    for (const child of children) {
      out.push({ region: child, depth });
      if (depth < 8) walk(child.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

/**
 * Which field a refusal of POST /api/regions is about, and the error to show
 * for it: the server's code stays the cause, its message the detail line.
 */
function explain(error) {
  const message = error?.serverMessage ?? '';
  if (error?.code === 'conflict') return { field: 'id', shown: { ...error, code: 'region_exists', serverMessage: message } };
  if (error?.code === 'invalid_field') {
    const fields = { 'id:': ['id', 'region_id'], 'name:': ['name', 'region_name'], 'parent_id:': ['parent_id', 'region_parent'], 'time_zone:': ['time_zone', 'region_time_zone'] };
    for (const [prefix, [field, code]] of Object.entries(fields)) {
      if (message.startsWith(prefix)) return { field, shown: { ...error, code, serverMessage: message } };
    }
  }
  return { field: null, shown: error };
}

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => Region[] | null} options.regions the regions app.js holds (null before they load)
 * @param {() => boolean} options.isAdmin whether the account may create regions
 * @param {() => Promise<void>} options.reload loads the regions again and tells every section
 * @param {(key: string, vars?: object) => void} options.reportOk a line in the status area
 */
export function setupRegions({ client, regions, isAdmin, reload, reportOk }) {
  const els = {
    body: $('regions-body'),
    form: $('region-form', HTMLFormElement),
    formHeading: $('region-form-heading'),
    viewerHint: $('regions-viewer-hint'),
    parent: $('region-parent', HTMLSelectElement),
    zones: $('region-time-zones', HTMLDataListElement),
    error: $('region-error'),
    submit: $('region-create', HTMLButtonElement),
  };
  let active = false;

  function fillZones() {
    let all = [];
    try {
      all = Intl.supportedValuesOf('timeZone');
    } catch {
      // An older browser: the common zones only.
    }
    const zones = [...new Set([...COMMON_ZONES, ...all])];
    els.zones.replaceChildren(...zones.map((zone) => h('option', { value: zone })));
  }

  const nameOf = (id) => (regions() ?? []).find((r) => r.id === id)?.name ?? id;

  function renderTable() {
    const list = regions();
    keepingFocus(() => {
      let rows;
      if (list === null) {
        rows = [];
      } else if (!list.length) {
        rows = [h('tr', {}, h('td', { className: 'empty', colSpan: 4, textContent: t('regions.empty') }))];
      } else {
        rows = regionTree(list).map(({ region }) => h('tr', { dataset: { regionId: region.id, testid: `region-row-${region.id}` } },
          h('td', {}, h('code', { className: 'region-id', translate: false, textContent: region.id })),
          h('th', { scope: 'row', textContent: region.name }),
          h('td', {
            className: region.parent_id ? undefined : 'muted',
            textContent: region.parent_id ? nameOf(region.parent_id) : t('regions.topLevel'),
          }),
          h('td', { className: 'nowrap', textContent: region.time_zone || 'UTC' })));
      }
      els.body.replaceChildren(...rows);
    });
  }

  function renderParents() {
    const chosen = els.parent.value;
    const list = regionTree(regions() ?? []);
    els.parent.replaceChildren(
      h('option', { value: '', textContent: t('regions.field.parentNone') }),
      ...list.map(({ region, depth }) =>
        h('option', { value: region.id, textContent: `${'\u2003'.repeat(depth)}${region.name}` })));
    els.parent.value = list.some(({ region }) => region.id === chosen) ? chosen : '';
  }

  function render() {
    if (!active) return;
    const admin = isAdmin();
    els.form.hidden = !admin;
    els.formHeading.hidden = !admin;
    els.viewerHint.hidden = admin;
    renderTable();
    if (admin) renderParents();
  }

  /** @param {string | null} field */
  function markInvalid(field) {
    for (const marked of els.form.querySelectorAll('[aria-invalid]')) marked.removeAttribute('aria-invalid');
    if (!field) return;
    const invalid = control(els.form, field);
    invalid.setAttribute('aria-invalid', 'true');
    invalid.focus();
  }

  function clearProblem() {
    clearError(els.error);
    markInvalid(null);
  }

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = els.form;
    const body = {
      id: control(form, 'id').value.trim(),
      name: control(form, 'name').value.trim(),
    };
    if (control(form, 'parent_id').value) body.parent_id = control(form, 'parent_id').value;
    const zone = control(form, 'time_zone').value.trim();
    if (zone) body.time_zone = zone;
    els.submit.disabled = true;
    try {
      const created = await client.post('/api/regions', body);
      clearProblem();
      form.reset();
      await reload();
      reportOk('regions.created', { name: created.name, id: created.id });
      control(form, 'id').focus();
    } catch (error) {
      const { field, shown } = explain(error);
      showError(els.error, shown);
      markInvalid(field);
    } finally {
      els.submit.disabled = false;
    }
  });

  // Typing again in a refused field takes its mark away (the message stays until the next try).
  els.form.addEventListener('input', (event) => {
    const target = event.target;
    if (target instanceof Element && target.getAttribute('aria-invalid')) target.removeAttribute('aria-invalid');
  });

  fillZones();

  return {
    show() {
      active = true;
      render();
    },
    hide() {
      active = false;
      els.form.reset();
      clearProblem();
      els.body.replaceChildren();
      els.parent.replaceChildren();
      els.form.hidden = true;
      els.formHeading.hidden = true;
      els.viewerHint.hidden = true;
    },
    /** After app.js loaded the regions again. */
    regionsChanged: render,
    render,
  };
}
