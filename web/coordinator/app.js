// The coordinator dashboard: the live queue, accounts, regions (regions.js),
// terminals, scheduling (schedule.js) and reports (reports.js).

import { createClient, seg } from '/web/shared/api.js';
import {
  t, onLanguageChange, formatTime, describeError, showError, clearError,
} from '/web/shared/i18n.js';
import { startSignedInApp, reportStartFailure } from '/web/shared/session.js';
import { $, h, keepingFocus } from '/web/shared/dom.js';
import { listOf, ROLES, LANGUAGES, TOPICS } from '/web/shared/codes.js';
import { setupSchedule } from '/web/coordinator/schedule.js';
import { setupQueue } from '/web/coordinator/queue.js';
import { setupReports } from '/web/coordinator/reports.js';
import { setupRegions, regionTree } from '/web/coordinator/regions.js';
import { setupPhoneBooking } from '/web/coordinator/phone-booking.js';

const client = createClient('coordinator');
const APP_ROLES = ['coordinator', 'admin'];

const els = {
  loginView: $('login-view'),
  loginForm: $('login-form'),
  loginError: document.querySelector('[data-testid="login-error"]'),
  dashboard: $('dashboard'),
  whoami: document.querySelector('[data-testid="whoami"]'),
  logout: $('logout'),
  status: $('status'),
  accountsBody: $('accounts-body'),
  accountForm: $('account-form'),
  regionSelect: $('region-select'),
  terminalsBody: $('terminals-body'),
  terminalForm: $('terminal-form'),
  terminalsRefresh: $('terminals-refresh'),
  codePanel: $('code-panel'),
  codeFor: $('code-panel-for'),
  code: $('enrollment-code'),
  codeExpiry: $('enrollment-expiry'),
  codeClose: $('code-panel-close'),
};

/** Everything shown after login; emptied at logout so nothing stays behind. */
const empty = () => ({
  me: null,
  accounts: [],
  regions: null,
  regionId: null,
  terminals: null,
  resetOpenFor: null,
  editOpenFor: null,
  editDraft: null,
  revokeOpenFor: null,
  enrollment: null,
  status: null,
});
let state = empty();

const selectedRegion = () => (state.regions ?? []).find((r) => r.id === state.regionId) ?? null;
const schedule = setupSchedule({
  client,
  accounts: () => state.accounts,
  region: selectedRegion,
  regionName: (id) => (state.regions ?? []).find((r) => r.id === id)?.name ?? id,
  reportOk: (key, vars) => reportOk(key, vars),
  reportError: (error) => reportError(error),
  livePerson: (id) => queue.person(id),
  liveKnown: () => queue.known(),
});
const queue = setupQueue({
  client,
  regions: () => state.regions ?? [],
  selectedRegion: () => state.regionId,
  onPeopleChanged: () => schedule.liveChanged(),
});
const reports = setupReports({
  client,
  regions: () => state.regions ?? [],
  region: selectedRegion,
});
const phoneBooking = setupPhoneBooking({
  client,
  region: selectedRegion,
  reportOk: (key, vars) => reportOk(key, vars),
  reportError: (error) => reportError(error),
});
const regionsCard = setupRegions({
  client,
  regions: () => state.regions,
  isAdmin: () => isAdmin(),
  reload: () => loadRegions(),
  reportOk: (key, vars) => reportOk(key, vars),
});

// ---------------------------------------------------------------- helpers

function checkedValues(form, name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => input.value);
}

// ---------------------------------------------------------------- status

function setStatus(status) {
  state.status = status;
  renderStatus();
}
const reportOk = (key, vars) => setStatus({ kind: 'ok', key, vars });
const reportError = (error) => setStatus({ kind: 'error', error });

function renderStatus() {
  const s = state.status;
  els.status.dataset.kind = s ? s.kind : '';
  if (!s) {
    clearError(els.status);
    els.status.hidden = false;
  } else if (s.kind === 'error') {
    showError(els.status, s.error);
  } else {
    delete els.status.dataset.errorCode;
    els.status.textContent = t(s.key, s.vars);
  }
}

