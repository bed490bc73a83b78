// The coordinator's accounts: the table (with an inline edit of roles,
// languages and topics, a password reset, activate and deactivate) and the
// form that makes an account.

import { seg } from '/web/shared/api.js';
import { t } from '/web/shared/i18n.js';
import { $, h, keepingFocus, checkedValues, byTestId, control } from '/web/shared/dom.js';
import { accountRows } from '/web/coordinator/account-rows.js';

/**
 * An account as the coordinator's dashboard shows it.
 * @typedef {{id: string, username: string, display_name: string, active: boolean,
 *   roles: string[], languages: string[], topics: string[]}} Account
 */

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => {id: string} | null} options.me the coordinator logged in
 * @param {() => boolean} options.isAdmin whether they may set other people's passwords
 * @param {(button: HTMLButtonElement | null, action: () => Promise<void>) => Promise<void>} options.busy
 *   runs an action with its button disabled; errors go to the status area
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: unknown) => void} options.reportError
 * @param {() => void} options.onChanged the accounts changed (the teams show them)
 */
export function setupAccounts({ client, me, isAdmin, busy, reportOk, reportError, onChanged }) {
  const els = {
    body: $('accounts-body'),
    form: $('account-form', HTMLFormElement),
  };

  const fresh = () => ({
    /** @type {Account[]} */
    accounts: [],
    /** @type {string | null} the account whose password reset is open */
    resetOpenFor: null,
    /** @type {string | null} the account whose edit is open */
    editOpenFor: null,
    /** @type {{roles: string[], languages: string[], topics: string[]} | null} what the open edit has ticked */
    editDraft: null,
  });
  let state = fresh();

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
      state.editDraft = { roles: checkedValues(editForm, 'roles'), languages: checkedValues(editForm, 'languages'), topics: checkedValues(editForm, 'topics') };
    } else if (!state.editOpenFor) {
      state.editDraft = null;
    }
    keepingFocus(() => {
      const rows = [];
      const accounts = [...state.accounts].sort((a, b) => a.username.localeCompare(b.username));
      for (const account of accounts) rows.push(...accountRows(account, rowOptions(account)));
      if (!rows.length) {
        rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 7, textContent: t('accounts.empty') })));
      }
      els.body.replaceChildren(...rows);
    });
    onChanged();
  }

  /**
   * What an account's row shows and what its buttons do.
   * @param {Account} account
   * @returns {import('/web/coordinator/account-rows.js').RowOptions}
   */
  function rowOptions(account) {
    const open = state.resetOpenFor === account.id ? 'reset' : state.editOpenFor === account.id ? 'edit' : null;
    return {
      self: me()?.id === account.id,
      admin: isAdmin(),
      open,
      draft: state.editDraft,
      onToggle: (button) => toggleAccount(account, button),
      onOpenReset: () => openReset(account),
      onOpenEdit: () => openEdit(account),
      onClose: () => (open === 'reset' ? closeReset(account) : closeEdit(account)),
      onSave: (form, button) => saveAccount(account, form, button),
      onResetPassword: (input, button) => resetPassword(account, input, button),
    };
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
    byTestId(`account-edit-${account.username}`)?.focus();
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
      byTestId(`account-edit-${updated.username}`)?.focus();
      reportOk('accounts.saved', { username: updated.username });
    });
  }

  function openReset(account) {
    state.resetOpenFor = state.resetOpenFor === account.id ? null : account.id;
    state.editOpenFor = null;
    renderAccounts();
    if (state.resetOpenFor) {
      byTestId(`account-reset-password-${account.username}`).focus();
    }
  }

  function closeReset(account) {
    state.resetOpenFor = null;
    renderAccounts();
    byTestId(`account-reset-${account.username}`)?.focus();
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

  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const form = els.form;
    const body = {
      username: control(form, 'username').value.trim(),
      display_name: control(form, 'display_name').value.trim(),
      password: control(form, 'password').value,
      roles: checkedValues(form, 'roles'),
      languages: checkedValues(form, 'languages'),
      topics: checkedValues(form, 'topics'),
    };
    busy(/** @type {HTMLButtonElement} */ (event.submitter), async () => {
      const created = await client.post('/api/accounts', body);
      state.accounts = [...state.accounts.filter((a) => a.id !== created.id), created];
      renderAccounts();
      form.reset();
      reportOk('accounts.created', { username: created.username });
    });
  });

  return {
    load: loadAccounts,
    render: renderAccounts,
    /** The accounts the dashboard knows. */
    list: () => state.accounts,
    /** Forgets the accounts (logged out). */
    reset() {
      state = fresh();
      els.body.replaceChildren();
      els.form.reset();
    },
  };
}
