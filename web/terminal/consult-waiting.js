// Talking now at the kiosk, waiting for a lawyer (`consult.queued`): the
// place in the queue, the estimate, what was chosen, a note (an appointment,
// back in the queue), and the buttons to give up or to book a time instead
// (when nobody is on duty, say).

import { t, currentLanguage } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';

/**
 * Numbers in the resident's script (Tibetan digits in Tibetan).
 * @param {number | string} value
 */
export function digits(value) {
  const text = String(value);
  if (currentLanguage() !== 'bo') return text;
  return text.replace(/[0-9]/g, (d) => String.fromCharCode(0x0f20 + Number(d)));
}

/**
 * @param {import('/web/terminal/consult.js').Kiosk} kiosk
 */
export function setupWaiting(kiosk) {
  const els = {
    note: $('waiting-note'),
    place: $('waiting-place'),
    estimate: $('waiting-estimate'),
    estimateBox: $('waiting-estimate-box'),
    chosen: $('waiting-chosen'),
    nobody: $('nobody-on-duty'),
    cancel: $('cancel', HTMLButtonElement),
  };

  /**
   * The resident waits: this screen, with what the server says.
   * @param {import('/web/terminal/consult.js').Queued & {request: string}} message a `consult.queued`
   */
  function enter(message) {
    const visit = kiosk.visit;
    visit.flow = 'waiting';
    visit.request = message.request;
    visit.queued = message;
    kiosk.check.leave();
    render();
    kiosk.show('waiting');
  }

  function render() {
    const visit = kiosk.visit;
    const queued = visit.queued;
    if (!queued) return;
    els.place.textContent = digits(queued.position);
    const secs = queued.estimated_wait_secs;
    els.estimateBox.hidden = secs == null || queued.nobody_on_duty;
    els.estimate.textContent = secs == null ? '' : t('waiting.minutes', { minutes: digits(Math.max(1, Math.ceil(secs / 60))) });
    els.nobody.hidden = !queued.nobody_on_duty;
    els.chosen.textContent = kiosk.details();
    const note = visit.note ?? (visit.appointment ? 'waiting.appointment' : null);
    els.note.hidden = !note;
    els.note.textContent = note ? t(note) : '';
  }

  els.cancel.addEventListener('click', () => cancelRequest(null));
  $('waiting-book', HTMLButtonElement).addEventListener('click', () => cancelRequest('book'));

  /**
   * Cancels the waiting request; then the start screen, or booking.
   * @param {'book' | null} then
   */
  function cancelRequest(then) {
    const visit = kiosk.visit;
    if (visit.flow !== 'waiting' || !visit.request) return;
    visit.afterCancel = then;
    if (!kiosk.send({ type: 'consult.cancel', request: visit.request })) {
      // Offline: the server drops a request whose kiosk stays away.
      cancelled();
    }
  }

  /** The request is cancelled: the start screen, or booking about the same topic. */
  function cancelled() {
    const { topic, afterCancel } = kiosk.visit;
    kiosk.reset();
    if (afterCancel === 'book' && topic) kiosk.booking.beginWithTopic(topic);
    else kiosk.onFinished();
  }

  return {
    enter,
    render,
    cancelled,
    /** The call ended but the resident is back at the front of the queue; consult.queued follows. */
    requeued() {
      const visit = kiosk.visit;
      visit.flow = 'waiting';
      visit.note = 'waiting.requeued';
      visit.queued = visit.queued ?? { position: 1, nobody_on_duty: false };
      render();
      kiosk.show('waiting');
    },
    /** Forgets the last resident's wait. */
    reset() {
      for (const el of [els.place, els.estimate, els.chosen, els.note]) el.textContent = '';
    },
  };
}