/** Runs an action with its button disabled; errors go to the status area. */
async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (error) {
    reportError(error);
  } finally {
    if (button && document.contains(button)) button.disabled = false;
  }
}

// ---------------------------------------------------------------- session

function isAdmin() {
  return Boolean(state.me?.roles?.includes('admin'));
}

function showLogin() {
  state = empty();
  els.dashboard.hidden = true;
  els.logout.hidden = true;
  els.whoami.hidden = true;
  els.whoami.textContent = '';
  els.accountsBody.replaceChildren();
  els.terminalsBody.replaceChildren();
  els.regionSelect.replaceChildren();
  els.codePanel.hidden = true;
  els.code.textContent = '';
  els.accountForm.reset();
  els.terminalForm.reset();
  schedule.hide();
  queue.hide();
  reports.hide();
  phoneBooking.hide();
  regionsCard.hide();
  $('region-zone').textContent = '';
  renderStatus();
  els.loginView.hidden = false;
}

function showDashboard(account) {
  state.me = account;
  els.loginView.hidden = true;
  clearError(els.loginError);
  els.dashboard.hidden = false;
  els.logout.hidden = false;
  els.whoami.hidden = false;
  renderWhoami();
  $('main').focus();
  schedule.show();
  queue.show();
  reports.show();
  phoneBooking.show();
  regionsCard.show();
  loadAccounts();
  loadRegions();
}

function renderWhoami() {
  if (!state.me) return;
  els.whoami.textContent = t('auth.loggedInAs', {
    name: state.me.display_name,
    username: state.me.username,
  });
}

client.onLoggedOut(() => {
  showLogin();
  showError(els.loginError, { code: 'session_expired', serverMessage: '' });
});

els.logout.addEventListener('click', async () => {
  await client.logout();
  showLogin();
  document.querySelector('[data-testid="login-username"]').focus();
});

// ---------------------------------------------------------------- accounts

async function loadAccounts() {
  try {
    state.accounts = await client.get('/api/accounts');
  } catch (error) {
    state.accounts = [];
    reportError(error);
  }
  renderAccounts();
}

function renderAccounts() {
  // An open edit form keeps what was ticked but not yet saved (e.g. over a language switch).
  const editForm = state.editOpenFor ? $(`edit-row-${state.editOpenFor}`)?.querySelector('form') : null;
  if (editForm) {
    state.editDraft = Object.fromEntries(['roles', 'languages', 'topics'].map((n) => [n, checkedValues(editForm, n)]));
  } else if (!state.editOpenFor) {
    state.editDraft = null;
  }
  keepingFocus(() => {
    const rows = [];
    const accounts = [...state.accounts].sort((a, b) => a.username.localeCompare(b.username));
    for (const account of accounts) rows.push(...accountRows(account));
    if (!rows.length) {
      rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 7, textContent: t('accounts.empty') })));
    }
    els.accountsBody.replaceChildren(...rows);
  });
  schedule.accountsChanged();
}

