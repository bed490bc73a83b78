// The lawyer's past consultations (GET /api/consultations): when, language,
// topic, length, role, outcome, whether the record is written (with a button
// to write it), the rating, and for a hotline caller a button to call back.

import { seg } from '/web/shared/api.js';
import { t, formatTime, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus } from '/web/shared/dom.js';
import { ROLE_TEXT, clock, languageText, topicText } from '/web/lawyer/live-text.js';

const OUTCOME_TEXT = {
  advice_given: 'outcome.advice_given',
  referred_legal_aid: 'outcome.referred_legal_aid',
  referred_mediation: 'outcome.referred_mediation',
  follow_up_appointment: 'outcome.follow_up_appointment',
};

/**
 * A consultation as the list has it.
 * @typedef {{id: string, lawyer_id: string, language: string, topic: string, status: string,
 *   started_at: number, ended_at?: number | null, outcome?: string | null, rating?: number | null,
 *   callback?: boolean}} Consultation
 */

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 */
export function setupPast(panel) {
  const els = {
    body: $('past-body'),
    status: $('past-status'),
    refresh: $('past-refresh', HTMLButtonElement),
  };

  /** @type {Consultation[]} */
  let past = [];
  /** @type {unknown} */
  let error = null;

  async function load() {
    if (!panel.me()) return;
    try {
      const list = await panel.client.get('/api/consultations');
      if (!panel.me()) return;
      past = Array.isArray(list) ? list : [];
      error = null;
    } catch (failure) {
      error = failure;
    }
    render();
  }

  els.refresh.addEventListener('click', async () => {
    els.refresh.disabled = true;
    await load();
    els.refresh.disabled = false;
  });

  /** @param {Consultation} c */
  function row(c) {
    const mine = c.lawyer_id === panel.me()?.id;
    const role = mine ? 'lawyer' : 'interpreter';
    const written = Boolean(c.outcome);
    const duration = c.ended_at ? clock(c.ended_at - c.started_at) : t('past.inProgress');
    const when = formatTime(c.started_at);
    let recordCell;
    if (mine && !written && c.status !== 'active' && panel.record.openId() !== c.id && !panel.call.current()) {
      recordCell = h('button', {
        type: 'button', dataset: { testid: `past-write-${c.id}` }, textContent: t('past.write'),
        attrs: { 'aria-label': t('past.writeLabel', { time: when }) },
        onclick: () => {
          panel.record.open({ id: c.id, language: c.language, topic: c.topic, startedAt: c.started_at });
          panel.render();
          panel.record.focus();
        },
      });
    } else {
      recordCell = h('span', { className: `badge ${written ? 'ok' : 'wait'}`, textContent: t(written ? 'past.record.yes' : 'past.record.no') });
    }
    const outcome = c.outcome ? t(OUTCOME_TEXT[c.outcome] ?? 'list.none') : t('list.none');
    return h('tr', { dataset: { testid: `past-${c.id}`, consultation: c.id } },
      h('th', { scope: 'row', className: 'nowrap', textContent: when }),
      h('td', { textContent: languageText(c.language) }),
      h('td', { textContent: topicText(c.topic) }),
      h('td', { className: 'nowrap clock', textContent: duration }),
      h('td', { textContent: t(ROLE_TEXT[role]) }),
      h('td', { dataset: { testid: `past-outcome-${c.id}` }, textContent: outcome }),
      h('td', { dataset: { testid: `past-record-${c.id}` } }, recordCell),
      h('td', { className: 'nowrap', textContent: c.rating ? t('past.rating', { n: c.rating }) : t('list.none') },
        mine && c.callback && c.status !== 'active' ? callBackButton(c, when) : ''));
  }

  /**
   * A hotline caller's consultation: the lawyer may call them back (they are rung when the caller answers).
   * @param {Consultation} c
   * @param {string} when
   */
  function callBackButton(c, when) {
    const button = h('button', {
      type: 'button', className: 'call-back', dataset: { testid: `past-callback-${c.id}` }, textContent: `☎ ${t('past.callBack')}`,
      attrs: { 'aria-label': t('past.callBackLabel', { time: when }) },
    });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const started = await panel.client.request('POST', `/api/consultations/${seg(c.id)}/callback`);
        error = null;
        els.status.dataset.kind = '';
        els.status.hidden = false;
        els.status.textContent = t('past.callingBack', { number: started.number });
      } catch (failure) {
        error = failure;
        render();
      }
      setTimeout(() => { button.disabled = false; }, 10_000);
    });
    return button;
  }

  function render() {
    keepingFocus(() => {
      const rows = past.map(row);
      if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 8, textContent: t('past.empty') })));
      els.body.replaceChildren(...rows);
    });
    if (error) {
      els.status.dataset.kind = 'error';
      showError(els.status, error);
    } else {
      els.status.dataset.kind = '';
      clearError(els.status);
      els.status.hidden = false;
    }
  }

  return {
    load,
    render,
    /** Logged out: nothing of the list stays. */
    reset() {
      past = [];
      error = null;
      els.body.replaceChildren();
      clearError(els.status);
    },
  };
}
