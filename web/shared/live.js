// The live connection to the server: one WebSocket (GET /ws), JSON messages
// tagged by `type` (PROTOCOL.md). The server pings; browsers answer by
// themselves. Reconnection belongs to the caller, which knows what to resume.

/**
 * Opens /ws with a bearer token (an access token, or a kiosk's device token).
 * @param {string} token
 * @param {(message: object) => void} onMessage every message the server sends
 * @param {(event: CloseEvent) => void} [onClose]
 * @returns {{ send(message: object): boolean, close(): void, opened: Promise<void> }}
 */
export function connectLive(token, onMessage, onClose = () => {}) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
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
