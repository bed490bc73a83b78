// Looking up a referral at the kiosk, from the start screen: the resident
// types the reference code of their slip (on the keypad or a keyboard; the
// dash is optional) and reads where it stands (GET /api/referral-status/{code}):
// received, being handled, or closed and how. Nothing else about it is shown.
// reset() forgets the code and the answer (the idle reset calls it).

import { t, describeError } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { seg } from '/web/shared/api.js';
import { officeName } from '/web/terminal/referral.js';
import { keypad, codeCharacters, formatCode, CODE_ALPHABET, CODE_LENGTH } from '/web/terminal/keypad.js';

/**
 * Where a referral stands, as the server says.
 * @typedef {{code: string, service: string, office: string, office_names?: Record<string, string>, status: string,
 *   outcome?: string | null, updated_at?: number}} Status
 */

/**
 * The status in one sentence of the kiosk's language.
 * @param {Status} found
 */
function statusText(found) {
  const { status, outcome } = found;
  const office = officeName(found);
  if (status === 'new') return t('status.new', { office });
  if (status === 'accepted') return t('status.accepted', { office });
  if (status !== 'closed') return t('status.unknown', { office });
  switch (outcome) {
    case 'legal_aid_granted': return t('status.closed.legal_aid_granted', { office });
    case 'legal_aid_refused': return t('status.closed.legal_aid_refused', { office });
    case 'mediated': return t('status.closed.mediated', { office });
    case 'mediation_failed': return t('status.closed.mediation_failed', { office });
    case 'withdrawn': return t('status.closed.withdrawn', { office });
    case 'unreachable': return t('status.closed.unreachable', { office });
    case 'other': return t('status.closed.other', { office });
    default: return t('status.closed', { office });
  }
}

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {(screen: string) => void} options.show shows one screen by name
 */
export function setupReferralStatus({ client, show }) {
  const els = {
    heading: $('referral-status-heading'),
    form: $('referral-status-form', HTMLFormElement),
    input: $('referral-code-input', HTMLInputElement),
    submit: $('referral-status-submit', HTMLButtonElement),
    keypad: $('referral-code-keypad'),
    loading: $('referral-status-loading'),
    result: $('referral-status-result'),
    code: $('referral-status-code'),
    text: $('referral-status-text'),
    done: $('referral-status-done', HTMLButtonElement),
  };
  const icons = /** @type {NodeListOf<SVGElement>} */ (els.result.querySelectorAll('[data-status-icon]'));

  /**
   * @typedef {object} State
   * @property {number} request counts lookups, so that a late answer to an older one is ignored
   * @property {boolean} loading
   * @property {string} code the code looked up, as written
   * @property {Status | null} found
   * @property {'not_found' | 'short' | import('/web/shared/api.js').ApiError | null} problem no answer: the code is unknown, too short, or an error from api.js
   */
  /** @returns {State} */
  const fresh = () => ({ request: 0, loading: false, code: '', found: null, problem: null });
  let state = fresh();

  const pad = keypad(els.keypad, els.input, { keys: CODE_ALPHABET, testid: 'code-key' });

  // The field keeps only the code's characters, with the dash written in.
  els.input.addEventListener('input', () => {
    const formatted = formatCode(els.input.value);
    if (formatted !== els.input.value) els.input.value = formatted;
    if (state.problem === 'short' && codeCharacters(formatted).length === CODE_LENGTH) {
      state.problem = null;
      render();
    }
  });

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chars = codeCharacters(els.input.value);
    const request = ++state.request;
    state.found = null;
    state.code = formatCode(chars);
    if (chars.length !== CODE_LENGTH) {
      state.problem = 'short';
      state.loading = false;
      render();
      return;
    }
    state.problem = null;
    state.loading = true;
    render();
    try {
      const found = await client.get(`/api/referral-status/${seg(chars)}`);
      if (request !== state.request) return;
      state.found = found;
    } catch (error) {
      if (request !== state.request) return;
      state.problem = error?.status === 404 ? 'not_found' : error;
    }
    state.loading = false;
    render();
  });

  function render() {
    pad.render();
    els.loading.hidden = !state.loading;
    els.submit.disabled = state.loading;
    const { found, problem } = state;
    els.result.hidden = state.loading || (!found && !problem);
    els.done.hidden = els.result.hidden;
    els.result.dataset.state = found ? found.status : problem ? (typeof problem === 'string' ? problem : 'error') : '';
    const icon = found ? (['new', 'accepted', 'closed'].includes(found.status) ? found.status : 'new') : 'none';
    for (const svg of icons) svg.classList.toggle('unused', svg.dataset.statusIcon !== icon);
    els.code.textContent = found ? formatCode(found.code) || state.code : problem === 'not_found' ? state.code : '';
    if (found) els.text.textContent = statusText(found);
    else if (problem === 'not_found') els.text.textContent = t('status.notFound');
    else if (problem === 'short') els.text.textContent = t('status.short');
    else if (problem) els.text.textContent = describeError(problem).text;
    else els.text.textContent = '';
  }

  const leave = () => {
    reset();
    show('start');
  };
  $('referral-status-back', HTMLButtonElement).addEventListener('click', leave);
  els.done.addEventListener('click', leave);

  /** Forgets the code and what was found. */
  function reset() {
    state = { ...fresh(), request: state.request + 1 };
    els.input.value = '';
    render();
  }

  return {
    /** From the start screen: an empty field. */
    begin() {
      reset();
      show('referralStatus');
      els.heading.focus();
    },
    reset,
    /** Re-labels what is on screen after a language change. */
    render,
  };
}
