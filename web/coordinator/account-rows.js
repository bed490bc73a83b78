// The rows of the coordinator's accounts table: an account's row, and below
// it, when open, its inline edit (roles, languages, topics) or password reset.

import { t } from '/web/shared/i18n.js';
import { h } from '/web/shared/dom.js';
import { listOf, ROLES, LANGUAGES, TOPICS } from '/web/shared/codes.js';

/** @typedef {import('/web/coordinator/accounts.js').Account} Account */

/**
 * What a row shows and what its buttons do.
 * @typedef {object} RowOptions
 * @property {boolean} self the coordinator's own account (they may not deactivate it)
 * @property {boolean} admin the coordinator is an admin (and may set other people's passwords)
 * @property {'edit' | 'reset' | null} open the inline form open below the row
 * @property {{roles: string[], languages: string[], topics: string[]} | null} draft what the open edit has ticked
 * @property {(button: HTMLButtonElement) => void} onToggle
 * @property {() => void} onOpenReset
 * @property {() => void} onOpenEdit
 * @property {() => void} onClose closes the open form
 * @property {(form: HTMLFormElement, button: HTMLButtonElement) => void} onSave the edit was submitted
 * @property {(input: HTMLInputElement, button: HTMLButtonElement) => void} onResetPassword the new password was submitted
 */

/**
 * An account's row, and below it its open edit or password reset.
 * @param {Account} account
 * @param {RowOptions} options
 */
export function accountRows(account, options) {
  const { self, admin, open } = options;
  const u = account.username;
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
          onclick: (/** @type {MouseEvent} */ event) => options.onToggle(/** @type {HTMLButtonElement} */ (event.currentTarget)),
        }),
        // Only admins set another person's password (whoever does could sign in
        // as that lawyer); the server refuses coordinators too.
        (self || admin) && h('button', {
          type: 'button',
          dataset: { testid: `account-reset-${u}` },
          textContent: t('accounts.resetPassword'),
          attrs: {
            'aria-label': t('accounts.resetPasswordLabel', { username: u }),
            'aria-expanded': String(open === 'reset'),
            'aria-controls': `reset-row-${account.id}`,
          },
          onclick: options.onOpenReset,
        }),
        h('button', {
          type: 'button',
          dataset: { testid: `account-edit-${u}` },
          textContent: t('accounts.edit'),
          attrs: {
            'aria-label': t('accounts.editLabel', { username: u }),
            'aria-expanded': String(open === 'edit'),
            'aria-controls': `edit-row-${account.id}`,
          },
          onclick: options.onOpenEdit,
        }))),
  );
  if (open === 'reset') return [row, resetRow(account, options)];
  if (open === 'edit') return [row, editRow(account, options)];
  return [row];
}

/**
 * One fieldset of checkboxes for an inline edit, checked from the account (or what was ticked).
 * @param {Account} account
 * @param {{roles: string[], languages: string[], topics: string[]}} ticked
 * @param {'roles' | 'languages' | 'topics'} name
 * @param {string} prefix
 * @param {string[]} codes
 * @param {string} legendKey
 */
function editChecks(account, ticked, name, prefix, codes, legendKey) {
  const u = account.username;
  const chosen = new Set(ticked[name] ?? []);
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

/**
 * The inline edit of an account's roles, languages and topics.
 * @param {Account} account
 * @param {RowOptions} options
 */
function editRow(account, options) {
  const ticked = options.draft ?? account;
  const u = account.username;
  const form = h('form', {
    className: 'edit-form',
    attrs: { 'aria-label': t('accounts.editLabel', { username: u }) },
    onsubmit: (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      options.onSave(/** @type {HTMLFormElement} */ (event.currentTarget), /** @type {HTMLButtonElement} */ (event.submitter));
    },
  },
  editChecks(account, ticked, 'roles', 'role', ROLES, 'accounts.field.roles'),
  editChecks(account, ticked, 'languages', 'language', LANGUAGES, 'accounts.field.languages'),
  editChecks(account, ticked, 'topics', 'topic', TOPICS, 'accounts.field.topics'),
  h('div', { className: 'actions' },
    h('button', {
      type: 'submit', className: 'primary', dataset: { testid: `account-save-${u}` },
      textContent: t('accounts.save'),
    }),
    h('button', {
      type: 'button', dataset: { testid: `account-edit-cancel-${u}` }, textContent: t('common.cancel'),
      onclick: options.onClose,
    })));
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') options.onClose();
  });
  return h('tr', { className: 'inline-row', id: `edit-row-${account.id}` },
    h('td', { colSpan: 7 }, form));
}

/**
 * The inline form that sets an account's password.
 * @param {Account} account
 * @param {RowOptions} options
 */
function resetRow(account, options) {
  const u = account.username;
  const inputId = `reset-password-${account.id}`;
  const input = h('input', {
    type: 'password', id: inputId, minLength: 8, required: true, autocomplete: 'new-password',
    dataset: { testid: `account-reset-password-${u}` },
  });
  const form = h('form', {
    className: 'inline-form',
    onsubmit: (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      options.onResetPassword(input, /** @type {HTMLButtonElement} */ (event.submitter));
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
      onclick: options.onClose,
    })));
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') options.onClose();
  });
  return h('tr', { className: 'inline-row', id: `reset-row-${account.id}` },
    h('td', { colSpan: 7 }, form));
}
