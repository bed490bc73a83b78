// The kiosk in a township legal service station.
//
// Screens: enrollment (for the technician, until the kiosk has a device
// token), start (for residents), talking to a lawyer now (consult.js: topic,
// camera check, waiting, call, rating, and a referral the lawyer proposes:
// referral.js), booking a later time (booking.js) and looking up a referral
// by its code (referral-status.js).
// The device token is the kiosk's Bearer token; when the server stops
// accepting it (the terminal was revoked), the kiosk forgets it and goes back
// to enrollment.
//
// Idle reset: IDLE_MS after the last touch, the kiosk goes back to the start
// screen in Tibetan and forgets everything the last person did; never while a
// resident waits for a lawyer or talks to one.

import { createClient } from '/web/shared/api.js';
import { initI18n, setLanguage, currentLanguage, onLanguageChange, t, showError, clearError, applyTranslations } from '/web/shared/i18n.js';
import { $, byTestId } from '/web/shared/dom.js';
import { setupBooking } from '/web/terminal/booking.js';
import { setupConsult } from '/web/terminal/consult.js';
import { setupReferralStatus } from '/web/terminal/referral-status.js';

const client = createClient('terminal');
const DEFAULT_LANGUAGE = 'bo';
const LANGUAGES = ['bo', 'zh', 'en'];
const IDLE_MS = 90_000;
/** How often an idle kiosk asks whether it is still enrolled. */
const RECHECK_MS = 5 * 60_000;

const screens = {
  loading: $('loading-screen'),
  enroll: $('enroll-screen'),
  start: $('start-screen'),
  bookTopic: $('book-topic-screen'),
  bookSlots: $('book-slots-screen'),
  bookConfirm: $('book-confirm-screen'),
  bookDone: $('book-done-screen'),
  check: $('check-screen'),
  waiting: $('waiting-screen'),
  call: $('call-screen'),
  rating: $('rating-screen'),
  referral: $('referral-screen'),
  referralStatus: $('referral-status-screen'),
};
const els = {
  enrollForm: $('enroll-form', HTMLFormElement),
  enrollCode: $('enroll-code', HTMLInputElement),
  enrollError: $('enroll-error'),
  enrollSubmit: /** @type {HTMLButtonElement} */ (byTestId('enroll-submit')),
  placeText: $('place-text'),
  offline: $('offline'),
};

let terminal = null;
let idleTimer = null;
/** The server could not be reached over HTTP, or the live connection is down. */
const offline = { http: false, live: false };

function renderOffline() {
  els.offline.hidden = !(offline.http || offline.live);
}

// ---------------------------------------------------------------- screens

function show(name) {
  for (const [key, el] of Object.entries(screens)) el.hidden = key !== name;
  window.scrollTo(0, 0);
}

const visible = (name) => !screens[name].hidden;

function renderPlace() {
  if (!terminal) {
    els.placeText.textContent = '';
    return;
  }
  els.placeText.textContent = t('start.place', { township: terminal.township, name: terminal.name });
}

function showStart() {
  renderPlace();
  show('start');
}

function showEnroll() {
  terminal = null;
  consult.disconnect();
  offline.live = false;
  renderOffline();
  renderPlace();
  els.enrollCode.value = '';
  clearError(els.enrollError);
  show('enroll');
}

const booking = setupBooking({
  client,
  show: (name) => (name === 'start' ? showStart() : show(name)),
});

$('book-later', HTMLButtonElement).addEventListener('click', () => booking.begin());

const consult = setupConsult({
  client,
  show: (name) => (name === 'start' ? showStart() : show(name)),
  booking,
  onLink: (up) => {
    offline.live = !up;
    renderOffline();
  },
  onRevoked: () => {
    client.forget();
    showEnroll();
  },
  onFinished: () => resetSession(),
});

$('talk-now', HTMLButtonElement).addEventListener('click', () => consult.begin());

const referralStatus = setupReferralStatus({
  client,
  show: (name) => (name === 'start' ? showStart() : show(name)),
});

