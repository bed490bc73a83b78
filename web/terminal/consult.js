// Talking to a lawyer now, at the kiosk: topic (the shared topic screen) ->
// camera and microphone check (consult-check.js) -> waiting (place, estimate,
// cancel; booking when nobody is on duty: consult-waiting.js) -> the call
// (the lawyer large, the resident small, network quality, audio only, hang
// up: consult-call.js) -> rating with faces (consult-rating.js). A referral
// the lawyer proposes meanwhile asks the resident's consent (referral.js).
//
// The kiosk keeps one live connection (PROTOCOL.md, "The live path") while it
// is enrolled, for its requests and for appointments that start. After a
// reconnection the server says again what is in progress (consult.queued or
// consult.started with a fresh room token); a request it forgot is asked again,
// and a referral proposed meanwhile is fetched (referral.js).

import { t, currentLanguage, setLanguage } from '/web/shared/i18n.js';
import { keepLive } from '/web/shared/live.js';
import { $ } from '/web/shared/dom.js';
import { timeText } from '/web/terminal/booking.js';
import { setupCheck } from '/web/terminal/consult-check.js';
import { setupWaiting } from '/web/terminal/consult-waiting.js';
import { setupCall } from '/web/terminal/consult-call.js';
import { setupRating } from '/web/terminal/consult-rating.js';
import { setupReferral } from '/web/terminal/referral.js';

/** After a reconnection, how long the server has to say what is in progress. */
const RESUME_WAIT_MS = 6_000;

/**
 * Where a wait stands, as `consult.queued` says.
 * @typedef {{position: number, estimated_wait_secs?: number | null, nobody_on_duty: boolean}} Queued
 */

/**
 * What the kiosk knows of the resident it serves now; forgotten by reset().
 * @typedef {object} Visit
 * @property {'idle' | 'check' | 'asking' | 'waiting' | 'call' | 'rating'} flow
 * @property {string | null} topic
 * @property {string | null} language
 * @property {string | null} request
 * @property {Queued | null} queued
 * @property {string | null} consultation
 * @property {string | null} note a note on the waiting screen (back in the queue)
 * @property {boolean} appointment the resident came for a booked time
 * @property {'book' | null} afterCancel what follows a cancelled wait
 */

/**
 * What the parts of talking now share. Each part is set on it once made, and
 * uses the others only when something happens.
 * @typedef {object} Kiosk
 * @property {Visit} visit
 * @property {import('/web/shared/api.js').Client} client
 * @property {(message: object) => boolean} send on the live connection; false when it is down
 * @property {(name: string) => void} show shows one screen by name (a referral on screen stays, over it or instead of it)
 * @property {ReturnType<typeof import('/web/terminal/booking.js').setupBooking>} booking
 * @property {() => void} begin from the start screen: topic first, then the check
 * @property {() => void} reset forgets everything of the last resident (not the link)
 * @property {() => void} finish reset, then a fresh start screen
 * @property {() => void} onFinished a fresh start screen (the app's)
 * @property {() => string} details the topic and language chosen, in words
 * @property {ReturnType<typeof setupCheck>} check
 * @property {ReturnType<typeof setupWaiting>} waiting
 * @property {ReturnType<typeof setupCall>} call
 * @property {ReturnType<typeof setupRating>} rating
 * @property {ReturnType<typeof setupReferral>} referral
 */

/** @returns {Visit} */
const freshVisit = () => ({
  flow: 'idle',
  topic: null,
  language: null,
  request: null,
  queued: null,
  consultation: null,
  note: null,
  appointment: false,
  afterCancel: null,
});

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {(name: string) => void} options.show shows one screen by name
 * @param {ReturnType<typeof import('/web/terminal/booking.js').setupBooking>} options.booking
 * @param {(up: boolean) => void} options.onLink the live connection came up or went down
 * @param {() => void} options.onRevoked the server revoked the kiosk
 * @param {() => void} options.onFinished back to a fresh start screen
 */
