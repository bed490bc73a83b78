// The receiving offices of the region chosen at the top (in the regions card):
// where lawyers refer residents (legal aid, people's mediation, another
// service), how many days each has to decide, and its caseworkers.
// GET and POST /api/regions/{region}/offices, PUT /api/offices/{id}; the
// caseworkers are chosen from the accounts with the caseworker role.

import { seg } from '/web/shared/api.js';
import { t, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus, checkedValues, byTestId, control } from '/web/shared/dom.js';
import { serviceText } from '/web/coordinator/referral-text.js';

/** A service code of the server's: a lowercase letter, then 1 to 31 lowercase letters or "_". */
const SERVICE_CODE = /^[a-z][a-z_]{1,31}$/;
/** The language of the name residents at the kiosks read beside the office's own (`names.bo`). */
const RESIDENTS = 'bo';

/**
 * A receiving office.
 * @typedef {{id: string, region_id: string, service: string, name: string, names?: Record<string, string>,
 *   decision_days: number, caseworkers: {id: string, display_name: string}[]}} Office
 */

/**
 * The office's name in Tibetan, or ''.
 * @param {Office} office
 */
const tibetanName = (office) => (typeof office.names?.[RESIDENTS] === 'string' ? office.names[RESIDENTS] : '');

/**
 * The names to send: the office's names in other languages as they are (PUT
 * replaces them all), and the Tibetan one as typed, left out when blank.
 * @param {Record<string, string> | undefined} kept
 * @param {string} tibetan
 * @returns {Record<string, string>}
 */
function namesToSend(kept, tibetan) {
  /** @type {Record<string, string>} */
  const names = {};
  for (const [lang, text] of Object.entries(kept ?? {})) {
    if (lang !== RESIDENTS && typeof text === 'string' && text.trim()) names[lang] = text;
  }
  const typed = tibetan.trim();
  if (typed) names[RESIDENTS] = typed;
  return names;
}

/**
 * Which field a refusal is about, and the error to show for it (the server's message stays the detail).
 * @param {any} error
 */
function explain(error) {
  const message = error?.serverMessage ?? '';
  if (error?.status === 409) return { field: 'service', shown: { ...error, code: 'office_exists', serverMessage: message } };
  if (error?.code === 'invalid_field') {
    if (message.startsWith('names')) return { field: 'name_bo', shown: error };
    for (const field of ['service', 'name', 'decision_days']) {
      if (message.startsWith(`${field}`)) return { field, shown: error };
    }
  }
  return { field: null, shown: error };
}

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => {id: string, name: string} | null} options.region the region chosen at the top
 * @param {() => import('/web/coordinator/accounts.js').Account[]} options.accounts the accounts the dashboard knows
 * @param {() => boolean} options.isAdmin admins see every caseworker account; coordinators none but the office's
 * @param {(button: HTMLButtonElement | null, action: () => Promise<void>) => Promise<void>} options.busy
 *   runs an action with its button disabled; errors go to the status area
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: unknown) => void} options.reportError
 */
