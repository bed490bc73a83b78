// A follow-up appointment, in the lawyer's console under the record: the same
// resident (the same kiosk, or by phone for a hotline caller whose number was
// kept), language and topic, with this lawyer, at a date and time the lawyer
// picks (POST /api/consultations/{id}/follow-up). The app does not know the
// server's booking rules (slot grid, notice, horizon), so it asks and says in
// its own words why a time was refused, the server's message below. What was
// booked stays listed for the consultation (kept per tab, forgotten with the
// drafts at logout); the lawyer's appointments are read again, and an empty
// outcome of the record becomes "follow-up appointment".

import { seg } from '/web/shared/api.js';
import { t, showError, clearError, currentLanguage } from '/web/shared/i18n.js';
import { $, h } from '/web/shared/dom.js';
import { today } from '/web/shared/dates.js';
import { formatInstant } from '/web/lawyer/appointments.js';
import { readSession, writeSession } from '/web/lawyer/tab-storage.js';

/** Under the record's draft prefix, so that logging out forgets it with them. */
const KEPT_PREFIX = 'cloudlaw.lawyer.draft.followup.';

/**
 * The server's refusals that get words of their own here: `error.follow_up_<code>`.
 * (tests/browser/i18n.test.mjs lists these keys.)
 */
const EXPLAINED = [
  'in_the_past', 'too_soon', 'too_far', 'off_grid', 'invalid_field',
  'slot_taken', 'terminal_busy', 'not_available', 'no_number', 'callback_off', 'not_found',
];

/**
 * A follow-up booked from this page.
 * @typedef {{id: string, start: string, channel: string, phone: string | null}} Booked
 */

/**
 * The block's status line.
 * @typedef {{kind: 'ok', key: string, error?: undefined} | {kind: 'error', error: unknown, key?: undefined}} FollowUpStatus
 */

/**
 * What a refusal means for a follow-up, in this block's words; the server's message stays as the detail.
 * @param {any} error
 */
function explain(error) {
  const code = error?.code;
  return typeof code === 'string' && EXPLAINED.includes(code)
    ? { ...error, code: `follow_up_${code}`, serverMessage: error.serverMessage ?? '' }
    : error;
}

/**
 * A date ("YYYY-MM-DD") and a time ("HH:MM") in the browser's time zone, as RFC 3339; null when either is not one.
 * @param {string} date
 * @param {string} time
 */
function instantOf(date, time) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const m = /^(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?$/.exec(time);
  if (!d || !m) return null;
  const at = new Date(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(m[1]), Number(m[2]));
  return Number.isNaN(at.getTime()) ? null : at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The zone the browser shows and reads times in, e.g. "Asia/Shanghai". */
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 */
export function setupFollowUp(panel) {
  const els = {
    section: $('follow-up'),
    booked: $('follow-up-booked'),
    form: $('follow-up-form', HTMLFormElement),
    zone: $('follow-up-zone'),
    date: $('follow-up-date', HTMLInputElement),
    time: $('follow-up-time', HTMLInputElement),
    status: $('follow-up-status'),
    submit: $('follow-up-submit', HTMLButtonElement),
  };

  /** @type {string | null} the consultation shown */
  let consultation = null;
  /** @type {Booked[]} what was booked for it from this page */
  let booked = [];
  /** @type {FollowUpStatus | null} */
  let status = null;
  /** Whether a booking is on its way. */
  let busy = false;
  /** What the list was last drawn from: the same again is not drawn (its live region stays quiet). */
  let drawn = '';

  /** @param {string} id */
  const keptKey = (id) => `${KEPT_PREFIX}${id}`;

  /** @param {string} id */
  function readKept(id) {
    try {
      const list = JSON.parse(readSession(keptKey(id)) ?? '[]');
      return Array.isArray(list) ? list.filter((b) => b && typeof b.start === 'string') : [];
    } catch {
      return [];
    }
  }

  /** @param {FollowUpStatus | null} next */
  function setStatus(next) {
    status = next;
    renderStatus();
  }

  function renderStatus() {
    els.status.dataset.kind = status ? status.kind : '';
    if (status?.kind === 'error') {
      showError(els.status, status.error);
    } else {
      clearError(els.status);
      els.status.hidden = false;
      if (status) els.status.textContent = t(status.key);
    }
  }

  /** Follows the record: the block is for the consultation whose record is open. */
  function follow() {
    const id = panel.record.openId();
    if (id === consultation) return;
    consultation = id;
    booked = id ? readKept(id) : [];
    status = null;
    els.date.value = '';
    els.time.value = '';
  }

  /** @param {Booked} b */
  function bookedLine(b) {
    const time = formatInstant(b.start, currentLanguage());
    const text = b.channel === 'phone'
      ? t('followUp.bookedPhone', { time, number: b.phone ?? '' })
      : t('followUp.bookedKiosk', { time });
    return h('li', { className: 'follow-up-item', dataset: { testid: `follow-up-booked-${b.id}`, channel: b.channel } },
      h('span', { className: 'follow-up-sign', attrs: { 'aria-hidden': 'true' }, textContent: '✓' }),
      h('span', { textContent: text }));
  }

  function render() {
    follow();
    els.section.hidden = !consultation;
    if (!consultation) return;
    els.zone.textContent = t('followUp.zone', { zone: browserZone() });
    els.date.min = today();
    const key = JSON.stringify([currentLanguage(), consultation, booked]);
    if (key !== drawn) {
      drawn = key;
      els.booked.replaceChildren(...[...booked].sort((a, b) => a.start.localeCompare(b.start)).map(bookedLine));
    }
    els.booked.hidden = booked.length === 0;
    els.submit.disabled = busy;
    renderStatus();
  }

  const edited = () => {
    if (status) setStatus(null);
  };
  els.date.addEventListener('input', edited);
  els.time.addEventListener('input', edited);

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = consultation;
    if (!id || busy) return;
    const start = instantOf(els.date.value, els.time.value);
    if (!start) {
      setStatus({ kind: 'error', error: { code: 'follow_up_no_time', serverMessage: '' } });
      (els.date.value ? els.time : els.date).focus();
      return;
    }
    busy = true;
    els.submit.disabled = true;
    els.form.setAttribute('aria-busy', 'true');
    try {
      /** @type {Booked} */
      const made = await panel.client.post(`/api/consultations/${seg(id)}/follow-up`, { start });
      panel.appointmentBooked();
      if (consultation !== id) return;
      booked = [...booked.filter((b) => b.id !== made.id),
        { id: made.id, start: made.start, channel: made.channel, phone: made.phone ?? null }];
      writeSession(keptKey(id), JSON.stringify(booked));
      els.time.value = '';
      // An outcome the lawyer chose stays; an empty one says what was done.
      const outcomeSet = panel.record.openId() === id && panel.record.suggestOutcome('follow_up_appointment');
      status = { kind: 'ok', key: outcomeSet ? 'followUp.doneOutcome' : 'followUp.done' };
    } catch (error) {
      if (consultation === id) status = { kind: 'error', error: explain(error) };
    } finally {
      busy = false;
      els.form.removeAttribute('aria-busy');
      render();
    }
  });

  return {
    render,
    /** Logged out: nothing stays (what was kept goes with the drafts). */
    reset() {
      consultation = null;
      booked = [];
      status = null;
      drawn = '';
      els.date.value = '';
      els.time.value = '';
      els.booked.replaceChildren();
      clearError(els.status);
      els.section.hidden = true;
    },
  };
}
