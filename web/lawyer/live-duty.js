// The top of the lawyer's live panel: whether the live connection is up, the
// person's duty (the server's `presence`) with the buttons to go online, take
// a break or go offline, and the notice line under it.
//
// What the person wanted (online, on a break, offline) is kept per tab, so that
// a reload or a reconnection that the server forgot (longer than its grace
// period) puts them back online.

import { t, showError, clearError } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { readSession, writeSession } from '/web/lawyer/tab-storage.js';

const WANT_KEY = 'cloudlaw.lawyer.want';

/** The texts of the server's codes, named in full so that the string tables can be checked. */
const STATE_TEXT = {
  offline: 'live.state.offline',
  available: 'live.state.available',
  ringing: 'live.state.ringing',
  in_consultation: 'live.state.in_consultation',
  wrap_up: 'live.state.wrap_up',
  break: 'live.state.break',
};
const STATE_HINT = {
  offline: 'live.hint.offline',
  available: 'live.hint.available',
  ringing: 'live.hint.ringing',
  in_consultation: 'live.hint.in_consultation',
  wrap_up: 'live.hint.wrap_up',
  break: 'live.hint.break',
};
const CONNECTION_TEXT = { connecting: 'live.connection.connecting', up: 'live.connection.up', down: 'live.connection.down' };

/**
 * A notice under the duty line: a text (key, vars, kind) or an error from the API.
 * @typedef {{key: string, vars?: Record<string, unknown>, kind: string, error?: undefined}
 *   | {error: {code: string, serverMessage: string}, key?: undefined, kind?: undefined, vars?: undefined}} Notice
 */

/** The notice for a message the live connection could not send. */
export const NETWORK_ERROR = Object.freeze({ error: { code: 'network', serverMessage: '' } });

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 */
export function setupDuty(panel) {
  const els = {
    connection: $('live-connection'),
    connectionText: $('live-connection-text'),
    presence: $('presence'),
    presenceHint: $('presence-hint'),
    offDuty: $('off-duty'),
    goOnline: $('go-online', HTMLButtonElement),
    takeBreak: $('take-break', HTMLButtonElement),
    goOffline: $('go-offline', HTMLButtonElement),
    status: $('live-status'),
  };

  const fresh = () => ({
    /** @type {'connecting' | 'up' | 'down'} */
    connection: 'connecting',
    /** @type {{state: string, on_duty?: boolean, [k: string]: any} | null} the last `presence`, or null before the first */
    presence: null,
    /** The first `presence` after a (re)connection is compared with what the person wanted. */
    checkWanted: false,
    /** @type {Notice | null} */
    notice: null,
  });
  let state = fresh();

  const wanted = () => readSession(WANT_KEY) ?? 'offline';

  /** @param {string} next */
  function want(next) {
    panel.ringer.unlock();
    writeSession(WANT_KEY, next);
    setNotice(null);
    if (!panel.send({ type: 'presence.set', state: next })) setNotice(NETWORK_ERROR);
  }

  els.goOnline.addEventListener('click', () => want('available'));
  els.takeBreak.addEventListener('click', () => want('break'));
  els.goOffline.addEventListener('click', () => want('offline'));

  /** @param {Notice | null} notice */
  function setNotice(notice) {
    state.notice = notice;
    renderNotice();
  }

  function renderConnection() {
    els.connection.dataset.state = state.connection;
    els.connectionText.textContent = t(CONNECTION_TEXT[state.connection]);
  }

  function renderDuty() {
    const p = state.presence;
    const current = p?.state ?? null;
    els.presence.dataset.state = current ?? '';
    els.presence.textContent = current ? t(STATE_TEXT[current] ?? 'live.state.unknown') : t('live.state.unknown');
    const offDuty = Boolean(p && p.on_duty === false);
    // Off duty, "waiting for calls" would promise what the notice below takes back.
    const hint = current && STATE_HINT[current] && !(offDuty && current === 'available') ? t(STATE_HINT[current]) : '';
    els.presenceHint.textContent = hint;
    els.presenceHint.hidden = !hint;
    els.offDuty.hidden = !offDuty;
    const up = state.connection === 'up';
    els.goOnline.hidden = !(current === 'offline' || current === 'break');
    els.takeBreak.hidden = current !== 'available';
    els.goOffline.hidden = !(current === 'available' || current === 'break' || current === 'wrap_up');
    for (const button of [els.goOnline, els.takeBreak, els.goOffline]) button.disabled = !up;
  }

  function renderNotice() {
    const n = state.notice;
    if (!n) {
      clearError(els.status);
      els.status.hidden = false;
      els.status.dataset.kind = '';
    } else if (n.error) {
      els.status.dataset.kind = 'error';
      showError(els.status, n.error);
    } else {
      clearError(els.status);
      els.status.hidden = false;
      els.status.dataset.kind = n.kind === 'error' ? 'error' : n.kind;
      els.status.textContent = t(n.key, n.vars);
    }
  }

  return {
    setNotice,
    /** Whether the live connection is up. */
    isUp: () => state.connection === 'up',
    /**
     * The connection is being opened, is up, or went down.
     * @param {'connecting' | 'up' | 'down'} connection
     */
    setConnection(connection) {
      state.connection = connection;
      if (connection === 'up') state.checkWanted = true;
    },
    /**
     * A `presence` from the server; after a reconnection, the duty the person wanted is asked for again.
     * @param {{state: string, [k: string]: any}} message
     */
    presence(message) {
      state.presence = message;
      if (state.checkWanted) {
        state.checkWanted = false;
        // A reconnection longer than the server's grace period forgets that the person was online.
        if (message.state === 'offline' && wanted() !== 'offline') panel.send({ type: 'presence.set', state: wanted() });
      }
    },
    render() {
      renderConnection();
      renderDuty();
      renderNotice();
    },
    renderNotice,
    /** @param {{forget?: boolean}} [options] forget: also the duty the person wanted */
    reset({ forget = false } = {}) {
      state = fresh();
      if (forget) writeSession(WANT_KEY, null);
    },
  };
}
