// Words and clocks that several parts of the lawyer's live panel show.

import { t } from '/web/shared/i18n.js';

/** The texts of the roles, named in full so that the string tables can be checked. */
export const ROLE_TEXT = { resident: 'role.resident', lawyer: 'role.lawyer', interpreter: 'role.interpreter' };

/** @param {string} code */
export const topicText = (code) => t(`topic.${code}`);
/** @param {string} code */
export const languageText = (code) => t(`language.${code}`);

/**
 * Seconds as m:ss (or h:mm:ss).
 * @param {number} totalSeconds
 */
export function clock(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}