$('check-referral', HTMLButtonElement).addEventListener('click', () => referralStatus.begin());

// ---------------------------------------------------------------- server

/** Asks who this kiosk is; a rejected token sends it back to enrollment. */
async function checkIdentity() {
  if (!client.hasCredentials()) {
    showEnroll();
    return;
  }
  try {
    const me = await client.get('/api/me');
    if (!me || me.kind !== 'terminal' || !me.terminal) {
      client.forget();
      showEnroll();
      return;
    }
    terminal = me.terminal;
    offline.http = false;
    renderOffline();
    consult.connect();
    if (visible('loading')) showStart();
    else renderPlace();
  } catch (error) {
    if (error.status === 401) return; // onLoggedOut already went back to enrollment
    // Offline or a server problem: stay usable, show the notice, keep the token.
    offline.http = true;
    renderOffline();
    consult.connect();
    if (visible('loading')) showStart();
  }
}

client.onLoggedOut(() => {
  showEnroll();
});

els.enrollForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearError(els.enrollError);
  const code = els.enrollCode.value.replace(/\s+/g, '').toUpperCase();
  if (!code) {
    showError(els.enrollError, { code: 'empty_code', serverMessage: '' });
    els.enrollCode.focus();
    return;
  }
  els.enrollSubmit.disabled = true;
  try {
    const result = await client.anonymous('POST', '/api/terminals/enroll', { code });
    client.setDeviceToken(result.device_token);
    terminal = result.terminal ?? null;
    els.enrollCode.value = '';
    offline.http = false;
    renderOffline();
    await setLanguage(DEFAULT_LANGUAGE);
    showStart();
    checkIdentity();
  } catch (error) {
    showError(els.enrollError, error);
    els.enrollCode.select();
  } finally {
    els.enrollSubmit.disabled = false;
  }
});

// ---------------------------------------------------------------- language

/** The language buttons at the top of every screen. */
const languageButtons = () => /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll('button[data-lang]'));

function markLanguageButtons() {
  for (const button of languageButtons()) {
    button.setAttribute('aria-pressed', String(button.dataset.lang === currentLanguage()));
  }
}

for (const button of languageButtons()) {
  button.addEventListener('click', () => setLanguage(button.dataset.lang));
}

onLanguageChange(() => {
  markLanguageButtons();
  renderPlace();
  booking.render();
  consult.render();
  referralStatus.render();
});

// ---------------------------------------------------------------- idle reset

/** Back to a fresh start screen in Tibetan: nothing of the last person stays. */
async function resetSession() {
  if (consult.busy()) {
    // Someone waits for a lawyer or talks to one: not idle.
    touched();
    return;
  }
  if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
  els.enrollCode.value = '';
  clearError(els.enrollError);
  booking.reset();
  consult.reset();
  referralStatus.reset();
  await setLanguage(DEFAULT_LANGUAGE);
  window.scrollTo(0, 0);
  // The next resident may already wait (an appointment that began during the last call).
  if (consult.resume()) return;
  if (client.hasCredentials()) {
    if (!visible('start')) showStart();
    checkIdentity();
  } else {
    showEnroll();
  }
}

function touched() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(resetSession, IDLE_MS);
}

for (const type of ['pointerdown', 'touchstart', 'keydown', 'input', 'wheel']) {
  document.addEventListener(type, touched, { capture: true, passive: true });
}

// A long press must not open a context menu on a kiosk.
document.addEventListener('contextmenu', (event) => event.preventDefault());

setInterval(() => {
  if (visible('start') && client.hasCredentials()) checkIdentity();
}, RECHECK_MS);

// ---------------------------------------------------------------- start

async function start() {
  // A kiosk serves a new person after every restart: always begin in Tibetan.
  await initI18n({ app: 'terminal', languages: LANGUAGES, defaultLanguage: DEFAULT_LANGUAGE, remember: false });
  markLanguageButtons();
  await checkIdentity();
}

start().catch((error) => {
  console.error(error);
  applyTranslations(document);
  showEnroll();
});
