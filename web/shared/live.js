// The live connection to the server: one WebSocket (GET /ws), JSON messages
// tagged by `type` (PROTOCOL.md). The server pings; browsers answer by
// themselves. Reconnection belongs to the caller, which knows what to resume.

/**
 * A message from the server: its `type`, and what that type carries (PROTOCOL.md).
 * @typedef {{type: string, [field: string]: any}} Message
 */

/**
 * Opens /ws with a bearer token (an access token, or a kiosk's device token).
 * @param {string} token
 * @param {(message: Message) => void} onMessage every message the server sends
 * @param {(event: CloseEvent) => void} [onClose]
 * @returns {{ send(message: object): boolean, close(): void, opened: Promise<void> }}
 */
export function connectLive(token, onMessage, onClose = () => {}) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  /** @type {Promise<void>} */
  const opened = new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error('websocket failed')), { once: true });
  });
  ws.addEventListener('message', (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    onMessage(message);
  });
  ws.addEventListener('close', onClose);
  return {
    opened,
    send(message) {
      if (ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(message));
      return true;
    },
    close() {
      ws.close(1000, 'bye');
    },
  };
}

/** How often a kept connection asks the server whether it is still there. */
const PING_EVERY_MS = 15_000;
/** No answer for this long: the link is dead (a pulled cable sends no close). */
const DEAD_AFTER_MS = 8_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 15_000;

/**
 * Keeps a live connection up: reconnects with growing pauses (1 s to 15 s,
 * at once when the browser comes back online), notices a dead link by its
 * unanswered pings, and tells the caller when it is up and when it is down,
 * so the caller can resume (the server says again what is in progress).
 *
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client the app's
 *   API client: its access (or device) token opens the connection; after a refused
 *   connection, GET /api/me refreshes it, and a 401 there (signed out, revoked) stops
 * @param {(message: Message) => void} options.onMessage every message but `pong`
 * @param {() => void} [options.onUp] connected (first time and after every reconnection)
 * @param {() => void} [options.onDown] the connection went away; a reconnection follows
 * @param {(reason: string) => void} [options.onRevoked] the server revoked the credentials; stopped
 * @returns {{ send(message: object): boolean, stop(): void, readonly up: boolean }}
 */
export function keepLive({ client, onMessage, onUp = () => {}, onDown = () => {}, onRevoked = () => {} }) {
  const token = () => client.accessToken();
  /** May it try again? The API client refreshes expired tokens on the way. */
  const check = async () => {
    try {
      await client.get('/api/me');
      return true;
    } catch (error) {
      return error.status !== 401;
    }
  };
  let link = null;
  let up = false;
  let stopped = false;
  let failures = 0;
  let retryTimer = null;
  let pingTimer = null;
  let deadTimer = null;
  let pings = 0;
  /** Gives the current link up at once (dead, or the browser is offline). */
  let abandon = null;

  const clearTimers = () => {
    clearTimeout(retryTimer);
    clearInterval(pingTimer);
    clearTimeout(deadTimer);
    retryTimer = pingTimer = deadTimer = null;
  };

  async function connect() {
    clearTimers();
    if (stopped) return;
    let bearer = null;
    try {
      bearer = await token();
    } catch {
      bearer = null;
    }
    if (stopped) return;
    if (!bearer) {
      stop();
      return;
    }
    let opened = false;
    let revoked = null;
    let current = null;
    // Closed by the server, by the network, or given up here (abandon).
    const lost = (code) => {
      if (link !== current) return;
      link = null;
      clearTimers();
      const wasUp = up;
      up = false;
      if (wasUp) onDown();
      if (stopped) return;
      if (revoked || code === 4001) {
        stopped = true;
        onRevoked(revoked ?? 'revoked');
        return;
      }
      scheduleRetry(!opened);
    };
    current = connectLive(
      bearer,
      (message) => {
        clearTimeout(deadTimer);
        deadTimer = null;
        if (message.type === 'pong') return;
        if (message.type === 'error' && message.code === 'revoked') revoked = message.message || 'revoked';
        onMessage(message);
      },
      (event) => lost(event.code),
    );
    // A closing handshake on a dead link could take minutes: give it up now.
    abandon = () => {
      current.close();
      lost(1006);
    };
    link = current;
    current.opened.then(
      () => {
        if (link !== current) return;
        opened = true;
        up = true;
        failures = 0;
        pingTimer = setInterval(() => {
          current.send({ type: 'ping', id: `k${++pings}` });
          clearTimeout(deadTimer);
          deadTimer = setTimeout(abandon, DEAD_AFTER_MS);
        }, PING_EVERY_MS);
        onUp();
      },
      () => {},
    );
  }

  async function scheduleRetry(refused) {
    failures += 1;
    if (refused) {
      // The upgrade was refused or the server is away: are the credentials still good?
      if (!(await check())) {
        stop();
        return;
      }
    }
    if (stopped) return;
    // Offline, the browser's 'online' event reconnects; until then, try seldom.
    const pause = navigator.onLine === false
      ? RETRY_MAX_MS
      : Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures - 1, 4));
    retryTimer = setTimeout(connect, pause * (0.8 + Math.random() * 0.4));
  }

  const online = () => {
    if (!link && !stopped) {
      failures = 0;
      connect();
    }
  };
  // The browser lost its network: no connection survives that, say so at once.
  const offline = () => {
    if (link) abandon();
  };
  window.addEventListener('online', online);
  window.addEventListener('offline', offline);

  function stop() {
    stopped = true;
    clearTimers();
    window.removeEventListener('online', online);
    window.removeEventListener('offline', offline);
    const current = link;
    link = null;
    const wasUp = up;
    up = false;
    current?.close();
    if (wasUp) onDown();
  }

  connect();
  return {
    send: (message) => Boolean(link?.send(message)),
    stop,
    get up() {
      return up;
    },
  };
}
