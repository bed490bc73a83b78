// The record of a consultation in the lawyer's console: summary and outcome,
// written during the call and in the wrap-up after it (with its countdown),
// saved with PUT /api/consultations/{id}/record. Drafts are kept per tab and
// consultation until they are saved. An outcome that refers (legal aid,
// mediation) opens the referral block on that service's office
// (live-referrals.js), or says beside it that the region has none.

import { seg } from '/web/shared/api.js';
import { t, formatTime, showError, clearError } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { clock, languageText, topicText } from '/web/lawyer/live-text.js';
import { readSession, writeSession, forgetSessionKeys } from '/web/lawyer/tab-storage.js';

const DRAFT_PREFIX = 'cloudlaw.lawyer.draft.';
const OUTCOMES = ['advice_given', 'referred_legal_aid', 'referred_mediation', 'follow_up_appointment'];
/** The outcome of a referral to each service that has one (the others are "advice given", or what the lawyer says). */
export const REFERRAL_OUTCOMES = { legal_aid: 'referred_legal_aid', mediation: 'referred_mediation' };
/** Beside the outcome: the region has no office of its service (named in full, so that the string tables can be checked). */
const NO_OFFICE_TEXT = { legal_aid: 'record.noOffice.legal_aid', mediation: 'record.noOffice.mediation' };

/**
 * The service an outcome refers to, or null.
 * @param {string} outcome
 */
const referredService = (outcome) => Object.keys(REFERRAL_OUTCOMES).find((s) => REFERRAL_OUTCOMES[s] === outcome) ?? null;

/** @param {string} id */
const draftKey = (id) => `${DRAFT_PREFIX}${id}`;

/**
 * The consultation whose record the form writes.
 * @typedef {{id: string, language: string | null, topic: string | null, startedAt: number | null, wrapUpUntil: number | null}} OpenRecord
 */