function accountRows(account) {
  const u = account.username;
  const self = state.me && state.me.id === account.id;
  const row = h('tr', { dataset: { accountId: account.id, username: u } },
    h('th', { scope: 'row', className: 'nowrap', textContent: u }),
    h('td', { textContent: account.display_name }),
    h('td', { textContent: listOf('role', account.roles) }),
    h('td', { textContent: listOf('language', account.languages) }),
    h('td', { textContent: listOf('topic', account.topics) }),
    h('td', {},
      h('span', {
        className: `badge ${account.active ? 'ok' : 'off'}`,
        dataset: { testid: `account-active-${u}`, active: String(account.active) },
        textContent: t(account.active ? 'accounts.active' : 'accounts.inactive'),
      })),
    h('td', {},
      h('div', { className: 'actions row-actions' },
        h('button', {
          type: 'button',
          className: account.active ? 'danger' : '',
          dataset: { testid: `account-toggle-${u}` },
          disabled: self,
          title: self ? t('accounts.cannotToggleSelf') : undefined,
          textContent: t(account.active ? 'accounts.deactivate' : 'accounts.activate'),
          attrs: { 'aria-label': t(account.active ? 'accounts.deactivateLabel' : 'accounts.activateLabel', { username: u }) },
          onclick: (event) => toggleAccount(account, event.currentTarget),
        }),
        // Only admins set another person's password (whoever does could sign in
        // as that lawyer); the server refuses coordinators too.
        (self || isAdmin()) && h('button', {
          type: 'button',
          dataset: { testid: `account-reset-${u}` },
          textContent: t('accounts.resetPassword'),
          attrs: {
            'aria-label': t('accounts.resetPasswordLabel', { username: u }),
            'aria-expanded': String(state.resetOpenFor === account.id),
            'aria-controls': `reset-row-${account.id}`,
          },
          onclick: () => openReset(account),
        }),
        h('button', {
          type: 'button',
          dataset: { testid: `account-edit-${u}` },
          textContent: t('accounts.edit'),
          attrs: {
            'aria-label': t('accounts.editLabel', { username: u }),
            'aria-expanded': String(state.editOpenFor === account.id),
            'aria-controls': `edit-row-${account.id}`,
          },
          onclick: () => openEdit(account),
        }))),
  );
  if (state.resetOpenFor === account.id) return [row, resetRow(account)];
  if (state.editOpenFor === account.id) return [row, editRow(account)];
  return [row];
}

/** One fieldset of checkboxes for an inline edit, checked from the account. */
function editChecks(account, name, prefix, codes, legendKey) {
  const u = account.username;
  const chosen = new Set((state.editDraft ?? account)[name] ?? []);
  return h('fieldset', {},
    h('legend', { textContent: t(legendKey) }),
    h('div', { className: 'checks' }, ...codes.map((code) => {
      const id = `edit-${account.id}-${prefix}-${code}`;
      return h('label', { className: 'check', htmlFor: id },
        h('input', {
          type: 'checkbox', id, name, value: code, checked: chosen.has(code),
          dataset: { testid: `account-edit-${prefix}-${code}-${u}` },
        }),
        h('span', { textContent: t(`${prefix}.${code}`) }));
    })));
}

function editRow(account) {
  const u = account.username;
  const form = h('form', {
    className: 'edit-form',
    attrs: { 'aria-label': t('accounts.editLabel', { username: u }) },
    onsubmit: (event) => {
      event.preventDefault();
      saveAccount(account, event.currentTarget, event.submitter);
    },
  },
  editChecks(account, 'roles', 'role', ROLES, 'accounts.field.roles'),
  editChecks(account, 'languages', 'language', LANGUAGES, 'accounts.field.languages'),
  editChecks(account, 'topics', 'topic', TOPICS, 'accounts.field.topics'),
  h('div', { className: 'actions' },
    h('button', {
      type: 'submit', className: 'primary', dataset: { testid: `account-save-${u}` },
      textContent: t('accounts.save'),
    }),
    h('button', {
      type: 'button', dataset: { testid: `account-edit-cancel-${u}` }, textContent: t('common.cancel'),
      onclick: () => closeEdit(account),
    })));
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeEdit(account);
  });
  return h('tr', { className: 'inline-row', id: `edit-row-${account.id}` },
    h('td', { colSpan: 7 }, form));
}

function openEdit(account) {
  state.editOpenFor = state.editOpenFor === account.id ? null : account.id;
  state.resetOpenFor = null;
  state.editDraft = null;
  renderAccounts();
  if (state.editOpenFor) $(`edit-row-${account.id}`)?.querySelector('input')?.focus();
}

function closeEdit(account) {
  state.editOpenFor = null;
  renderAccounts();
  document.querySelector(`[data-testid="account-edit-${CSS.escape(account.username)}"]`)?.focus();
}

