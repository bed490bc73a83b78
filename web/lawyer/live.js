// The live panel of the lawyer and interpreter console (PROTOCOL.md, "The
// live path"): one kept connection to /ws, whose messages go to the panel's
// parts:
// - live-duty.js: the connection, the person's duty (`presence`) and its buttons, notices;
// - live-offer.js: an incoming call (`consult.offer`) that rings until it is answered or withdrawn;
// - live-call.js: the call itself (`consult.started`, media through the relay);
// - live-record.js: the consultation's record, written during the call and in the wrap-up;
// - live-follow-up.js: under the record, a follow-up appointment with the same resident;
// - live-referrals.js: under the record, its referrals to legal aid or mediation (`referral.answered`);
// - live-past.js: the list of past consultations.

import { keepLive } from '/web/shared/live.js';
import { formatTime, onLanguageChange } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { Ringer } from '/web/lawyer/ringer.js';
import { setupDuty } from '/web/lawyer/live-duty.js';
import { setupOffer } from '/web/lawyer/live-offer.js';
import { setupCall } from '/web/lawyer/live-call.js';
import { setupRecord } from '/web/lawyer/live-record.js';
import { setupFollowUp } from '/web/lawyer/live-follow-up.js';
import { setupReferrals } from '/web/lawyer/live-referrals.js';
import { setupPast } from '/web/lawyer/live-past.js';

/**
 * What the parts of the live panel share. Each part is set on it once made,
 * and uses the others only when something happens.
 * @typedef {object} Panel
 * @property {import('/web/shared/api.js').Client} client
 * @property {(message: object) => boolean} send on the kept connection; false when it is down
 * @property {() => {id: string} | null} me the person logged in, null when nobody is
 * @property {() => void} render every part again
 * @property {() => void} focusHeading focus to the panel's heading (after what had it went away)
 * @property {() => void} appointmentBooked an appointment of the person's was booked here (their list is read again)
 * @property {Ringer} ringer
 * @property {ReturnType<typeof setupDuty>} duty
 * @property {ReturnType<typeof setupOffer>} offer
 * @property {ReturnType<typeof setupCall>} call
 * @property {ReturnType<typeof setupRecord>} record
 * @property {ReturnType<typeof setupFollowUp>} followUp
 * @property {ReturnType<typeof setupReferrals>} referrals
 * @property {ReturnType<typeof setupPast>} past
 */

/**
 * @param {import('/web/shared/api.js').Client} client
 * @param {object} options
 * @param {() => void} options.onRevoked the server revoked the session (the app shows the login)
 * @param {() => void} options.onAppointmentBooked an appointment was booked here (a follow-up)
 */
