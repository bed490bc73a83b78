// Referrals of a consultation, in the lawyer's console under its record: the
// receiving offices of the consultation's region (legal aid, mediation, ...),
// the matter in the lawyer's words, and a proposal that the resident agrees to
// or refuses on the kiosk. GET and POST /api/consultations/{id}/referrals; the
// answer comes on the live connection (`referral.answered`). A refusal leaves
// nothing on the server, so this page remembers it for the consultation.
// The matter's draft is kept per tab and consultation until it is sent.
// One flow with the record (live-record.js): an outcome that refers to legal
// aid or mediation brings this block up on that service's office, its matter
// to write; a referral the resident agrees to becomes the outcome when none
// is chosen yet.

import { seg } from '/web/shared/api.js';
import { t, showError, clearError, currentLanguage } from '/web/shared/i18n.js';
import { $, h, keepingFocus } from '/web/shared/dom.js';
import { serviceText as sharedServiceText } from '/web/shared/codes.js';
import { readSession, writeSession } from '/web/lawyer/tab-storage.js';
import { REFERRAL_OUTCOMES } from '/web/lawyer/live-record.js';

/** Under the record's draft prefix, so that logging out forgets it with them. */
const DRAFT_PREFIX = 'cloudlaw.lawyer.draft.refer.';
const MATTER_MAX = 2000;

/** The texts of the server's codes, named in full so that the string tables can be checked. */
const STATE_TEXT = {
  proposed: 'refer.state.proposed',
  new: 'refer.state.new',
  accepted: 'refer.state.accepted',
  closed: 'refer.state.closed',
  declined: 'refer.state.declined',
};
/** The resident agreed, and the record's outcome became the referral's. */
const AGREED_OUTCOME_TEXT = { legal_aid: 'refer.agreedOutcome.legal_aid', mediation: 'refer.agreedOutcome.mediation' };
/** A sign before each state's words (the words say it; the sign only repeats it). */
const STATE_SIGN = { proposed: '⏳', new: '✓', accepted: '✓', closed: '✓', declined: '✕' };

/**
 * A receiving office of the consultation's region.
 * @typedef {{id: string, service: string, name: string, decision_days: number}} Office
 */

/**
 * A referral as the lawyer sees it.
 * @typedef {{id: string, code: string | null, office_id: string, office: string, service: string,
 *   status: string, outcome?: string | null, proposed_at?: number}} Referral
 */

/**
 * A proposal the resident refused (the server deleted it).
 * @typedef {{id: string, office_id: string, office: string, service: string}} Declined
 */

/**
 * The block's status line.
 * @typedef {{kind: 'ok', key: string, error?: undefined} | {kind: 'error', error: unknown, key?: undefined}} ReferStatus
 */

/**
 * A reference code as people read it: XXXX-XXXX.
 * @param {string | null | undefined} code
 */
export function formatCode(code) {
  const plain = String(code ?? '').replace(/[\s-]/g, '').toUpperCase();
  return plain.length === 8 ? `${plain.slice(0, 4)}-${plain.slice(4)}` : plain;
}

/**
 * The name of a service: `refer.service.<code>` for the services the apps know,
 * else an office's own code in plain letters (codes.js).
 * @param {string} service
 */
export const serviceText = (service) => sharedServiceText('refer.service', service);

/**
 * What a refusal of POST .../referrals means to the lawyer: too late, a hotline
 * caller (no kiosk to agree on), or this office has it already; the server's
 * own message stays as the detail.
 * @param {any} error
 */
