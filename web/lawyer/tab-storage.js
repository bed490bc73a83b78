// The lawyer's console keeps a few things per browser tab, in sessionStorage:
// the duty the person wanted, the consultation whose media this tab carries,
// and record drafts. Without storage (private mode, full) the page still
// works, only without surviving a reload.

/** @param {string} key */
export function readSession(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/**
 * @param {string} key
 * @param {string | null} value null removes it
 */
export function writeSession(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // Private mode or full: the page still works, without surviving a reload.
  }
}

/**
 * Removes every key that starts with a prefix.
 * @param {string} prefix
 */
export function forgetSessionKeys(prefix) {
  try {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(prefix)) sessionStorage.removeItem(key);
  } catch {
    // Nothing kept.
  }
}
