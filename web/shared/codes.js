// The API's codes for roles, languages, topics and services, in the order the apps list them.

import { t } from './i18n.js';

/** The receiving offices' caseworkers last: they work referrals, not consultations. */
export const ROLES = ['lawyer', 'interpreter', 'coordinator', 'admin', 'caseworker'];
export const LANGUAGES = ['bo', 'zh', 'en'];
export const TOPICS = ['land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other'];
/** How a resident reaches the service: a kiosk, or the hotline. */
export const CHANNELS = ['kiosk', 'phone'];
/**
 * The receiving offices' services the apps have words for. An admin may give
 * an office a service of its own (a code such as `labour_arbitration`).
 */
export const SERVICES = ['legal_aid', 'mediation'];

const ORDER = { role: ROLES, language: LANGUAGES, topic: TOPICS };

/**
 * Codes as translated words in the usual order, e.g. listOf('language',
 * ['zh', 'bo']) is "藏语、汉语" in Chinese. The keys are '<prefix>.<code>',
 * 'list.separator' and 'list.none' (for an empty list).
 */
export function listOf(prefix, codes) {
  if (!codes || !codes.length) return t('list.none');
  const order = ORDER[prefix] ?? [];
  const rank = (code) => (order.includes(code) ? order.indexOf(code) : order.length);
  return [...codes]
    .sort((a, b) => rank(a) - rank(b))
    .map((code) => t(`${prefix}.${code}`))
    .join(t('list.separator'));
}

/**
 * A code in plain letters, for one the apps have no words for:
 * `labour_arbitration` is "labour arbitration".
 * @param {string} code
 */
const plainCode = (code) => String(code ?? '').replace(/_+/g, ' ').trim();

/**
 * A service's name: for a service of SERVICES the text of '<prefix>.<code>'
 * (each app has its own prefix, e.g. 'refer.service'), for any other the code
 * in plain letters, never the bare code.
 * @param {string} prefix
 * @param {string} service
 */
export const serviceText = (prefix, service) => (SERVICES.includes(service) ? t(`${prefix}.${service}`) : plainCode(service));