function saveAccount(account, form, button) {
  const body = {
    roles: checkedValues(form, 'roles'),
    languages: checkedValues(form, 'languages'),
    topics: checkedValues(form, 'topics'),
  };
  return busy(button, async () => {
    const updated = await client.patch(`/api/accounts/${seg(account.id)}`, body);
    replaceAccount(updated);
    state.editOpenFor = null;
    renderAccounts();
    document.querySelector(`[data-testid="account-edit-${CSS.escape(updated.username)}"]`)?.focus();
    reportOk('accounts.saved', { username: updated.username });
  });
}

function resetRow(account) {
  const u = account.username;
  const inputId = `reset-password-${account.id}`;
  const input = h('input', {
    type: 'password', id: inputId, minLength: 8, required: true, autocomplete: 'new-password',
    dataset: { testid: `account-reset-password-${u}` },
  });
  const form = h('form', {
    className: 'inline-form',
    onsubmit: (event) => {
      event.preventDefault();
      resetPassword(account, input, event.submitter);
    },
  },
  h('div', { className: 'field' },
    h('label', { htmlFor: inputId, textContent: t('accounts.newPasswordFor', { username: u }) }),
    input,
    h('p', { className: 'hint', textContent: t('accounts.field.passwordHint') })),
  h('div', { className: 'actions' },
    h('button', {
      type: 'submit', className: 'primary', dataset: { testid: `account-reset-confirm-${u}` },
      textContent: t('accounts.resetConfirm'),
    }),
    h('button', {
      type: 'button', dataset: { testid: `account-reset-cancel-${u}` }, textContent: t('common.cancel'),
      onclick: () => closeReset(account),
    })));
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeReset(account);
  });
  return h('tr', { className: 'inline-row', id: `reset-row-${account.id}` },
    h('td', { colSpan: 7 }, form));
}

function openReset(account) {
  state.resetOpenFor = state.resetOpenFor === account.id ? null : account.id;
  state.editOpenFor = null;
  renderAccounts();
  if (state.resetOpenFor) {
    document.querySelector(`[data-testid="account-reset-password-${CSS.escape(account.username)}"]`).focus();
  }
}

function closeReset(account) {
  state.resetOpenFor = null;
  renderAccounts();
  document.querySelector(`[data-testid="account-reset-${CSS.escape(account.username)}"]`)?.focus();
}

function replaceAccount(updated) {
  state.accounts = state.accounts.map((a) => (a.id === updated.id ? updated : a));
}

function toggleAccount(account, button) {
  return busy(button, async () => {
    const updated = await client.patch(`/api/accounts/${seg(account.id)}`, { active: !account.active });
    replaceAccount(updated);
    renderAccounts();
    reportOk(updated.active ? 'accounts.activated' : 'accounts.deactivated', { username: updated.username });
  });
}

function resetPassword(account, input, button) {
  if (input.value.length < 8) {
    input.reportValidity();
    return;
  }
  return busy(button, async () => {
    await client.post(`/api/accounts/${seg(account.id)}/password`, { password: input.value });
    input.value = '';
    closeReset(account);
    reportOk('accounts.passwordChanged', { username: account.username });
  });
}

els.accountForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = els.accountForm;
  const body = {
    username: form.elements.username.value.trim(),
    display_name: form.elements.display_name.value.trim(),
    password: form.elements.password.value,
    roles: checkedValues(form, 'roles'),
    languages: checkedValues(form, 'languages'),
    topics: checkedValues(form, 'topics'),
  };
  busy(event.submitter, async () => {
    const created = await client.post('/api/accounts', body);
    state.accounts = [...state.accounts.filter((a) => a.id !== created.id), created];
    renderAccounts();
    form.reset();
    reportOk('accounts.created', { username: created.username });
  });
});

// ---------------------------------------------------------------- terminals