export function setupLive(client, { onRevoked, onAppointmentBooked }) {
  const work = $('live-work');
  const recordColumn = $('record-column');
  /** @type {{id: string} | null} */
  let me = null;
  /** @type {ReturnType<typeof keepLive> | null} */
  let link = null;
  /** @type {ReturnType<typeof setInterval> | null} */
  let ticker = null;

  const panel = /** @type {Panel} */ ({
    client,
    send: (message) => (link ? link.send(message) : false),
    me: () => me,
    render,
    focusHeading: () => $('live-heading').focus(),
    appointmentBooked: () => onAppointmentBooked(),
    ringer: new Ringer(),
  });
  panel.duty = setupDuty(panel);
  panel.offer = setupOffer(panel);
  panel.call = setupCall(panel);
  panel.record = setupRecord(panel);
  panel.followUp = setupFollowUp(panel);
  panel.referrals = setupReferrals(panel);
  panel.past = setupPast(panel);
  const { duty, offer, call, record, followUp, referrals, past } = panel;

  function connect() {
    duty.setConnection('connecting');
    const handle = keepLive({
      client,
      onMessage: (message) => {
        if (link === handle) receive(message);
      },
      onUp: () => {
        if (link !== handle) return;
        duty.setConnection('up');
        render();
        // An answer to a referral may have come while the connection was down.
        referrals.refresh();
      },
      onDown: () => {
        if (link !== handle) return;
        duty.setConnection('down');
        // The server rings again after a reconnection if the offer still stands.
        offer.clear();
        call.linkLost();
        render();
      },
      onRevoked: () => {
        if (link !== handle) return;
        link = null;
        onRevoked();
      },
    });
    link = handle;
  }

  /** @param {any} message */
  function receive(message) {
    // Media first: every rtc.* of the call's room belongs to the call screen.
    if (call.handle(message)) return;
    switch (message.type) {
      case 'presence':
        onPresence(message);
        break;
      case 'consult.offer':
        offer.ring(message);
        break;
      case 'consult.offer_withdrawn':
        offer.withdrawn(message);
        break;
      case 'consult.accepted':
        offer.accepted(message);
        break;
      case 'consult.started':
        call.start(message);
        break;
      case 'consult.peer':
        call.peer(message);
        break;
      case 'consult.ended':
        call.ended(message);
        break;
      case 'referral.answered':
        referrals.answered(message);
        break;
      case 'appointment_reminder':
      case 'appointment_started':
        duty.setNotice({ key: message.type === 'appointment_started' ? 'notice.appointmentStarted' : 'notice.appointmentSoon',
          vars: { time: formatTime(Date.parse(message.appointment?.start) / 1000) }, kind: 'info' });
        break;
      case 'error':
        if (offer.refused(message)) break;
        if (message.code === 'revoked') break; // keepLive stops and tells the app.
        console.warn('[live]', message.code, message.message);
        break;
      default:
        break;
    }
  }

  /** @param {{state: string, consultation?: string, wrap_up_until?: number}} message */
  function onPresence(message) {
    duty.presence(message);
    if (message.state !== 'ringing') offer.clear();
    if (message.state !== 'in_consultation' && call.current()) {
      // The call ended while this page was away (no consult.ended reached it).
      call.end();
      past.load();
    }
    record.presence(message);
    render();
  }

  function render() {
    duty.render();
    offer.render();
    call.render();
    record.render();
    followUp.render();
    referrals.render();
    const inCall = Boolean(call.current());
    const writing = Boolean(record.openId());
    recordColumn.hidden = !writing;
    work.dataset.mode = inCall ? (writing ? 'call-record' : 'call') : writing ? 'record' : 'idle';
    runTicker();
  }

  /** One clock for the ring's countdown, the call's length and the wrap-up's countdown. */
  function runTicker() {
    const needed = offer.ringing() || Boolean(call.current()) || record.counting();
    if (needed && !ticker) {
      ticker = setInterval(() => {
        offer.tick();
        call.tick();
        record.tick();
      }, 1000);
    } else if (!needed && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
  }

  // Browsers let sound start only after a gesture: any click or key on the page will do.
  const unlock = () => {
    if (me) panel.ringer.unlock();
  };
  document.addEventListener('pointerdown', unlock, { capture: true });
  document.addEventListener('keydown', unlock, { capture: true });

  onLanguageChange(() => {
    if (!me) return;
    render();
    past.render();
    offer.retitle();
  });

  return {
    /**
     * Logged in: connect, and show what the server says.
     * @param {{id: string}} account
     */
    start(account) {
      if (link) this.stop();
      me = account;
      duty.reset();
      offer.reset();
      record.reset();
      followUp.reset();
      referrals.reset();
      past.reset();
      render();
      past.render();
      connect();
      past.load();
    },
    /**
     * Logged out or expired: disconnect and close everything.
     * @param {{forget?: boolean}} [options] forget: also the drafts and the duty the person wanted
     */
    stop({ forget = false } = {}) {
      link?.stop();
      link = null;
      offer.reset();
      if (call.current()) call.end();
      me = null;
      duty.reset({ forget });
      record.reset({ forget });
      followUp.reset();
      referrals.reset();
      if (ticker) clearInterval(ticker);
      ticker = null;
      render();
      past.reset();
    },
  };
}
