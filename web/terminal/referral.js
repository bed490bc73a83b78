// A referral the lawyer proposes (`referral.proposed`, for legal aid, people's
// mediation or another office): the resident is asked, in plain words, whether
// the office may have what the lawyer wrote, the topic, the language and a
// phone number if they give one (POST /api/referrals/{id}/consent). Agreed,
// they get a reference code, written large, with its QR code and a slip to
// print; any kiosk can look it up later (referral-status.js).
//
// Only for the resident who is here: the consultation in the call, or just
// finished on the rating screen; never after the kiosk went back to the start
// screen. While the call lasts it is a panel beside the lawyer's picture (the
// lawyer explains it live); otherwise a screen of its own, before the rating.
// Answering or closing goes back to where the resident was.
//
// A push missed while the live connection was down is asked for when it comes
// back (GET /api/referrals/proposed, catchUp()); a proposal is shown once,
// whichever way it came.

import { t, currentLanguage } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { seg } from '/web/shared/api.js';
import { SERVICES, serviceText } from '/web/shared/codes.js';
import { keypad, formatCode } from '/web/terminal/keypad.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Screens the proposal is a panel over (the call, or the wait after a dropped call); over others, a screen. */
const UNDER_PANEL = ['call', 'waiting'];
/** After a reconnection, how often and how far apart the missed proposals are asked for. */
const CATCH_UP_TRIES = 3;
const CATCH_UP_PAUSE_MS = 3_000;
/** A phone number's characters. */
const PHONE_CHARACTERS = /[^0-9+\- ]/g;

/**
 * What the server pushes when the lawyer proposes a referral.
 * @typedef {object} Proposal
 * @property {string} referral
 * @property {string} consultation
 * @property {string} service `legal_aid`, `mediation` or another office's service code
 * @property {string} office the office's name
 * @property {Record<string, string>} [office_names] its name in other languages, by language code
 * @property {number} [expires_at]
 */

/**
 * The answer to an agreement: where the referral stands, and its code as a QR code.
 * @typedef {object} Reference
 * @property {string} code
 * @property {string} service
 * @property {string} office
 * @property {Record<string, string>} [office_names]
 * @property {string} status
 * @property {number} [updated_at]
 * @property {string} [qr_svg]
 */

/**
 * The QR code (an SVG document from the server) as a data: URL for an <img>,
 * where nothing in it can run; sized by its viewBox. Null when it is not SVG.
 * @param {unknown} text
 * @returns {string | null}
 */
