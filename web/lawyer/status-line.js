// A status line under a part of the lawyer's schedule: a text (ok, with a
// key of the string tables) or an error from the API, shown again in a new
// language.

import { t, showError, clearError } from '/web/shared/i18n.js';

/**
 * @typedef {{kind: 'ok', key: string, vars?: Record<string, unknown>} | {kind: 'error', error: unknown}} Status
 */

export class StatusLine {
  /** @param {HTMLElement} el */
  constructor(el) {
    this.el = el;
    /** @type {Status | null} */
    this.status = null;
  }

  /** @param {Status | null} status */
  set(status) {
    this.status = status;
    this.render();
  }

  render() {
    const { el, status: s } = this;
    el.dataset.kind = s ? s.kind : '';
    if (!s) {
      clearError(el);
      el.hidden = false;
    } else if (s.kind === 'error') {
      showError(el, s.error);
    } else {
      delete el.dataset.errorCode;
      el.hidden = false;
      el.textContent = t(s.key, s.vars);
    }
  }
}