function explain(error) {
  if (error?.code === 'too_late' || error?.code === 'no_kiosk') return error;
  if (error?.status === 409) return { ...error, code: 'referral_exists', serverMessage: error.serverMessage ?? '' };
  return error;
}

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 */
export function setupReferrals(panel) {
  const els = {
    section: $('refer'),
    list: $('refer-list'),
    form: $('refer-form', HTMLFormElement),
    office: $('refer-office', HTMLSelectElement),
    matter: $('refer-matter', HTMLTextAreaElement),
    count: $('refer-count'),
    status: $('refer-status'),
    submit: $('refer-submit', HTMLButtonElement),
    none: $('refer-none'),
  };

  /** @type {string | null} the consultation shown */
  let consultation = null;
  /** @type {Office[] | null} null while they load */
  let offices = null;
  /** @type {Referral[]} */
  let referrals = [];
  /** @type {ReferStatus | null} */
  let status = null;
  /** What the select and the list were last drawn from: the same again is not drawn (an open select stays open). */
  let drawn = '';
  /** Refusals per consultation, for as long as the page lives. @type {Map<string, Declined[]>} */
  const declined = new Map();
  /** Offices of the referrals proposed from this page, to name them in a notice. @type {Map<string, {office: string, consultation: string}>} */
  const proposed = new Map();
  /** The service the record's outcome refers to, offered once the offices are known. @type {string | null} */
  let wanted = null;

  /** @param {string} id */
  const draftKey = (id) => `${DRAFT_PREFIX}${id}`;

  /** @param {ReferStatus | null} next */
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

  /**
   * The offices and referrals of a consultation.
   * @param {string} id
   */
  async function load(id) {
    try {
      const answer = await panel.client.get(`/api/consultations/${seg(id)}/referrals`);
      if (consultation !== id) return;
      offices = Array.isArray(answer?.offices) ? answer.offices : [];
      referrals = Array.isArray(answer?.referrals) ? answer.referrals : [];
      for (const r of referrals) proposed.set(r.id, { office: r.office, consultation: id });
      if (status?.kind === 'error') setStatus(null);
    } catch (error) {
      if (consultation !== id) return;
      offices = offices ?? [];
      // Not known, so not said to be missing.
      wanted = null;
      setStatus({ kind: 'error', error });
    }
    render();
    offerWanted();
  }

  /**
   * The outcome the lawyer chose refers to a service: unless it was proposed or agreed
   * already, the block comes into view with the region's office of it chosen, its
   * matter to write, or the record says the region has none.
   */
  function offerWanted() {
    const service = wanted;
    const id = consultation;
    if (!service || !id || offices === null) return;
    wanted = null;
    if (referrals.some((r) => r.service === service)) return;
    const office = offices.find((o) => o.service === service && !taken(o.id));
    if (!office) {
      panel.record.noOfficeFor(id, service);
      return;
    }
    els.office.value = office.id;
    if (status?.kind === 'ok') setStatus(null);
    // In view, but the focus stays on the outcome: arrowing through a closed list
    // picks each option in turn, and a keyboard user must be able to go on past this one.
    els.form.scrollIntoView({ block: 'nearest' });
  }

  /** Follows the record: the block is for the consultation whose record is open. */
  function follow() {
    const id = panel.record.openId();
    if (id === consultation) return;
    consultation = id;
    offices = null;
    referrals = [];
    status = null;
    wanted = null;
    els.matter.value = id ? readSession(draftKey(id)) ?? '' : '';
    els.office.value = '';
    if (id) load(id);
  }

  /** @param {string} officeId */
  const taken = (officeId) => referrals.some((r) => r.office_id === officeId);

  function renderOffices() {
    const chosen = els.office.value;
    const list = offices ?? [];
    els.office.replaceChildren(
      h('option', { value: '', textContent: t(offices === null ? 'refer.loading' : 'refer.office.choose') }),
      ...list.map((office) => h('option', {
        value: office.id,
        disabled: taken(office.id),
        textContent: `${serviceText(office.service)} · ${office.name}${taken(office.id) ? ` (${t('refer.office.taken')})` : ''}`,
      })));
    els.office.value = list.some((o) => o.id === chosen && !taken(o.id)) ? chosen : '';
  }

  /**
   * One line of the list.
   * @param {{id: string, office: string, service: string, code?: string | null}} item
   * @param {string} state
   */
  function itemRow(item, state) {
    const code = item.code ? formatCode(item.code) : '';
    return h('li', { className: 'refer-item', dataset: { testid: `refer-item-${item.service}`, state, referral: item.id } },
      h('span', { className: 'refer-office' },
        h('strong', { textContent: serviceText(item.service) }), ` · ${item.office}`),
      h('span', { className: 'refer-state' },
        h('span', { className: 'refer-sign', attrs: { 'aria-hidden': 'true' }, textContent: STATE_SIGN[state] ?? '' }),
        t(STATE_TEXT[state] ?? 'refer.state.new')),
      code && h('span', { className: 'refer-code-line' },
        `${t('refer.code')} `,
        h('strong', { className: 'refer-code', translate: false, dataset: { testid: `refer-code-${item.service}` }, textContent: code })));
  }

  function renderList() {
    const refused = (declined.get(consultation ?? '') ?? []).filter((d) => !taken(d.office_id));
    const rows = [
      ...referrals.map((r) => itemRow(r, r.status)),
      ...refused.map((d) => itemRow(d, 'declined')),
    ];
    els.list.replaceChildren(...rows);
    els.list.hidden = rows.length === 0;
  }

  function renderCount() {
    els.count.textContent = t('refer.count', { n: els.matter.value.length, max: MATTER_MAX });
  }

  function render() {
    follow();
    els.section.hidden = !consultation;
    if (!consultation) return;
    const refused = declined.get(consultation) ?? [];
    const key = JSON.stringify([currentLanguage(), consultation, offices, referrals, refused]);
    if (key !== drawn) {
      drawn = key;
      keepingFocus(() => {
        renderOffices();
        renderList();
      });
    }
    const noOffice = offices !== null && offices.length === 0;
    els.none.hidden = !noOffice;
    els.form.hidden = noOffice;
    els.submit.disabled = offices === null;
    renderCount();
    renderStatus();
  }

  els.matter.addEventListener('input', () => {
    if (consultation) writeSession(draftKey(consultation), els.matter.value || null);
    renderCount();
    if (status?.kind === 'ok') setStatus(null);
  });
  els.office.addEventListener('change', () => {
    if (status?.kind === 'ok') setStatus(null);
  });

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = consultation;
    if (!id) return;
    const office = els.office.value;
    const matter = els.matter.value.trim();
    if (!office) {
      setStatus({ kind: 'error', error: { code: 'refer_no_office', serverMessage: '' } });
      els.office.focus();
      return;
    }
    if (!matter) {
      setStatus({ kind: 'error', error: { code: 'refer_no_matter', serverMessage: '' } });
      els.matter.focus();
      return;
    }
    els.submit.disabled = true;
    els.form.setAttribute('aria-busy', 'true');
    try {
      /** @type {Referral} */
      const created = await panel.client.post(`/api/consultations/${seg(id)}/referrals`, { office, matter });
      if (consultation !== id) return;
      referrals = [...referrals.filter((r) => r.id !== created.id), created];
      proposed.set(created.id, { office: created.office, consultation: id });
      writeSession(draftKey(id), null);
      els.matter.value = '';
      els.office.value = '';
      setStatus({ kind: 'ok', key: 'refer.sent' });
      render();
    } catch (error) {
      setStatus({ kind: 'error', error: explain(error) });
    } finally {
      els.submit.disabled = offices === null;
      els.form.removeAttribute('aria-busy');
    }
  });

  /**
   * The resident answered on the kiosk. The open consultation's list shows it;
   * a closed one's answer becomes the live panel's notice.
   * @param {{referral: string, consultation: string, agreed: boolean}} message
   */
  async function answered(message) {
    const known = proposed.get(message.referral);
    if (!message.agreed) {
      const was = referrals.find((r) => r.id === message.referral);
      if (message.consultation === consultation) {
        referrals = referrals.filter((r) => r.id !== message.referral);
        if (was) {
          const list = declined.get(message.consultation) ?? [];
          declined.set(message.consultation, [...list.filter((d) => d.office_id !== was.office_id),
            { id: was.id, office_id: was.office_id, office: was.office, service: was.service }]);
        }
        setStatus(null);
        render();
      } else {
        panel.duty.setNotice(known
          ? { key: 'notice.referralDeclined', vars: { office: known.office }, kind: 'info' }
          : { key: 'notice.referralDeclinedUnnamed', kind: 'info' });
      }
      return;
    }
    if (message.consultation === consultation) {
      await load(message.consultation);
      if (message.consultation !== consultation) return;
      // Agreed: the record's outcome says so, unless the lawyer chose one.
      const service = referrals.find((r) => r.id === message.referral)?.service ?? '';
      const outcomeSet = Object.hasOwn(REFERRAL_OUTCOMES, service) && panel.record.openId() === consultation
        && panel.record.suggestOutcome(REFERRAL_OUTCOMES[service]);
      setStatus(outcomeSet ? { kind: 'ok', key: AGREED_OUTCOME_TEXT[service] } : null);
      return;
    }
    // The record is closed: the notice names the office and the code.
    try {
      const answer = await panel.client.get(`/api/consultations/${seg(message.consultation)}/referrals`);
      const r = (answer?.referrals ?? []).find((x) => x.id === message.referral);
      if (r?.code) {
        panel.duty.setNotice({ key: 'notice.referralAgreed', vars: { office: r.office, code: formatCode(r.code) }, kind: 'ok' });
        return;
      }
    } catch {
      // Named without its code below.
    }
    panel.duty.setNotice(known
      ? { key: 'notice.referralAgreedNoCode', vars: { office: known.office }, kind: 'ok' }
      : { key: 'notice.referralAgreedUnnamed', kind: 'ok' });
  }

  return {
    render,
    answered,
    /**
     * The record's outcome refers to a service (`legal_aid`, `mediation`): its office, for a proposal.
     * @param {string} id the consultation
     * @param {string} service
     */
    referTo(id, service) {
      render();
      if (consultation !== id) return;
      wanted = service;
      offerWanted();
    },
    /** After a reconnection: an answer may have come while the connection was down. */
    refresh() {
      if (consultation) load(consultation);
    },
    /** Logged out: nothing stays (drafts go with the record's). */
    reset() {
      consultation = null;
      offices = null;
      referrals = [];
      status = null;
      wanted = null;
      drawn = '';
      declined.clear();
      proposed.clear();
      els.matter.value = '';
      els.list.replaceChildren();
      els.office.replaceChildren();
      clearError(els.status);
      els.section.hidden = true;
    },
  };
}