export function qrImageUrl(text) {
  if (typeof text !== 'string' || !text.trim()) return null;
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
  const svg = doc.documentElement;
  if (!svg || svg.namespaceURI !== SVG_NS || svg.localName !== 'svg' || doc.getElementsByTagName('parsererror').length) return null;
  if (!svg.hasAttribute('viewBox')) {
    const width = Number.parseFloat(svg.getAttribute('width') ?? '');
    const height = Number.parseFloat(svg.getAttribute('height') ?? '');
    const plain = (value) => /^\s*[\d.]+(px)?\s*$/.test(value ?? '');
    if (width > 0 && height > 0 && plain(svg.getAttribute('width')) && plain(svg.getAttribute('height'))) {
      svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    }
  }
  if (svg.hasAttribute('viewBox')) {
    // The page gives the size; the squares stay sharp at any size.
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    svg.setAttribute('shape-rendering', 'crispEdges');
  }
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(new XMLSerializer().serializeToString(svg))}`;
}

/**
 * A phone number as typed: null when empty, false when it cannot be one.
 * @param {string} value
 * @returns {string | null | false}
 */
function phoneNumber(value) {
  const text = value.replace(/\s+/g, ' ').trim();
  if (!text) return null;
  const digits = text.replace(/\D/g, '').length;
  return digits >= 5 && digits <= 20 && text.length <= 30 && !/[^0-9+\- ]/.test(text) ? text : false;
}

/**
 * The office's name for the resident: in the kiosk's language when the office
 * has a name in it (`office_names`), else its own name (`office`).
 * @param {{office: string, office_names?: Record<string, string> | null}} item a proposal, a reference or a status
 * @returns {string}
 */
export function officeName({ office, office_names: names }) {
  const lang = currentLanguage();
  const own = names && typeof names === 'object' && Object.hasOwn(names, lang) ? names[lang] : null;
  return typeof own === 'string' && own.trim() ? own : office;
}

/**
 * The service in words: legal aid, people's mediation (`referral.service.<code>`),
 * else the office's name, which says more to a resident than the office's own code.
 * @param {string} service
 * @param {string} office
 */
export function serviceName(service, office) {
  return SERVICES.includes(service) ? serviceText('referral.service', service) : office;
}

/**
 * "Monday, 1 December 2025"-like, in the kiosk's language.
 * @param {Date} date
 */
function slipDate(date) {
  let monthName = String(date.getMonth() + 1);
  try {
    monthName = new Intl.DateTimeFormat(currentLanguage(), { month: 'long' }).format(date);
  } catch {
    // Keep the number.
  }
  return t('referral.date', { year: date.getFullYear(), month: date.getMonth() + 1, monthName, day: date.getDate() });
}

/**
 * @param {import('/web/terminal/consult.js').Kiosk} kiosk
 * @param {(name: string) => void} showScreen the app's own: shows one screen, hides the others
 */
export function setupReferral(kiosk, showScreen) {
  const els = {
    screen: $('referral-screen'),
    consent: $('referral-consent'),
    heading: $('referral-heading'),
    receives: $('referral-receives'),
    shareTopic: $('referral-share-topic'),
    shareLanguage: $('referral-share-language'),
    phone: $('referral-phone', HTMLInputElement),
    phoneKeypad: $('referral-phone-keypad'),
    error: $('referral-error'),
    sending: $('referral-sending'),
    agree: $('referral-agree', HTMLButtonElement),
    refuse: $('referral-refuse', HTMLButtonElement),
    gone: $('referral-gone'),
    goneBack: $('referral-gone-back', HTMLButtonElement),
    reference: $('referral-reference'),
    sentText: $('referral-sent-text'),
    code: $('referral-code'),
    slipOffice: $('referral-slip-office'),
    slipDate: $('referral-slip-date'),
    qr: $('referral-qr', HTMLImageElement),
    print: $('referral-print', HTMLButtonElement),
    done: $('referral-done', HTMLButtonElement),
  };
  const serviceIcons = /** @type {NodeListOf<SVGElement>} */ (els.consent.querySelectorAll('[data-service-icon]'));

  /**
   * What the kiosk knows of the proposals to this resident.
   * @typedef {object} State
   * @property {Proposal | null} proposal the proposal on screen
   * @property {Proposal[]} waiting proposals that came while another was on screen
   * @property {'consent' | 'gone' | 'reference' | null} view what is on screen; null: nothing
   * @property {boolean} sending the answer is on its way
   * @property {'network' | 'phone' | 'other' | null} error why the last answer did not go through
   * @property {Reference | null} reference the agreed referral
   */
  /** @returns {State} */
  const fresh = () => ({ proposal: null, waiting: [], view: null, sending: false, error: null, reference: null });
  let state = fresh();
  /** The screen under the referral: the last one the kiosk showed. */
  let under = 'start';
  /** The proposals this resident has answered or put away: never shown again (forgotten by reset()). */
  let done = new Set();
  /** Counts the catch-ups, so that only the latest one's answer is taken. */
  let catchUps = 0;

  const phonePad = keypad(els.phoneKeypad, els.phone, { keys: '1234567890', testid: 'phone-key' });

  // ------------------------------------------------------------ where it shows

  /**
   * After the kiosk showed a screen: the referral goes over it as a panel,
   * or instead of it (the rating waits behind), or away (another resident).
   * @param {string} name
   */
  function placed(name) {
    under = name;
    if (!state.view) {
      hideElement();
      return;
    }
    if (UNDER_PANEL.includes(name)) {
      els.screen.classList.add('over');
      document.body.classList.add('referral-over');
      els.screen.hidden = false;
    } else if (name === 'rating') {
      els.screen.classList.remove('over');
      document.body.classList.remove('referral-over');
      showScreen('referral');
    } else {
      reset();
    }
  }

  function hideElement() {
    els.screen.hidden = true;
    els.screen.classList.remove('over');
    document.body.classList.remove('referral-over');
  }

  /** A proposal for this resident's consultation, now or while the rating waits. */
  const forThisResident = (/** @type {Proposal} */ proposal) =>
    proposal.consultation === kiosk.visit.consultation && ['call', 'rating'].includes(kiosk.visit.flow);

  /**
   * `referral.proposed`: for the resident here, asked now (or after the one on screen).
   * @param {Proposal} message
   */
  function proposed(message) {
    if (!message || typeof message.referral !== 'string' || !forThisResident(message)) return;
    const known = done.has(message.referral) || [state.proposal, ...state.waiting].some((p) => p?.referral === message.referral);
    if (known) return;
    if (state.view) {
      state.waiting.push(message);
      return;
    }
    open(message);
  }

  /** @param {Proposal} proposal */
  function open(proposal) {
    state.proposal = proposal;
    state.view = 'consent';
    state.error = null;
    state.sending = false;
    state.reference = null;
    els.phone.value = '';
    els.phoneKeypad.hidden = true;
    render();
    placed(under);
    els.screen.scrollTop = 0;
    els.heading.focus();
  }

  /**
   * The live connection is back (it may have missed `referral.proposed`): the
   * proposals still waiting for this resident's answer, asked now as pushes are.
   */
  async function catchUp() {
    const { consultation } = kiosk.visit;
    const asked = ++catchUps;
    for (let attempt = 0; attempt < CATCH_UP_TRIES; attempt += 1) {
      if (attempt) await new Promise((resolve) => setTimeout(resolve, CATCH_UP_PAUSE_MS));
      // Another catch-up began, or the resident is not the one here any more.
      if (asked !== catchUps || !consultation || consultation !== kiosk.visit.consultation
        || !['call', 'rating'].includes(kiosk.visit.flow)) return;
      let waiting;
      try {
        waiting = await kiosk.client.get('/api/referrals/proposed');
      } catch {
        continue; // The network again: a little later.
      }
      if (asked !== catchUps || !Array.isArray(waiting)) return;
      const mine = waiting
        .filter((p) => p && p.consultation === consultation)
        .sort((a, b) => (a.expires_at ?? 0) - (b.expires_at ?? 0));
      for (const proposal of mine) proposed(proposal);
      return;
    }
  }

  /** The resident is done with this proposal: the next one, or back where they were. */
  function close() {
    if (state.proposal) done.add(state.proposal.referral);
    const [next, ...later] = state.waiting.filter(forThisResident);
    state = fresh();
    clearShown();
    if (next) {
      state.waiting = later;
      open(next);
      return;
    }
    hideElement();
    if (under === 'rating') {
      // Rated already: this resident is done. Else back to the faces.
      if (kiosk.rating.rated()) kiosk.finish();
      else kiosk.show('rating');
    } else if (!UNDER_PANEL.includes(under)) {
      kiosk.show(under);
    }
  }

  // ------------------------------------------------------------ the answer

  /** @param {boolean} agree */
  async function answer(agree) {
    const proposal = state.proposal;
    if (!proposal || state.view !== 'consent' || state.sending) return;
    let contact = null;
    if (agree) {
      const phone = phoneNumber(els.phone.value);
      if (phone === false) {
        state.error = 'phone';
        render();
        els.phone.focus();
        return;
      }
      contact = phone;
    }
    state.sending = true;
    state.error = null;
    render();
    try {
      const result = await kiosk.client.post(`/api/referrals/${seg(proposal.referral)}/consent`, { agree, contact });
      if (state.proposal !== proposal) return; // the resident is gone (idle reset)
      state.sending = false;
      if (!agree) {
        close();
        return;
      }
      state.reference = {
        code: String(result?.code ?? ''),
        service: result?.service ?? proposal.service,
        office: result?.office ?? proposal.office,
        office_names: result?.office ? result.office_names : proposal.office_names,
        status: result?.status ?? 'new',
        updated_at: result?.updated_at,
      };
      const qr = qrImageUrl(result?.qr_svg);
      els.qr.hidden = !qr;
      if (qr) els.qr.src = qr;
      else els.qr.removeAttribute('src');
      state.view = 'reference';
      render();
      els.screen.scrollTop = 0;
      els.done.focus();
    } catch (error) {
      if (state.proposal !== proposal) return;
      state.sending = false;
      if ([404, 409, 410].includes(error?.status)) {
        // Expired, answered already, or withdrawn: nothing was shared. A "no" needs no word.
        if (!agree) {
          close();
          return;
        }
        state.view = 'gone';
        render();
        els.goneBack.focus();
        return;
      }
      state.error = error?.code === 'network' ? 'network' : error?.status === 400 && contact ? 'phone' : 'other';
      render();
    }
  }

  els.agree.addEventListener('click', () => answer(true));
  els.refuse.addEventListener('click', () => answer(false));
  els.goneBack.addEventListener('click', () => close());
  els.done.addEventListener('click', () => close());
  els.print.addEventListener('click', () => window.print());
  // Another language: the panel from its top again (its language buttons are at the end).
  for (const button of els.screen.querySelectorAll('button[data-lang]')) {
    button.addEventListener('click', () => {
      els.screen.scrollTop = 0;
    });
  }

  // The keypad comes when the field is touched (once the touch is over: what
  // moves under a finger would take its tap); typed letters do not stay.
  const openKeypad = () => {
    if (!els.phoneKeypad.hidden || state.view !== 'consent') return;
    els.phoneKeypad.hidden = false;
    setTimeout(() => els.phoneKeypad.scrollIntoView({ block: 'end' }), 0);
  };
  els.phone.addEventListener('focus', openKeypad);
  els.phone.addEventListener('click', openKeypad);
  els.phone.addEventListener('input', () => {
    const clean = els.phone.value.replace(PHONE_CHARACTERS, '').slice(0, 20);
    if (clean !== els.phone.value) els.phone.value = clean;
    if (state.error === 'phone') {
      state.error = null;
      render();
    }
  });

  // ------------------------------------------------------------ drawing

  function render() {
    phonePad.render();
    const { proposal, view, reference } = state;
    els.consent.hidden = view !== 'consent';
    els.gone.hidden = view !== 'gone';
    els.reference.hidden = view !== 'reference';
    if (!proposal) return;
    const { service } = proposal;
    const office = officeName(proposal);
    const icon = SERVICES.includes(service) ? service : 'other';
    for (const svg of serviceIcons) svg.classList.toggle('unused', svg.dataset.serviceIcon !== icon);
    els.heading.textContent = service === 'legal_aid' ? t('referral.suggests.legal_aid')
      : service === 'mediation' ? t('referral.suggests.mediation')
        : t('referral.suggests.other', { office });
    els.receives.textContent = t('referral.receives', { office });
    const { topic, language } = kiosk.visit;
    els.shareTopic.textContent = topic ? t('referral.share.topicIs', { topic: t(`topic.${topic}`) }) : t('referral.share.topic');
    els.shareLanguage.textContent = language
      ? t('referral.share.languageIs', { language: t(`language.${language}`) }) : t('referral.share.language');
    els.agree.disabled = state.sending;
    els.refuse.disabled = state.sending;
    els.phone.disabled = state.sending;
    els.sending.hidden = !state.sending;
    els.error.hidden = !state.error;
    els.error.textContent = state.error === 'network' ? t('error.network')
      : state.error === 'phone' ? t('referral.error.phone')
        : state.error ? t('referral.error.other') : '';
    if (reference) {
      const office = officeName(reference);
      const name = serviceName(reference.service, office);
      els.sentText.textContent = t('referral.sent', { office });
      els.code.textContent = formatCode(reference.code) || reference.code;
      // The slip goes to the office too: its own name follows the resident's language's.
      const named = office === reference.office ? office : `${office} (${reference.office})`;
      els.slipOffice.textContent = name === office ? named : `${name} · ${named}`;
      const when = reference.updated_at ? new Date(reference.updated_at * 1000) : new Date();
      els.slipDate.textContent = slipDate(when);
      els.qr.alt = t('referral.qrAlt', { code: els.code.textContent });
    }
  }

  /** Empties what the last proposal put on screen. */
  function clearShown() {
    for (const el of [els.heading, els.receives, els.shareTopic, els.shareLanguage, els.error, els.sentText, els.code, els.slipOffice, els.slipDate]) {
      el.textContent = '';
    }
    els.phone.value = '';
    els.phone.disabled = false;
    els.phoneKeypad.hidden = true;
    els.error.hidden = true;
    els.sending.hidden = true;
    els.agree.disabled = false;
    els.refuse.disabled = false;
    els.qr.removeAttribute('src');
    els.qr.alt = '';
    els.qr.hidden = true;
    els.consent.hidden = false;
    els.gone.hidden = true;
    els.reference.hidden = true;
  }

  /** Forgets every proposal, answer and code of the last resident. */
  function reset() {
    state = fresh();
    done = new Set();
    catchUps += 1;
    clearShown();
    hideElement();
  }

  return {
    proposed,
    catchUp,
    placed,
    render,
    reset,
    /** A proposal or a reference is on screen (the rating's thanks must not end the visit). */
    open: () => state.view !== null,
  };
}