export function setupConsult({ client, show, booking, onLink, onRevoked, onFinished }) {
  const els = {
    soon: $('appointment-soon'),
    soonText: $('appointment-soon-text'),
  };

  /** @type {{topic?: string, language?: string} | null} an appointment that started here and has not reached its resident's screen yet */
  let appointment = null;
  /** @type {(Queued & {request: string}) | null} a wait that began while the last resident was still on the rating screen */
  let queuedAfterRating = null;
  /** @type {{start?: string} | null} a booked consultation here that starts soon (told on the start screen) */
  let soon = null;
  /** @type {ReturnType<typeof keepLive> | null} */
  let live = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let resumeTimer;

  const kiosk = /** @type {Kiosk} */ ({
    visit: freshVisit(),
    client,
    send: (message) => Boolean(live?.send(message)),
    show: (name) => {
      show(name);
      kiosk.referral.placed(name);
    },
    booking,
    begin,
    reset,
    finish,
    onFinished,
    details,
  });
  kiosk.check = setupCheck(kiosk);
  kiosk.waiting = setupWaiting(kiosk);
  kiosk.call = setupCall(kiosk);
  kiosk.rating = setupRating(kiosk);
  kiosk.referral = setupReferral(kiosk, show);
  const { check, waiting, call, rating, referral } = kiosk;

  // ------------------------------------------------------------ the link

  function connect() {
    if (live) return;
    live = keepLive({
      client,
      onMessage: receive,
      onUp: () => {
        onLink(true);
        resumeAfterReconnect();
        // A referral proposed while the link was down came to nobody: ask for it.
        referral.catchUp();
      },
      onDown: () => onLink(false),
      onRevoked: () => {
        live = null;
        onRevoked();
      },
    });
  }

  function disconnect() {
    live?.stop();
    live = null;
    appointment = null;
    soon = null;
    renderSoon();
    queuedAfterRating = null;
    reset();
  }

  /** The server says again what is in progress; a request it forgot is asked again. */
  function resumeAfterReconnect() {
    clearTimeout(resumeTimer);
    const visit = kiosk.visit;
    if (!['asking', 'waiting', 'call'].includes(visit.flow)) return;
    const flow = visit.flow;
    resumeTimer = setTimeout(() => {
      if (kiosk.visit.flow !== flow) return;
      if (flow === 'call') {
        // The call ended while the kiosk was away.
        call.end();
        rating.show('call.lost');
      } else if (kiosk.visit.topic && kiosk.visit.language) {
        kiosk.send({ type: 'consult.request', language: kiosk.visit.language, topic: kiosk.visit.topic });
      } else {
        finish();
      }
    }, RESUME_WAIT_MS);
  }

  /** @param {any} message */
  function receive(message) {
    if (call.handle(message)) return;
    switch (message.type) {
      case 'consult.queued':
        clearTimeout(resumeTimer);
        onQueued(message);
        break;
      case 'consult.cancelled':
        waiting.cancelled();
        break;
      case 'consult.started':
        clearTimeout(resumeTimer);
        call.start(message);
        break;
      case 'consult.peer':
        call.peer(message);
        break;
      case 'consult.ended':
        call.ended(message);
        break;
      case 'consult.rated':
        rating.thanks();
        break;
      case 'referral.proposed':
        referral.proposed(message);
        break;
      case 'appointment_reminder':
        soon = message.appointment ?? null;
        renderSoon();
        break;
      case 'appointment_started':
        soon = null;
        renderSoon();
        // Someone booked this time: the server puts them at the front (now,
        // or when a call at this kiosk ends). A resident already waiting here
        // is taken to be them.
        appointment = message.appointment ?? {};
        if (kiosk.visit.flow === 'waiting') {
          appointment = null;
          kiosk.visit.appointment = true;
          waiting.render();
        }
        break;
      case 'error':
        onError(message);
        break;
      default:
        break;
    }
  }

  /** @param {{code: string}} message */
  function onError(message) {
    const flow = kiosk.visit.flow;
    if (flow === 'asking') {
      check.refused(message);
    } else if (flow === 'rating' && rating.rated() && ['conflict', 'not_found', 'invalid'].includes(message.code)) {
      // The rating was refused (already rated, say): thank them all the same.
      rating.thanks();
    }
    // Anything else (a cancel that came after the lawyer answered, a late
    // answer to a room that closed) changes nothing on screen.
  }

  /** @param {Queued & {request: string}} message a `consult.queued` */
  function onQueued(message) {
    const flow = kiosk.visit.flow;
    if (flow === 'rating' && (!rating.rated() || referral.open())) {
      // The next resident (an appointment) waits; this one may still rate,
      // or answer a referral, or read its code.
      queuedAfterRating = message;
      return;
    }
    if (!['asking', 'waiting'].includes(flow)) {
      // A wait the kiosk did not ask for here: an appointment, or one the
      // server kept over a reload. A new resident: nothing of the last one.
      reset();
      if (appointment) {
        const visit = kiosk.visit;
        visit.topic = appointment.topic ?? null;
        visit.language = appointment.language ?? null;
        visit.appointment = true;
        appointment = null;
        if (visit.language && visit.language !== currentLanguage()) setLanguage(visit.language).catch(() => {});
      }
    }
    waiting.enter(message);
  }

  /** On the start screen: a booked consultation starts soon, at this time. */
  function renderSoon() {
    const start = soon?.start ? new Date(soon.start) : null;
    const showing = Boolean(start) && start.getTime() > Date.now() - 60_000;
    els.soon.hidden = !showing;
    els.soon.closest('.screen')?.classList.toggle('has-soon', showing);
    els.soonText.textContent = showing ? t('start.appointmentSoon', { time: timeText(start) }) : '';
  }

  // ------------------------------------------------------------ the resident

  /** From the start screen: topic first, then the camera check. */
  function begin() {
    reset();
    booking.chooseTopic((topic) => {
      kiosk.visit.topic = topic;
      kiosk.visit.language = currentLanguage();
      check.start();
    });
  }

  function details() {
    const { topic, language } = kiosk.visit;
    if (!topic || !language) return '';
    return t('booking.details', { topic: t(`topic.${topic}`), language: t(`language.${language}`) });
  }

  function finish() {
    reset();
    onFinished();
  }

  /** Forgets everything of the last resident (not the link). */
  function reset() {
    clearTimeout(resumeTimer);
    referral.reset();
    rating.reset();
    call.reset();
    check.stopDevices();
    kiosk.visit = freshVisit();
    check.reset();
    waiting.reset();
  }

  return {
    connect,
    disconnect,
    begin,
    reset,
    /** A resident is waiting or talking: the idle reset must leave the kiosk alone. */
    busy: () => ['asking', 'waiting', 'call'].includes(kiosk.visit.flow),
    /**
     * After a reset: a wait that began during the last resident's rating is
     * shown now. True when it took over the screen.
     */
    resume() {
      const queued = queuedAfterRating;
      queuedAfterRating = null;
      if (!queued) return false;
      onQueued(queued);
      return true;
    },
    render() {
      renderSoon();
      check.render();
      waiting.render();
      call.render();
      rating.render();
      referral.render();
    },
  };
}
