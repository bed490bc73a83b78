// A small client for the Cloud Law Office HTTP API.
//
// Each app keeps its own credentials in localStorage under its own key
// ('cloudlaw.coordinator', 'cloudlaw.lawyer', 'cloudlaw.terminal'), so being
// logged in to one app never logs you in to another. Every call sends
// `Authorization: Bearer <access_token>`. When a call answers 401, the client
// tries POST /api/auth/refresh once with the stored refresh token and repeats
// the call; when that fails too, it forgets the credentials and tells the app
// through onLoggedOut().
//
// Every error is thrown as an ApiError carrying the server's `code` (for code)
// and `message` (for people), following the API's one error shape
// {"error":{"code","message"}}. Failures that never reached the server get the
// code 'network'.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server was not reached
   * @param {string} code stable machine-readable word
   * @param {string} message text from the server, safe to show ('' if none)
   * @param {number|null} retryAfter seconds from a Retry-After header
   */
  constructor(status, code, message, retryAfter = null) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.serverMessage = message || '';
    this.retryAfter = retryAfter;
  }
}

/**
 * Reads an error response into an ApiError, whatever its body.
 * @param {Response} response
 */
export async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = '';
  try {
    const body = await response.json();
    if (body && body.error) {
      if (typeof body.error.code === 'string') code = body.error.code;
      if (typeof body.error.message === 'string') message = body.error.message;
    }
  } catch {
    // Not JSON (a proxy's error page, say): keep the status-derived code.
  }
  const retry = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  return new ApiError(response.status, code, message, Number.isFinite(retry) ? retry : null);
}

async function bodyOf(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, 'bad_response', '');
  }
}

/**
 * Creates the API client of one app.
 * @param {'coordinator'|'lawyer'|'terminal'} app
 */
export function createClient(app) {
  const storageKey = `cloudlaw.${app}`;
  const loggedOutListeners = new Set();
  /** One refresh at a time: concurrent 401s wait for the same attempt. */
  let refreshing = null;

  function load() {
    try {
      const raw = localStorage.getItem(storageKey);
      const value = raw ? JSON.parse(raw) : null;
      return value && typeof value.access_token === 'string' ? value : null;
    } catch {
      return null;
    }
  }

  function save(credentials) {
    localStorage.setItem(storageKey, JSON.stringify(credentials));
  }

  function clear() {
    localStorage.removeItem(storageKey);
  }

  function storeTokens(response) {
    save({
      access_token: response.access_token,
      refresh_token: response.refresh_token ?? null,
      expires_at: response.expires_in ? Date.now() + response.expires_in * 1000 : null,
    });
  }

  function signalLoggedOut() {
    clear();
    for (const listener of loggedOutListeners) {
      try {
        listener();
      } catch (error) {
        console.error(error);
      }
    }
  }

  async function send(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      return await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (error) {
      throw new ApiError(0, 'network', '');
    }
  }

  async function refresh() {
    const stored = load();
    if (!stored || !stored.refresh_token) return false;
    const response = await send('POST', '/api/auth/refresh', { refresh_token: stored.refresh_token });
    if (!response.ok) return false;
    storeTokens(await response.json());
    return true;
  }

  function refreshOnce() {
    if (!refreshing) {
      refreshing = refresh()
        .catch(() => false)
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  /**
   * Calls the API with the stored credentials.
   * @returns {Promise<any>} the parsed JSON body, or null for 204
   */
  async function request(method, path, body) {
    const token = load()?.access_token;
    let response = await send(method, path, body, token);
    if (response.status === 401 && token) {
      if (await refreshOnce()) {
        response = await send(method, path, body, load()?.access_token);
      }
      if (response.status === 401) {
        const error = await errorFrom(response);
        signalLoggedOut();
        throw error;
      }
    }
    if (!response.ok) throw await errorFrom(response);
    return bodyOf(response);
  }

  return {
    /** True when credentials are stored (they may still have been revoked). */
    hasCredentials: () => load() !== null,

    /**
     * The access token for the live connection (GET /ws?token=), refreshed
     * first when it is about to expire; null when there are no credentials.
     */
    async accessToken() {
      const stored = load();
      if (!stored) return null;
      if (stored.expires_at && stored.refresh_token && stored.expires_at - Date.now() < 30_000) {
        await refreshOnce();
      }
      return load()?.access_token ?? null;
    },

    /** Logs in and keeps the tokens; resolves to the login response. */
    async login(username, password) {
      const response = await send('POST', '/api/auth/login', { username, password });
      if (!response.ok) throw await errorFrom(response);
      const result = await response.json();
      storeTokens(result);
      return result;
    },

    /** Tells the server, then forgets the tokens whatever it answered. */
    async logout() {
      const token = load()?.access_token;
      clear();
      if (!token) return;
      try {
        await send('POST', '/api/auth/logout', undefined, token);
      } catch {
        // Offline: the tokens are gone here, and they expire on the server.
      }
    },

    /** Keeps a kiosk's device token, used as its Bearer token. */
    setDeviceToken(deviceToken) {
      save({ access_token: deviceToken, refresh_token: null, expires_at: null });
    },

    /** Forgets the credentials without asking the server. */
    forget: clear,

    /** Calls back whenever stored credentials stopped working. */
    onLoggedOut(listener) {
      loggedOutListeners.add(listener);
      return () => loggedOutListeners.delete(listener);
    },

    /** A call that needs no credentials (e.g. enrollment). */
    async anonymous(method, path, body) {
      const response = await send(method, path, body);
      if (!response.ok) throw await errorFrom(response);
      return bodyOf(response);
    },

    request,
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body ?? {}),
    patch: (path, body) => request('PATCH', path, body),
  };
}

/** @typedef {ReturnType<typeof createClient>} Client one app's API client */

/** Encodes one path segment (ids are UUIDs, but never trust that). */
export const seg = (value) => encodeURIComponent(String(value));
