// The report as CSV: the same query with `format=csv`, downloaded as a file
// (of one region when the page shows one) through the shared download.js.

import { fetchFile, fileName, saveBlob } from '/web/shared/download.js';

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
  const response = await fetchFile(client, `/api/reports/consultations?${queryString(query, 'csv')}`, 'text/csv');
  let text = await response.text();
  let name = fileName(response, `consultations-${query.from}-${query.to}.csv`);
  if (region) {
    text = onlyRegion(text, region);
    name = name.replace(/\.csv$/, `-${region.replace(/[^\w.-]+/g, '_')}.csv`);
  }
  saveBlob(new Blob([text], { type: 'text/csv;charset=utf-8' }), name);
}