/**
 * The form's status line.
 * @typedef {{kind: 'ok', key: string, error?: undefined} | {kind: 'error', error: unknown, key?: undefined}} RecordStatus
 */

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 */
export function setupRecord(panel) {
  const els = {
    form: $('record-form', HTMLFormElement),
    context: $('record-context'),
    wrapUp: $('wrap-up-countdown'),
    summary: $('record-summary', HTMLTextAreaElement),
    outcome: $('record-outcome', HTMLSelectElement),
    noOffice: $('record-no-office'),
    status: $('record-status'),
    save: $('record-save', HTMLButtonElement),
  };

  /** @type {OpenRecord | null} */
  let record = null;
  /** @type {RecordStatus | null} */
  let status = null;
  /** @type {string | null} the service of the chosen outcome when the region has no office of it */
  let noOffice = null;

  /** @param {RecordStatus | null} next */
  function setStatus(next) {
    status = next;
    renderStatus();
  }

  function renderNoOffice() {
    els.noOffice.hidden = !noOffice;
    els.noOffice.textContent = noOffice ? t(NO_OFFICE_TEXT[noOffice]) : '';
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

  /**
   * Opens the form for a consultation, with its draft when there is one.
   * @param {{id: string, language?: string | null, topic?: string | null, startedAt?: number | null}} opened
   */
  function open(opened) {
    record = { language: null, topic: null, startedAt: null, wrapUpUntil: null, ...opened };
    setStatus(null);
    noOffice = null;
    renderNoOffice();
    let draft = null;
    try {
      draft = JSON.parse(readSession(draftKey(opened.id)) ?? 'null');
    } catch {
      draft = null;
    }
    els.summary.value = draft?.summary ?? '';
    els.outcome.value = OUTCOMES.includes(draft?.outcome) ? draft.outcome : '';
    if (!opened.language || !opened.topic) fill(opened.id);
  }

  /**
   * What a record opened from a presence or the list lacks (language, topic, start, and what was saved).
   * @param {string} id
   */
  async function fill(id) {
    try {
      const c = await panel.client.get(`/api/consultations/${seg(id)}`);
      if (record?.id !== id) return;
      Object.assign(record, { language: c.language, topic: c.topic, startedAt: c.started_at });
      if (!readSession(draftKey(id))) {
        els.summary.value = c.summary ?? '';
        els.outcome.value = OUTCOMES.includes(c.outcome) ? c.outcome : '';
      }
      render();
    } catch {
      // The form works without them.
    }
  }

  function keepDraft() {
    if (!record) return;
    writeSession(draftKey(record.id), JSON.stringify({ summary: els.summary.value, outcome: els.outcome.value }));
    if (status?.kind === 'ok') setStatus(null);
  }

  els.summary.addEventListener('input', keepDraft);
  els.outcome.addEventListener('change', () => {
    keepDraft();
    noOffice = null;
    renderNoOffice();
    // A referral as the outcome: the referral block, on that service's office, for its proposal.
    const service = referredService(els.outcome.value);
    if (record && service) panel.referrals.referTo(record.id, service);
  });

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const saving = record;
    if (!saving) return;
    if (!els.outcome.value) {
      setStatus({ kind: 'error', error: { code: 'no_outcome', serverMessage: '' } });
      els.outcome.focus();
      return;
    }
    els.save.disabled = true;
    els.form.setAttribute('aria-busy', 'true');
    try {
      await panel.client.request('PUT', `/api/consultations/${seg(saving.id)}/record`, {
        summary: els.summary.value,
        outcome: els.outcome.value,
      });
      writeSession(draftKey(saving.id), null);
      if (panel.call.current()?.consultation === saving.id) {
        // Saved during the call: the form stays for more.
        setStatus({ kind: 'ok', key: 'record.saved' });
      } else {
        record = null;
        panel.duty.setNotice({ key: 'notice.recordSaved', kind: 'ok' });
        panel.render();
        panel.focusHeading();
      }
      panel.past.load();
    } catch (error) {
      setStatus({ kind: 'error', error });
    } finally {
      els.save.disabled = false;
      els.form.removeAttribute('aria-busy');
    }
  });

  function render() {
    const r = record;
    // Only the consultation's lawyer writes its record; an interpreter never gets the form.
    els.form.hidden = !r;
    if (!r) return;
    const parts = [];
    if (r.language) parts.push(languageText(r.language));
    if (r.topic) parts.push(topicText(r.topic));
    if (r.startedAt) parts.push(formatTime(r.startedAt));
    els.context.textContent = parts.join(' · ');
    renderNoOffice();
    renderStatus();
    tick();
  }

  function tick() {
    const r = record;
    const inWrapUp = r && !panel.call.current() && r.wrapUpUntil;
    els.wrapUp.hidden = !inWrapUp;
    if (!inWrapUp) return;
    const left = r.wrapUpUntil - Date.now() / 1000;
    els.wrapUp.textContent = left > 0 ? t('record.wrapUp', { time: clock(left) }) : t('record.wrapUpOver');
  }

  return {
    open,
    render,
    tick,
    /** The consultation whose record is open, or null. */
    openId: () => record?.id ?? null,
    /** Whether the wrap-up countdown runs. */
    counting: () => Boolean(record && record.wrapUpUntil),
    focus: () => els.summary.focus(),
    /**
     * The referral block found no office of the service the chosen outcome refers to: said beside the outcome.
     * @param {string} id the consultation
     * @param {string} service
     */
    noOfficeFor(id, service) {
      if (record?.id !== id || referredService(els.outcome.value) !== service) return;
      noOffice = service;
      renderNoOffice();
    },
    /**
     * Sets the outcome when none is chosen yet (a choice of the lawyer's stays); kept as the draft.
     * True when it was set.
     * @param {string} outcome
     */
    suggestOutcome(outcome) {
      if (!record || els.outcome.value || !OUTCOMES.includes(outcome)) return false;
      els.outcome.value = outcome;
      keepDraft();
      return true;
    },
    /**
     * When the consultation started, learnt later (seconds).
     * @param {string} id
     * @param {number} startedAt
     */
    learnStart(id, startedAt) {
      if (record?.id === id) record.startedAt = startedAt;
    },
    /**
     * The call ended: its record, when open, counts down the wrap-up. True when it was open.
     * @param {string} id
     * @param {number | null} until unix seconds
     */
    wrapUp(id, until) {
      if (record?.id !== id) return false;
      record.wrapUpUntil = until;
      return true;
    },
    /**
     * A `presence`: the wrap-up of a consultation opens its record (after a reload too).
     * @param {{state: string, consultation?: string, wrap_up_until?: number}} message
     */
    presence(message) {
      if (message.state === 'wrap_up' && message.consultation && record?.id !== message.consultation) {
        open({ id: message.consultation });
      }
      if (record && record.id === message.consultation) {
        record.wrapUpUntil = message.state === 'wrap_up' ? message.wrap_up_until ?? null : record.wrapUpUntil;
      }
    },
    /** @param {{forget?: boolean}} [options] forget: also every draft of this tab */
    reset({ forget = false } = {}) {
      record = null;
      status = null;
      noOffice = null;
      renderNoOffice();
      if (forget) forgetSessionKeys(DRAFT_PREFIX);
      els.summary.value = '';
      els.outcome.value = '';
    },
  };
}
