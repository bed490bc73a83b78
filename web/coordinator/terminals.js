// The terminals (kiosks) of the selected region: the table, with a new
// enrollment code or a revocation for each, the form that registers one, and
// the panel that shows an enrollment code large.

import { seg } from '/web/shared/api.js';
import { t, formatTime } from '/web/shared/i18n.js';
import { $, h, keepingFocus, checkedValues, byTestId, control } from '/web/shared/dom.js';
import { listOf } from '/web/shared/codes.js';

const STATUS_BADGE = { pending: 'wait', enrolled: 'ok', revoked: 'off' };

/**
 * @typedef {{id: string, name: string, township: string, languages: string[], status: string,
 *   region_id: string, enrolled_at?: number | null, revoked_at?: number | null}} Terminal
 * @typedef {{terminal: Terminal, enrollment_code: string, enrollment_expires_at?: number | null}} Enrollment
 */

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => string | null} options.regionId the selected region
 * @param {(button: HTMLButtonElement | null, action: () => Promise<void>) => Promise<void>} options.busy
 *   runs an action with its button disabled; errors go to the status area
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: unknown) => void} options.reportError
 */
export function setupTerminals({ client, regionId, busy, reportOk, reportError }) {
  const els = {
    body: $('terminals-body'),
    form: $('terminal-form', HTMLFormElement),
    refresh: $('terminals-refresh', HTMLButtonElement),
    codePanel: $('code-panel'),
    codeFor: $('code-panel-for'),
    code: $('enrollment-code'),
    codeExpiry: $('enrollment-expiry'),
    codeClose: $('code-panel-close', HTMLButtonElement),
  };

  const fresh = () => ({
    /** @type {Terminal[] | null} null while they load */
    terminals: null,
    /** @type {string | null} the terminal whose revocation asks to be confirmed */
    revokeOpenFor: null,
    /** @type {Enrollment | null} the code shown */
    enrollment: null,
  });
  let state = fresh();

  async function loadTerminals() {
    const asked = regionId();
    if (!asked) {
      state.terminals = [];
      renderTerminals();
      return;
    }
    try {
      const terminals = await client.get(`/api/regions/${seg(asked)}/terminals`);
      if (regionId() === asked) state.terminals = terminals;
    } catch (error) {
      state.terminals = [];
      reportError(error);
    }
    renderTerminals();
  }

  function renderTerminals() {
    keepingFocus(() => {
      const terminals = [...(state.terminals ?? [])].sort((a, b) => a.name.localeCompare(b.name));
      const rows = terminals.map(terminalRow);
      if (!rows.length) {
        rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t('terminals.empty') })));
      }
      els.body.replaceChildren(...rows);
    });
  }

  function terminalRow(terminal) {
    const id = terminal.id;
    let since = null;
    if (terminal.status === 'enrolled' && terminal.enrolled_at) {
      since = t('terminals.enrolledAt', { time: formatTime(terminal.enrolled_at) });
    } else if (terminal.status === 'revoked' && terminal.revoked_at) {
      since = t('terminals.revokedAt', { time: formatTime(terminal.revoked_at) });
    }
    return h('tr', { dataset: { terminalId: id, testid: `terminal-row-${id}` } },
      h('th', { scope: 'row', textContent: terminal.name }),
      h('td', { textContent: terminal.township }),
      h('td', { textContent: listOf('language', terminal.languages) }),
      h('td', {},
        h('span', {
          className: `badge ${STATUS_BADGE[terminal.status] ?? ''}`,
          dataset: { testid: `terminal-status-${id}`, status: terminal.status },
          textContent: t(`terminals.status.${terminal.status}`),
        }),
        since && h('span', { className: 'hint block', textContent: since })),
      h('td', {}, terminalActions(terminal)));
  }

  function terminalActions(terminal) {
    const id = terminal.id;
    if (terminal.status === 'revoked') return h('span', { className: 'hint', textContent: t('terminals.noActions') });
    if (state.revokeOpenFor === id) {
      return h('div', { className: 'confirm', attrs: { role: 'group', 'aria-labelledby': `revoke-q-${id}` } },
        h('p', { id: `revoke-q-${id}`, className: 'confirm-question', textContent: t('terminals.revokeQuestion', { name: terminal.name }) }),
        h('div', { className: 'actions' },
          h('button', {
            type: 'button', className: 'danger primary', dataset: { testid: `terminal-revoke-confirm-${id}` },
            textContent: t('terminals.revokeConfirm'),
            onclick: (event) => revokeTerminal(terminal, event.currentTarget),
          }),
          h('button', {
            type: 'button', dataset: { testid: `terminal-revoke-cancel-${id}` }, textContent: t('common.cancel'),
            onclick: () => {
              state.revokeOpenFor = null;
              renderTerminals();
              byTestId(`terminal-revoke-${id}`)?.focus();
            },
          })));
    }
    return h('div', { className: 'actions row-actions' },
      h('button', {
        type: 'button', dataset: { testid: `terminal-new-code-${id}` }, textContent: t('terminals.newCode'),
        attrs: { 'aria-label': t('terminals.newCodeLabel', { name: terminal.name }) },
        onclick: (event) => newCode(terminal, event.currentTarget),
      }),
      h('button', {
        type: 'button', className: 'danger', dataset: { testid: `terminal-revoke-${id}` }, textContent: t('terminals.revoke'),
        attrs: { 'aria-label': t('terminals.revokeLabel', { name: terminal.name }) },
        onclick: () => {
          state.revokeOpenFor = id;
          renderTerminals();
          byTestId(`terminal-revoke-cancel-${id}`)?.focus();
        },
      }));
  }

  function replaceTerminal(terminal) {
    const list = state.terminals ?? [];
    state.terminals = list.some((x) => x.id === terminal.id)
      ? list.map((x) => (x.id === terminal.id ? terminal : x))
      : terminal.region_id === regionId() ? [...list, terminal] : list;
  }

  function revokeTerminal(terminal, button) {
    return busy(button, async () => {
      const revoked = await client.post(`/api/terminals/${seg(terminal.id)}/revoke`);
      state.revokeOpenFor = null;
      replaceTerminal(revoked && revoked.id ? revoked : { ...terminal, status: 'revoked' });
      if (state.enrollment && state.enrollment.terminal.id === terminal.id) hideCode();
      renderTerminals();
      reportOk('terminals.revoked', { name: terminal.name });
    });
  }

  function newCode(terminal, button) {
    return busy(button, async () => {
      const result = await client.post(`/api/terminals/${seg(terminal.id)}/enrollment-code`);
      if (result.terminal) replaceTerminal(result.terminal);
      renderTerminals();
      showCode(result);
    });
  }

  /** Shows an enrollment code large, with its terminal and expiry. */
  function showCode(result) {
    state.enrollment = result;
    renderCode();
    els.codePanel.hidden = false;
    els.codePanel.focus();
  }

  function renderCode() {
    const e = state.enrollment;
    if (!e) return;
    els.codeFor.textContent = t('terminals.code.for', { name: e.terminal.name, township: e.terminal.township });
    els.code.textContent = e.enrollment_code;
    els.codeExpiry.textContent = e.enrollment_expires_at
      ? t('terminals.code.expires', { time: formatTime(e.enrollment_expires_at) })
      : '';
  }

  function hideCode() {
    state.enrollment = null;
    els.codePanel.hidden = true;
    els.code.textContent = '';
    els.codeExpiry.textContent = '';
  }

  els.codeClose.addEventListener('click', () => {
    hideCode();
    $('terminals-heading').focus();
  });

  els.refresh.addEventListener('click', () => busy(els.refresh, loadTerminals));

  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const form = els.form;
    const languages = checkedValues(form, 'languages');
    if (!languages.length) {
      reportError({ code: 'no_language', serverMessage: '' });
      /** @type {HTMLInputElement} */ (form.querySelector('input[name="languages"]')).focus();
      return;
    }
    const body = {
      name: control(form, 'name').value.trim(),
      township: control(form, 'township').value.trim(),
      region_id: regionId(),
      languages,
    };
    busy(/** @type {HTMLButtonElement} */ (event.submitter), async () => {
      const result = await client.post('/api/terminals', body);
      replaceTerminal(result.terminal);
      renderTerminals();
      form.reset();
      reportOk('terminals.registered', { name: result.terminal.name });
      showCode(result);
    });
  });

  return {
    load: loadTerminals,
    render: renderTerminals,
    renderCode,
    /** A terminal can be registered once a region is chosen. */
    renderRegister() {
      /** @type {HTMLButtonElement} */ (els.form.querySelector('[data-testid="terminal-register"]')).disabled = !regionId();
    },
    /** Another region: its terminals are loaded next. */
    regionChanged() {
      state.revokeOpenFor = null;
      state.terminals = null;
      renderTerminals();
    },
    /** Forgets the terminals (logged out). */
    reset() {
      state = fresh();
      els.body.replaceChildren();
      els.codePanel.hidden = true;
      els.code.textContent = '';
      els.form.reset();
    },
  };
}
