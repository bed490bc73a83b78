// What the referral views share: the words for the server's codes (services,
// statuses, outcomes), the reference code as people read it, the overdue mark,
// and the shapes of what the API sends.

import { t } from '/web/shared/i18n.js';
import { h } from '/web/shared/dom.js';
import { serviceText as sharedServiceText } from '/web/shared/codes.js';

/** The texts of the server's codes, named in full so that the string tables can be checked. */
const STATUS_TEXT = {
  proposed: 'referrals.status.proposed',
  new: 'referrals.status.new',
  accepted: 'referrals.status.accepted',
  closed: 'referrals.status.closed',
};
const OUTCOME_TEXT = {
  legal_aid_granted: 'referrals.outcome.legal_aid_granted',
  legal_aid_refused: 'referrals.outcome.legal_aid_refused',
  mediated: 'referrals.outcome.mediated',
  mediation_failed: 'referrals.outcome.mediation_failed',
  withdrawn: 'referrals.outcome.withdrawn',
  unreachable: 'referrals.outcome.unreachable',
  other: 'referrals.outcome.other',
};

/**
 * A note on a referral.
 * @typedef {{author: string, at: number, text: string}} Note
 */

/**
 * A referral as GET /api/referrals gives it (matter, contact and notes are null for coordinators and admins;
 * notes and the office's caseworkers come only with one referral read by a caseworker of its office).
 * @typedef {{id: string, code: string | null, region_id: string, office_id: string, office: string, service: string,
 *   topic: string, language: string, matter: string | null, contact: string | null, status: string,
 *   outcome: string | null, assignee_id: string | null, assignee: string | null, proposed_at: number,
 *   consented_at: number | null, due_at: number | null, closed_at: number | null, overdue: boolean,
 *   notes: Note[] | null, caseworkers?: {id: string, display_name: string}[] | null}} Referral
 */

/**
 * One office's counts.
 * @typedef {{office_id: string, office: string, region_id: string, service: string,
 *   new: number, accepted: number, overdue: number, closed: number}} OfficeSummary
 */

/**
 * A service's name: `referrals.service.<code>` for the services the apps know,
 * else an office's own code in plain letters (codes.js).
 * @param {string} service
 */
export const serviceText = (service) => sharedServiceText('referrals.service', service);

/** @param {string} status */
export const statusText = (status) => t(STATUS_TEXT[status] ?? 'referrals.status.new');

/** @param {string | null | undefined} outcome */
export const outcomeText = (outcome) => (outcome ? t(OUTCOME_TEXT[outcome] ?? 'referrals.outcome.other') : t('list.none'));

/**
 * A reference code as people read it: XXXX-XXXX.
 * @param {string | null | undefined} code
 */
export function formatCode(code) {
  const plain = String(code ?? '').replace(/[\s-]/g, '').toUpperCase();
  return plain.length === 8 ? `${plain.slice(0, 4)}-${plain.slice(4)}` : plain;
}

/**
 * The overdue mark: a sign and a word (colour only repeats them).
 * @param {string} [testid]
 */
export const overdueBadge = (testid) => h('span', { className: 'badge overdue', dataset: testid ? { testid } : undefined },
  h('span', { attrs: { 'aria-hidden': 'true' }, textContent: '⚠ ' }), t('referrals.overdue'));

/** Outcomes that fit an office's service first; the general ones for every service. */
const GENERAL_OUTCOMES = ['withdrawn', 'unreachable', 'other'];
const SERVICE_OUTCOMES = {
  legal_aid: ['legal_aid_granted', 'legal_aid_refused', ...GENERAL_OUTCOMES],
  mediation: ['mediated', 'mediation_failed', ...GENERAL_OUTCOMES],
};

/**
 * The outcomes a referral to a service can close with.
 * @param {string} service
 * @returns {string[]}
 */
export const outcomesFor = (service) => SERVICE_OUTCOMES[service] ?? Object.keys(OUTCOME_TEXT);
