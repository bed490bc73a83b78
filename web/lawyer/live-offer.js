// An incoming call in the lawyer's console (`consult.offer`): who waits, for
// how long, and the seconds left to answer; it rings until it is answered or
// withdrawn. In a three-way call the one who accepts first waits for the other.

import { t } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { TitleFlash } from '/web/lawyer/ringer.js';
import { NETWORK_ERROR } from '/web/lawyer/live-duty.js';
import { ROLE_TEXT, clock, languageText, topicText } from '/web/lawyer/live-text.js';

/**
 * The offer ringing now: the server's message, with its deadline and when the
 * resident started waiting (ms).
 * @typedef {{request: string, role: string, language: string, topic: string, region_id: string,
 *   region_name?: string, three_way?: boolean, deadline: number, since: number}} Offer
 */

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 */
export function setupOffer(panel) {
  const els = {
    incoming: $('incoming-call'),
    heading: $('incoming-heading'),
    language: $('incoming-language'),
    topic: $('incoming-topic'),
    region: $('incoming-region'),
    waited: $('incoming-waited'),
    role: $('incoming-role'),
    threeWay: $('incoming-three-way'),
    countdown: $('incoming-countdown'),
    soundOff: $('incoming-sound-off'),
    accept: $('accept-call', HTMLButtonElement),
    decline: $('decline-call', HTMLButtonElement),
  };
  const titleFlash = new TitleFlash();

  const fresh = () => ({
    /** @type {Offer | null} */
    offer: null,
    /** @type {string | null} the request we accepted, until the consultation starts or the server says no */
    accepting: null,
    /** @type {string | null} the id our consult.accept carried, so an error is linked to its click */
    acceptId: null,
    /** @type {string | null} a three-way we accepted: the role whose answer we wait for */
    waitingFor: null,
  });
  let state = fresh();

  /** @param {any} message a `consult.offer` */
  function ring(message) {
    const now = Date.now();
    state.offer = {
      ...message,
      deadline: now + (message.expires_in_secs ?? 0) * 1000,
      since: now - (message.waited_secs ?? 0) * 1000,
    };
    state.accepting = null;
    panel.duty.setNotice(null);
    panel.ringer.start();
    titleFlash.start();
    panel.render();
    els.accept.focus();
  }

  /** The offer is gone (answered, withdrawn, the connection dropped): stop ringing. */
  function clear() {
    if (!state.offer) return;
    state.offer = null;
    panel.ringer.stop();
    titleFlash.stop();
    const focusWasInside = els.incoming.contains(document.activeElement);
    render();
    if (focusWasInside) panel.focusHeading();
  }

  /** Our answer is void: nothing accepted, nothing awaited, no offer. */
  function drop() {
    state.accepting = null;
    state.waitingFor = null;
    clear();
  }

  els.accept.addEventListener('click', () => {
    panel.ringer.unlock();
    const offer = state.offer;
    if (!offer) return;
    state.accepting = offer.request;
    state.acceptId = `accept-${Date.now().toString(36)}`;
    els.accept.disabled = true;
    els.decline.disabled = true;
    if (!panel.send({ type: 'consult.accept', request: offer.request, id: state.acceptId })) {
      state.accepting = null;
      panel.duty.setNotice(NETWORK_ERROR);
      render();
    }
  });

  els.decline.addEventListener('click', () => {
    const offer = state.offer;
    if (!offer) return;
    panel.send({ type: 'consult.decline', request: offer.request });
    drop();
    panel.render();
  });

  function render() {
    const o = state.offer;
    els.incoming.hidden = !o;
    if (!o) {
      els.accept.disabled = false;
      els.decline.disabled = false;
      return;
    }
    els.heading.textContent = t(o.role === 'interpreter' ? 'incoming.headingInterpreter' : 'incoming.heading');
    els.language.textContent = languageText(o.language);
    els.topic.textContent = topicText(o.topic);
    els.region.textContent = o.region_name || o.region_id;
    els.role.textContent = t(ROLE_TEXT[o.role] ?? 'role.lawyer');
    els.threeWay.hidden = !o.three_way;
    els.threeWay.textContent = o.three_way
      ? t(o.role === 'interpreter' ? 'incoming.threeWayInterpreter' : 'incoming.threeWay')
      : '';
    els.soundOff.hidden = panel.ringer.audible;
    const up = panel.duty.isUp();
    const busy = state.accepting === o.request || !up;
    els.accept.disabled = busy;
    // Accepted, waiting for the other of a three-way: the button says so.
    els.accept.dataset.i18n = state.waitingFor && state.accepting === o.request ? 'incoming.accepted' : 'incoming.accept';
    els.accept.textContent = t(els.accept.dataset.i18n);
    // A three-way we accepted may still be given up while the other is awaited.
    els.decline.disabled = busy && !(state.waitingFor && up);
    tick();
  }

  function tick() {
    const o = state.offer;
    if (!o) return;
    const now = Date.now();
    els.waited.textContent = clock((now - o.since) / 1000);
    // A three-way starts when both have answered: the first waits for the other.
    const seconds = Math.max(0, Math.ceil((o.deadline - now) / 1000));
    els.countdown.textContent = state.accepting === o.request && state.waitingFor
      ? t(state.waitingFor === 'lawyer' ? 'incoming.waitingLawyer' : 'incoming.waitingInterpreter', { seconds })
      : t('incoming.countdown', { seconds });
    els.soundOff.hidden = panel.ringer.audible;
  }

  return {
    ring,
    clear,
    render,
    tick,
    /** Whether a call rings (or waits for the other of a three-way). */
    ringing: () => Boolean(state.offer),
    /** @param {{request: string}} message a `consult.offer_withdrawn` */
    withdrawn(message) {
      if (state.offer?.request !== message.request) return;
      // Timed out, cancelled, or (three-way) the other person declined: also after our own accept.
      drop();
      panel.duty.setNotice({ key: 'notice.withdrawn', kind: 'info' });
      panel.render();
    },
    /** @param {{request: string, waiting_for?: string}} message a `consult.accepted` */
    accepted(message) {
      if (state.offer?.request !== message.request || state.accepting !== message.request) return;
      state.waitingFor = message.waiting_for ?? null;
      if (state.waitingFor) {
        panel.ringer.stop();
        titleFlash.stop();
      }
      render();
    },
    /**
     * A consultation started: whether this tab answered it. The offer is over either way.
     * @param {string} request
     */
    started(request) {
      clear();
      const answeredHere = state.accepting === request;
      state.accepting = null;
      state.waitingFor = null;
      return answeredHere;
    },
    /**
     * An error from the server; true when it was the answer to our accept (the offer ended first).
     * @param {{code: string, id?: string}} message
     */
    refused(message) {
      if (message.code !== 'not_found' || !state.accepting || (message.id && message.id !== state.acceptId)) return false;
      drop();
      panel.duty.setNotice({ key: 'notice.gone', kind: 'error' });
      panel.render();
      return true;
    },
    /** The title again, in the new language, while it flashes. */
    retitle() {
      if (titleFlash.timer) document.title = titleFlash.on ? t('live.ringTitle') : t('page.title');
    },
    /** Logged out: no offer, no ring. */
    reset() {
      clear();
      panel.ringer.stop();
      titleFlash.stop();
      state = fresh();
    },
  };
}
