// Translations for the three apps.
//
// Each app has one flat JSON table per language at /web/<app>/i18n/<lang>.json
// ({"key": "text", ...}; "{name}" in a text is filled from t()'s second
// argument). Elements are translated through attributes:
//   data-i18n="key"               -> textContent
//   data-i18n-placeholder="key"   -> placeholder
//   data-i18n-aria-label="key"    -> aria-label
//   data-i18n-title="key"         -> title
// No user-visible word lives in code: a missing key shows the key itself and
// is reported on the console ("[i18n] missing"), which the browser tests catch.

const tables = new Map();
const listeners = new Set();
/** Elements showing an error (see showError), re-translated on a language change. */
const shownErrors = new Map();
let state = { app: '', lang: '', languages: [], fallback: '', storageKey: '', remember: true };

async function loadTable(lang) {
  if (tables.has(lang)) return tables.get(lang);
  const response = await fetch(`/web/${state.app}/i18n/${lang}.json`, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`[i18n] cannot load ${state.app}/${lang}: ${response.status}`);
  const table = await response.json();
  tables.set(lang, table);
  return table;
}

function storedLanguage() {
  try {
    return localStorage.getItem(state.storageKey);
  } catch {
    return null;
  }
}

/**
 * Loads the app's strings and translates the page.
 * @param {object} options
 * @param {string} options.app 'coordinator' | 'lawyer' | 'terminal'
 * @param {string[]} options.languages the languages the app offers
 * @param {string} options.defaultLanguage used when none was chosen before
 * @param {boolean} [options.remember=true] start with the language chosen last time
 */
export async function initI18n({ app, languages, defaultLanguage, remember = true }) {
  state = {
    app,
    lang: '',
    languages,
    fallback: defaultLanguage,
    storageKey: `cloudlaw.${app}.lang`,
    remember,
  };
  const stored = remember ? storedLanguage() : null;
  await setLanguage(stored && languages.includes(stored) ? stored : defaultLanguage);
}

/** Switches the language, translates the page and tells every listener. */
export async function setLanguage(lang) {
  if (!state.languages.includes(lang)) lang = state.fallback;
  await loadTable(lang);
  state.lang = lang;
  try {
    localStorage.setItem(state.storageKey, lang);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  document.documentElement.lang = lang;
  applyTranslations(document);
  for (const [element, error] of shownErrors) {
    if (element.isConnected && element.dataset.errorCode) showError(element, error);
    else shownErrors.delete(element);
  }
  for (const listener of listeners) listener(lang);
}

export const currentLanguage = () => state.lang;

/** Calls back after every language change (to re-render dynamic content). */
export function onLanguageChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** True when the current language has a text for the key. */
export function has(key) {
  const table = tables.get(state.lang);
  return Boolean(table && Object.hasOwn(table, key));
}

/** The text for a key in the current language, with {placeholders} filled. */
export function t(key, vars) {
  const table = tables.get(state.lang) ?? {};
  let text = table[key];
  if (typeof text !== 'string') {
    console.warn(`[i18n] missing ${state.app}/${state.lang}: ${key}`);
    text = key;
  }
  if (vars) {
    text = text.replace(/\{(\w+)\}/g, (whole, name) =>
      Object.hasOwn(vars, name) ? String(vars[name]) : whole,
    );
  }
  return text;
}

/**
 * Translates every marked element under root (an element or the document).
 * @param {Document | Element} [root]
 */
export function applyTranslations(root = document) {
  const scope = root.querySelectorAll ? root : document;
  /**
   * @param {string} selector
   * @returns {HTMLElement[]}
   */
  const all = (selector) => {
    const found = /** @type {HTMLElement[]} */ ([...scope.querySelectorAll(selector)]);
    if (scope instanceof Element && scope.matches(selector)) found.unshift(/** @type {HTMLElement} */ (scope));
    return found;
  };
  for (const el of all('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of all('[data-i18n-placeholder]')) /** @type {HTMLInputElement} */ (el).placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of all('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  for (const el of all('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  if (has('page.title')) document.title = t('page.title');
}

/** A date and time from unix seconds, in the current language when the browser knows it. */
export function formatTime(unixSeconds) {
  const date = new Date(unixSeconds * 1000);
  /** @type {Intl.DateTimeFormatOptions} */
  const options = { dateStyle: 'medium', timeStyle: 'short' };
  try {
    return new Intl.DateTimeFormat(state.lang, options).format(date);
  } catch {
    return new Intl.DateTimeFormat(undefined, options).format(date);
  }
}

/**
 * The text to show for an error from api.js: the translation of
 * 'error.<code>' when the table has one, else the server's message, else
 * 'error.unknown'. The server's own message comes second (detail) when it
 * adds something.
 * @returns {{text: string, detail: string}}
 */
export function describeError(error) {
  const code = error && typeof error.code === 'string' ? error.code : 'unknown';
  const serverMessage = (error && error.serverMessage) || '';
  if (has(`error.${code}`)) {
    const text = t(`error.${code}`, { seconds: error.retryAfter ?? '' });
    return { text, detail: serverMessage && serverMessage !== text ? serverMessage : '' };
  }
  if (serverMessage) return { text: serverMessage, detail: '' };
  if (!(error && error.code)) console.error(error);
  return { text: t('error.unknown'), detail: '' };
}

/**
 * Shows an error in an element: the localized text, the server's message as
 * a smaller second line, and the code in data-error-code for tests and code.
 */
export function showError(element, error) {
  const { text, detail } = describeError(error);
  element.replaceChildren();
  const main = document.createElement('span');
  main.className = 'error-text';
  main.textContent = text;
  element.append(main);
  if (detail) {
    const small = document.createElement('span');
    small.className = 'error-detail';
    small.lang = 'en';
    small.textContent = detail;
    element.append(small);
  }
  element.dataset.errorCode = (error && error.code) || 'unknown';
  element.hidden = false;
  shownErrors.set(element, error);
}

/** Empties and hides an element used by showError. */
export function clearError(element) {
  shownErrors.delete(element);
  element.replaceChildren();
  delete element.dataset.errorCode;
  element.hidden = true;
}