export function setupOffices({ client, region, accounts, isAdmin, busy, reportOk, reportError }) {
  const els = {
    part: $('offices'),
    heading: $('offices-heading'),
    body: $('offices-body'),
    form: $('office-form', HTMLFormElement),
    service: $('office-service', HTMLSelectElement),
    codeField: $('office-code-field'),
    code: $('office-code', HTMLInputElement),
    days: $('office-days', HTMLInputElement),
    error: $('office-error'),
    submit: $('office-create', HTMLButtonElement),
  };

  const fresh = () => ({
    active: false,
    /** @type {string | null} the region whose offices are shown */
    regionId: null,
    /** @type {Office[] | null} null while they load */
    offices: null,
    /** @type {string | null} the office whose edit is open */
    editOpenFor: null,
    /** @type {{name: string, nameBo: string, days: string, caseworkers: string[]} | null} what the open edit holds (over a re-render) */
    draft: null,
  });
  let state = fresh();

  async function load() {
    const asked = region()?.id ?? null;
    state.regionId = asked;
    if (!asked) {
      state.offices = [];
      render();
      return;
    }
    try {
      const offices = await client.get(`/api/regions/${seg(asked)}/offices`);
      if (state.regionId !== asked) return;
      state.offices = Array.isArray(offices) ? offices : [];
    } catch (error) {
      if (state.regionId !== asked) return;
      state.offices = [];
      reportError(error);
    }
    render();
  }

  /**
   * Who may be a caseworker of an office: the caseworker accounts the dashboard knows, and whoever is one already.
   * @param {Office} office
   */
  function candidates(office) {
    /** @type {Map<string, {id: string, label: string}>} */
    const out = new Map();
    for (const a of accounts()) {
      if (a.roles.includes('caseworker')) out.set(a.id, { id: a.id, label: `${a.display_name} (${a.username})` });
    }
    for (const c of office.caseworkers ?? []) if (!out.has(c.id)) out.set(c.id, { id: c.id, label: c.display_name });
    return [...out.values()].sort((a, b) => a.label.localeCompare(b.label));
  }

  /** @param {Office} office */
  function officeRows(office) {
    const open = state.editOpenFor === office.id;
    const names = (office.caseworkers ?? []).map((c) => c.display_name).sort((a, b) => a.localeCompare(b));
    const tibetan = tibetanName(office);
    const row = h('tr', { dataset: { testid: `office-row-${office.service}`, officeId: office.id } },
      h('td', { className: 'nowrap', textContent: serviceText(office.service) }),
      h('th', { scope: 'row' }, office.name, tibetan ? h('span', {
        className: 'office-name-bo', lang: RESIDENTS, textContent: tibetan, dataset: { testid: `office-name-bo-${office.service}` },
      }) : null),
      h('td', { className: 'nowrap', textContent: t('offices.days', { n: office.decision_days }) }),
      h('td', { dataset: { testid: `office-caseworkers-${office.service}` }, className: names.length ? '' : 'muted',
        textContent: names.length ? names.join(t('list.separator')) : t('offices.noneYet') }),
      h('td', {},
        h('button', {
          type: 'button',
          dataset: { testid: `office-edit-${office.service}` },
          textContent: t('offices.edit'),
          attrs: { 'aria-label': t('offices.editLabel', { name: office.name }), 'aria-expanded': String(open), 'aria-controls': `office-edit-${office.id}` },
          onclick: () => toggleEdit(office),
        })));
    return open ? [row, editRow(office)] : [row];
  }

  /** @param {Office} office */
  function editRow(office) {
    const draft = state.draft ?? {
      name: office.name,
      nameBo: tibetanName(office),
      days: String(office.decision_days),
      caseworkers: (office.caseworkers ?? []).map((c) => c.id),
    };
    const chosen = new Set(draft.caseworkers);
    const people = candidates(office);
    const hintKey = isAdmin() ? (people.length ? 'offices.caseworkersHint' : 'offices.noCaseworkers') : 'offices.caseworkersHintCoordinator';
    const form = h('form', {
      className: 'edit-form office-edit', noValidate: true,
      attrs: { 'aria-label': t('offices.editLabel', { name: office.name }) },
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        save(office, /** @type {HTMLFormElement} */ (event.currentTarget), /** @type {HTMLButtonElement} */ (event.submitter));
      },
    },
    h('div', { className: 'form-grid' },
      h('div', { className: 'field' },
        h('label', { htmlFor: `office-name-${office.id}`, textContent: t('offices.field.name') }),
        h('input', { type: 'text', id: `office-name-${office.id}`, name: 'name', value: draft.name, maxLength: 200, required: true,
          autocomplete: 'off', dataset: { testid: `office-edit-name-${office.service}` } })),
      h('div', { className: 'field' },
        h('label', { htmlFor: `office-name-bo-${office.id}`, textContent: t('offices.field.nameBo') }),
        h('input', { type: 'text', id: `office-name-bo-${office.id}`, name: 'name_bo', lang: RESIDENTS, value: draft.nameBo, maxLength: 200,
          autocomplete: 'off', dataset: { testid: `office-edit-name-bo-${office.service}` },
          attrs: { 'aria-describedby': `office-name-bo-hint-${office.id}` } }),
        h('p', { className: 'hint', id: `office-name-bo-hint-${office.id}`, textContent: t('offices.field.nameBoHint') })),
      h('div', { className: 'field' },
        h('label', { htmlFor: `office-days-${office.id}`, textContent: t('offices.field.days') }),
        h('input', { type: 'number', id: `office-days-${office.id}`, name: 'decision_days', value: draft.days, min: 1, max: 365,
          required: true, dataset: { testid: `office-edit-days-${office.service}` } }))),
    h('fieldset', {},
      h('legend', { textContent: t('offices.field.caseworkers') }),
      h('div', { className: 'checks' }, ...people.map((p) => {
        const id = `office-${office.id}-cw-${p.id}`;
        return h('label', { className: 'check', htmlFor: id },
          h('input', { type: 'checkbox', id, name: 'caseworkers', value: p.id, checked: chosen.has(p.id),
            dataset: { testid: `office-caseworker-${office.service}-${p.id}` } }),
          h('span', { textContent: p.label }));
      })),
      h('p', { className: 'hint', textContent: t(hintKey) })),
    h('div', { className: 'actions' },
      h('button', { type: 'submit', className: 'primary', dataset: { testid: `office-save-${office.service}` }, textContent: t('offices.save') }),
      h('button', { type: 'button', dataset: { testid: `office-edit-cancel-${office.service}` }, textContent: t('common.cancel'),
        onclick: () => closeEdit(office) })));
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closeEdit(office);
    });
    return h('tr', { className: 'inline-row', id: `office-edit-${office.id}` }, h('td', { colSpan: 5 }, form));
  }

  /** @param {Office} office */
  function toggleEdit(office) {
    state.editOpenFor = state.editOpenFor === office.id ? null : office.id;
    state.draft = null;
    render();
    if (state.editOpenFor) $(`office-name-${office.id}`)?.focus();
  }

  /** @param {Office} office */
  function closeEdit(office) {
    state.editOpenFor = null;
    state.draft = null;
    render();
    byTestId(`office-edit-${office.service}`)?.focus();
  }

  /**
   * @param {Office} office
   * @param {HTMLFormElement} form
   * @param {HTMLButtonElement} button
   */
  function save(office, form, button) {
    const days = Number(control(form, 'decision_days').value);
    const name = control(form, 'name').value.trim();
    if (!name || !Number.isInteger(days) || days < 1 || days > 365) {
      reportError({ code: name ? 'office_days' : 'office_name', serverMessage: '' });
      return;
    }
    const names = namesToSend(office.names, control(form, 'name_bo').value);
    const body = { name, names, decision_days: days, caseworkers: checkedValues(form, 'caseworkers') };
    busy(button, async () => {
      const updated = await client.request('PUT', `/api/offices/${seg(office.id)}`, body);
      state.offices = (state.offices ?? []).map((o) => (o.id === updated.id ? updated : o));
      state.editOpenFor = null;
      state.draft = null;
      render();
      byTestId(`office-edit-${updated.service}`)?.focus();
      reportOk('offices.saved', { name: updated.name });
    });
  }

  function keepDraft() {
    const id = state.editOpenFor;
    const form = id ? $(`office-edit-${id}`)?.querySelector('form') : null;
    if (!form) return;
    state.draft = {
      name: control(form, 'name').value,
      nameBo: control(form, 'name_bo').value,
      days: control(form, 'decision_days').value,
      caseworkers: checkedValues(form, 'caseworkers'),
    };
  }

  function render() {
    if (!state.active) return;
    const r = region();
    els.part.hidden = !r;
    if (!r) return;
    els.heading.textContent = t('offices.heading', { region: r.name });
    els.codeField.hidden = els.service.value !== 'other';
    keepDraft();
    keepingFocus(() => {
      const list = [...(state.offices ?? [])].sort((a, b) => a.service.localeCompare(b.service));
      const rows = list.flatMap(officeRows);
      if (!rows.length) {
        rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t(state.offices === null ? 'offices.loading' : 'offices.empty') })));
      }
      els.body.replaceChildren(...rows);
    });
  }

  /** @param {string | null} field */
  function markInvalid(field) {
    for (const marked of els.form.querySelectorAll('[aria-invalid]')) marked.removeAttribute('aria-invalid');
    if (!field) return;
    const invalid = field === 'service' && els.service.value === 'other' ? els.code : control(els.form, field);
    invalid.setAttribute('aria-invalid', 'true');
    invalid.focus();
  }

  /**
   * @param {string} code
   * @param {string} field
   */
  function refuse(code, field) {
    showError(els.error, { code, serverMessage: '' });
    markInvalid(field);
  }

  els.service.addEventListener('change', () => {
    els.codeField.hidden = els.service.value !== 'other';
    if (!els.codeField.hidden) els.code.focus();
  });

  els.form.addEventListener('input', (event) => {
    const target = event.target;
    if (target instanceof Element && target.getAttribute('aria-invalid')) target.removeAttribute('aria-invalid');
  });

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const r = region();
    if (!r) return;
    const form = els.form;
    const service = els.service.value === 'other' ? els.code.value.trim() : els.service.value;
    const name = control(form, 'name').value.trim();
    const days = Number(els.days.value);
    if (!SERVICE_CODE.test(service)) return refuse('office_service', 'service');
    if (!name) return refuse('office_name', 'name');
    if (!Number.isInteger(days) || days < 1 || days > 365) return refuse('office_days', 'decision_days');
    els.submit.disabled = true;
    try {
      const names = namesToSend({}, control(form, 'name_bo').value);
      const body = Object.keys(names).length ? { service, name, names, decision_days: days } : { service, name, decision_days: days };
      const created = await client.post(`/api/regions/${seg(r.id)}/offices`, body);
      clearError(els.error);
      markInvalid(null);
      form.reset();
      els.codeField.hidden = true;
      state.offices = [...(state.offices ?? []).filter((o) => o.id !== created.id), created];
      render();
      reportOk('offices.created', { name: created.name });
      els.service.focus();
    } catch (error) {
      const { field, shown } = explain(error);
      showError(els.error, shown);
      markInvalid(field);
    } finally {
      els.submit.disabled = false;
    }
  });

  return {
    show() {
      state.active = true;
      load();
    },
    hide() {
      state = fresh();
      els.body.replaceChildren();
      els.form.reset();
      clearError(els.error);
      markInvalid(null);
      els.codeField.hidden = true;
      els.part.hidden = true;
    },
    /** The region chosen at the top changed (or the regions loaded). */
    regionChanged() {
      if (!state.active) return;
      if ((region()?.id ?? null) !== state.regionId) {
        state.offices = null;
        state.editOpenFor = null;
        state.draft = null;
        render();
        load();
      } else {
        render();
      }
    },
    /** The accounts changed: the caseworkers to choose from may have. */
    accountsChanged: render,
    render,
  };
}
