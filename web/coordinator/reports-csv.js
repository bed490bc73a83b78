// The report as CSV: the same query with `format=csv`, downloaded as a file
// (of one region when the page shows one).

import { ApiError } from '/web/shared/api.js';
import { h } from '/web/shared/dom.js';

/**
 * The query string of a report's query, as JSON or (format 'csv') as CSV.
 * @param {{from: string, to: string, period: string}} query
 * @param {string} [format]
 */
export function queryString(query, format) {
  const params = new URLSearchParams({ from: query.from, to: query.to, period: query.period });
  if (format) params.set('format', format);
  return params.toString();
}

/**
 * Keeps the header and the lines of one region (the API's CSV has every region).
 * @param {string} text
 * @param {string} regionId
 */
function onlyRegion(text, regionId) {
  const lines = text.split('\n');
  /** @param {string} line */
  const field = (line) => {
    // The second field: the region id, quoted ("" inside quotes is one quote).
    const m = line.match(/^[^,]*,("((?:[^"]|"")*)"|[^,]*)/);
    if (!m) return null;
    return m[2] !== undefined ? m[2].replace(/""/g, '"') : m[1];
  };
  return lines.filter((line, i) => i === 0 || line === '' || field(line) === regionId).join('\n');
}

/**
 * Downloads the report of a query as a CSV file; throws an ApiError when the server refuses.
 * @param {import('/web/shared/api.js').Client} client
 * @param {{from: string, to: string, period: string}} query
 * @param {string} region only this region's lines ('' for all)
 */
export async function downloadCsv(client, query, region) {
  const url = `/api/reports/consultations?${queryString(query, 'csv')}`;
  const fetchCsv = async () => {
    const token = await client.accessToken();
    try {
      return await fetch(url, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'text/csv' }, cache: 'no-store', credentials: 'same-origin',
      });
    } catch {
      throw new ApiError(0, 'network', '');
    }
  };
  let response = await fetchCsv();
  if (response.status === 401) {
    // The API client refreshes the session (or logs out) on its own 401.
    await client.get('/api/me');
    response = await fetchCsv();
  }
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = '';
    try {
      const body = await response.json();
      code = body?.error?.code ?? code;
      message = body?.error?.message ?? '';
    } catch {
      // Not JSON.
    }
    throw new ApiError(response.status, code, message);
  }
  let text = await response.text();
  let name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '')?.[1]
    ?? `consultations-${query.from}-${query.to}.csv`;
  if (region) {
    text = onlyRegion(text, region);
    name = name.replace(/\.csv$/, `-${region.replace(/[^\w.-]+/g, '_')}.csv`);
  }
  const href = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const link = h('a', { href, download: name, className: 'visually-hidden', tabIndex: -1 });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
