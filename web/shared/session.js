// The login form and language buttons that the lawyer and coordinator apps share.

import { setLanguage, currentLanguage, onLanguageChange, showError, clearError, initI18n, applyTranslations } from './i18n.js';

/**
 * Wires language buttons (<button data-lang="zh">) inside a container:
 * a click switches the language; aria-pressed marks the current one.
 */
export function setupLanguageButtons(container) {
  const buttons = [...container.querySelectorAll('button[data-lang]')];
  const mark = () => {
    for (const button of buttons) {
      button.setAttribute('aria-pressed', String(button.dataset.lang === currentLanguage()));
    }
  };
  for (const button of buttons) {
    button.addEventListener('click', () => setLanguage(button.dataset.lang));
  }
  onLanguageChange(mark);
  mark();
}

/** An error of our own making for a login that worked but is the wrong kind of account. */
export class WrongRoleError extends Error {
  constructor() {
    super('wrong_role');
    this.code = 'wrong_role';
    this.serverMessage = '';
  }
}

/**
 * Wires a login form with inputs [data-testid=login-username|login-password],
 * a submit button and an error element [data-testid=login-error].
 *
 * @param {object} options
 * @param {HTMLFormElement} options.form
 * @param {import('./api.js').Client} options.client
 * @param {string[]} options.roles an account needs one of them to use this app
 * @param {(me: object) => void} options.onLoggedIn called with the Account from /api/me
 */
export function setupLoginForm({ form, client, roles, onLoggedIn }) {
  const username = /** @type {HTMLInputElement} */ (form.querySelector('[data-testid="login-username"]'));
  const password = /** @type {HTMLInputElement} */ (form.querySelector('[data-testid="login-password"]'));
  const submit = /** @type {HTMLButtonElement} */ (form.querySelector('[data-testid="login-submit"]'));
  const errorBox = /** @type {HTMLElement} */ (form.querySelector('[data-testid="login-error"]'));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(errorBox);
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await client.login(username.value.trim(), password.value);
      const account = await fetchAccount(client, roles);
      password.value = '';
      onLoggedIn(account);
    } catch (error) {
      if (error.code === 'wrong_role') await client.logout();
      showError(errorBox, error);
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  return {
    reset() {
      form.reset();
      clearError(errorBox);
    },
  };
}

/**
 * GET /api/me for a person's account; throws WrongRoleError when the account
 * has none of the roles this app is for.
 */
export async function fetchAccount(client, roles) {
  const me = await client.get('/api/me');
  const account = me && me.kind === 'account' ? me.account : null;
  if (!account || !account.roles.some((role) => roles.includes(role))) throw new WrongRoleError();
  return account;
}

/**
 * Starts a signed-in app: translations, language buttons, the login form, and
 * (when a session is stored) straight to the app. Shared by the lawyer and
 * coordinator apps. Returns the login form's handle.
 */
export async function startSignedInApp({ app, client, roles, els, onLoggedIn, showLogin }) {
  await initI18n({ app, languages: ['zh', 'en'], defaultLanguage: 'zh' });
  setupLanguageButtons(document.querySelector('.lang-switch'));
  const login = setupLoginForm({ form: els.loginForm, client, roles, onLoggedIn });
  if (client.hasCredentials()) {
    try {
      onLoggedIn(await fetchAccount(client, roles));
      return login;
    } catch (error) {
      if (error.code === 'wrong_role') await client.logout();
      showLogin();
      if (error.code !== 'unauthorized') showError(els.loginError, error);
      return login;
    }
  }
  showLogin();
  return login;
}

/** Logs a start-up failure and still shows translated text. */
export function reportStartFailure(error) {
  console.error(error);
  applyTranslations(document);
}