async function loadRegions() {
  try {
    state.regions = await client.get('/api/regions');
  } catch (error) {
    state.regions = [];
    reportError(error);
  }
  const ids = state.regions.map((r) => r.id);
  if (!ids.includes(state.regionId)) state.regionId = ids[0] ?? null;
  renderRegions();
  regionsCard.regionsChanged();
  schedule.regionChanged();
  queue.regionsChanged();
  reports.regionsChanged();
  phoneBooking.regionChanged();
  await loadTerminals();
}

function renderRegions() {
  const regions = state.regions ?? [];
  const select = els.regionSelect;
  if (!regions.length) {
    select.replaceChildren(h('option', { value: '', textContent: t('terminals.noRegions') }));
    select.disabled = true;
  } else {
    select.replaceChildren(...regionTree(regions).map(({ region, depth }) =>
      h('option', { value: region.id, textContent: `${'\u2003'.repeat(depth)}${region.name}` })));
    select.disabled = false;
    select.value = state.regionId;
  }
  els.terminalForm.querySelector('[data-testid="terminal-register"]').disabled = !state.regionId;
  const region = selectedRegion();
  $('region-zone').textContent = region ? t('region.zone', { zone: region.time_zone || 'UTC' }) : '';
}

async function loadTerminals() {
  const regionId = state.regionId;
  if (!regionId) {
    state.terminals = [];
    renderTerminals();
    return;
  }
  try {
    const terminals = await client.get(`/api/regions/${seg(regionId)}/terminals`);
    if (state.regionId === regionId) state.terminals = terminals;
  } catch (error) {
    state.terminals = [];
    reportError(error);
  }
  renderTerminals();
}

const STATUS_BADGE = { pending: 'wait', enrolled: 'ok', revoked: 'off' };

function renderTerminals() {
  keepingFocus(() => {
    const terminals = [...(state.terminals ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    const rows = terminals.map(terminalRow);
    if (!rows.length) {
      rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t('terminals.empty') })));
    }
    els.terminalsBody.replaceChildren(...rows);
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
            document.querySelector(`[data-testid="terminal-revoke-${CSS.escape(id)}"]`)?.focus();
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
        document.querySelector(`[data-testid="terminal-revoke-cancel-${CSS.escape(id)}"]`)?.focus();
      },
    }));
}

function replaceTerminal(terminal) {
  const list = state.terminals ?? [];
  state.terminals = list.some((x) => x.id === terminal.id)
    ? list.map((x) => (x.id === terminal.id ? terminal : x))
    : terminal.region_id === state.regionId ? [...list, terminal] : list;
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

els.regionSelect.addEventListener('change', () => {
  state.regionId = els.regionSelect.value || null;
  state.revokeOpenFor = null;
  state.terminals = null;
  renderTerminals();
  renderRegions();
  schedule.regionChanged();
  queue.regionsChanged();
  phoneBooking.regionChanged();
  loadTerminals();
});

els.terminalsRefresh.addEventListener('click', (event) => busy(event.currentTarget, loadTerminals));

els.terminalForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = els.terminalForm;
  const languages = checkedValues(form, 'languages');
  if (!languages.length) {
    setStatus({ kind: 'error', error: { code: 'no_language', serverMessage: '' } });
    form.querySelector('input[name="languages"]').focus();
    return;
  }
  const body = {
    name: form.elements.name.value.trim(),
    township: form.elements.township.value.trim(),
    region_id: state.regionId,
    languages,
  };
  busy(event.submitter, async () => {
    const result = await client.post('/api/terminals', body);
    replaceTerminal(result.terminal);
    renderTerminals();
    form.reset();
    reportOk('terminals.registered', { name: result.terminal.name });
    showCode(result);
  });
});

// ---------------------------------------------------------------- start

onLanguageChange(() => {
  renderWhoami();
  if (state.me) {
    renderAccounts();
    renderRegions();
    regionsCard.render();
    renderTerminals();
    renderCode();
    renderStatus();
    schedule.render();
    queue.render();
    reports.render();
    phoneBooking.render();
  }
});

startSignedInApp({ app: 'coordinator', client, roles: APP_ROLES, els, onLoggedIn: showDashboard, showLogin })
  .catch(reportStartFailure);
