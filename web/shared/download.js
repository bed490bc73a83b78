// Files from the API saved by the browser: a CSV, a PDF. The API wants the
// bearer token in the Authorization header, which a plain link cannot send,
// so the file is fetched with it and handed to the browser as a blob with a
// download name (the server's, from Content-Disposition). No words here:
// errors are ApiErrors (api.js) for the app to show.

import { ApiError, errorFrom } from '/web/shared/api.js';
import { h } from '/web/shared/dom.js';

/**
 * Fetches a path of the API with the app's credentials; the response when it
 * is a success, else an ApiError. A 401 lets the API client refresh the
 * session (or log out) once, then asks again.
 * @param {import('/web/shared/api.js').Client} client
 * @param {string} path
 * @param {string} accept the media type wanted
 * @returns {Promise<Response>}
 */
export async function fetchFile(client, path, accept) {
  const ask = async () => {
    const token = await client.accessToken();
    try {
      return await fetch(path, {
        headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), Accept: accept },
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch {
      throw new ApiError(0, 'network', '');
    }
  };
  let response = await ask();
  if (response.status === 401) {
    // The API client refreshes the session (or logs out and throws) on its own 401.
    await client.get('/api/me');
    response = await ask();
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/**
 * The file name the server gave (Content-Disposition), else the fallback.
 * @param {Response} response
 * @param {string} fallback
 */
export function fileName(response, fallback) {
  const given = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '')?.[1];
  return given && !/[\\/]/.test(given) ? given : fallback;
}

/**
 * Has the browser save a blob under a name.
 * @param {Blob} blob
 * @param {string} name
 */
export function saveBlob(blob, name) {
  const href = URL.createObjectURL(blob);
  const link = h('a', { href, download: name, className: 'visually-hidden', tabIndex: -1 });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/**
 * Fetches a file of the API and has the browser save it; resolves to its name.
 * @param {import('/web/shared/api.js').Client} client
 * @param {string} path
 * @param {{accept: string, name: string}} file the media type wanted, and the name when the server gives none
 */
export async function downloadFile(client, path, { accept, name }) {
  const response = await fetchFile(client, path, accept);
  const saved = fileName(response, name);
  saveBlob(await response.blob(), saved);
  return saved;
}
