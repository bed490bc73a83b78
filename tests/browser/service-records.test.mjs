// Service records: two real consultations (the kiosk's live connection without
// its screens, the demo lawyer in /lawyer accepting, hanging up, writing the
// record; the resident rates, and agrees to a referral in one), then what they
// add up to. The lawyer's "My service record" shows their figures and
// downloads their certificate (a PDF) and their CSV line; the coordinator's
// "Service records" shows the same numbers as the API per volunteer, aid team
// and region, downloads the CSV, a volunteer's certificate and the region's
// monthly report (PDFs); a caseworker sees no such section.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  serverAndBrowserForFile, assertClean, visible, hidden, textMatches, eventually, checkScreen, screenshot,
  liveClient, accessToken, onlineVolunteer, callApi, openApp as openAppPage, switchLanguage as switchTo,
} from './support.mjs';

// Offers last a minute, long enough for a busy machine.
const CONFIG = '[live]\noffer_timeout_secs = 60\n';
const CSV_HEADER = 'key,name,consultations,minutes,appointments_kept,referrals,ratings,rating_avg';
const FIELDS = ['consultations', 'minutes', 'appointments_kept', 'referrals', 'ratings', 'rating_avg'];
const ZONE = 'Asia/Shanghai';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started), { config: CONFIG });

/** The API; a body that is not JSON comes as its text. */
const api = (method, url, token, body) => callApi(server, method, url, token, body, { lenient: true });

/** Today and the first of this month in the demo region's calendar, and the day after today. */
function thisMonth() {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' })
    .formatToParts(new Date()).map((p) => [p.type, p.value]));
  const today = `${parts.year}-${parts.month}-${parts.day}`;
  const next = new Date(`${today}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return { first: `${today.slice(0, 7)}-01`, today, month: today.slice(0, 7), to: next.toISOString().slice(0, 10) };
}

/** An app page in a fresh context, logged in; what it reports goes to `problems`. */
const openApp = (path, username) => openAppPage(browser, server, path, username, 'demo-pass', { timezoneId: ZONE });

/** Clicks a download button; the file's name and bytes. */
async function downloaded(page, testid) {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.getByTestId(testid).click()]);
  return { name: download.suggestedFilename(), bytes: await readFile(await download.path()) };
}

const isPdf = (bytes) => bytes.subarray(0, 5).toString('latin1') === '%PDF-';

/** What the two consultations were; the lawyer's account id. */
const made = { consultations: [], lawyerId: '' };

test('two consultations: the kiosk asks, the lawyer answers in /lawyer and writes the record, the resident rates; one referral agreed', async () => {
  const problems = [];
  const lawyer = await onlineVolunteer(browser, server, 'demo-lawyer', problems);
  const enrolled = await api('POST', '/api/terminals/enroll', null, { code: 'DEMO-TERMINAL-1' });
  assert.equal(enrolled.status, 200);
  const device = enrolled.body.device_token;
  const resident = await liveClient(browser, server, device);
  await resident.next('welcome');
  const token = await accessToken(server, 'demo-lawyer');

  for (const [i, { topic, rating, refer }] of [{ topic: 'family', rating: 4, refer: true }, { topic: 'land', rating: 5, refer: false }].entries()) {
    await resident.send({ type: 'consult.request', language: 'zh', topic });
    await visible(lawyer.getByTestId('incoming-call'));
    await lawyer.getByTestId('accept-call').click();
    const started = await resident.next('consult.started');
    await visible(lawyer.getByTestId('call-view'));
    made.consultations.push(started.consultation);

    if (refer) {
      const listed = await api('GET', `/api/consultations/${started.consultation}/referrals`, token);
      const office = listed.body.offices.find((o) => o.service === 'legal_aid');
      const proposed = await api('POST', `/api/consultations/${started.consultation}/referrals`, token, { office: office.id, matter: 'Support for the children after a divorce.' });
      assert.equal(proposed.status, 201, JSON.stringify(proposed.body));
      const asked = await resident.next('referral.proposed');
      const agreed = await api('POST', `/api/referrals/${asked.referral}/consent`, device, { agree: true });
      assert.equal(agreed.status, 200, JSON.stringify(agreed.body));
    }

    await lawyer.getByTestId('hang-up').click();
    await resident.next('consult.ended');
    await resident.send({ type: 'consult.rate', consultation: started.consultation, rating });
    await resident.next('consult.rated');
    await lawyer.getByTestId('record-summary').fill(`Consultation ${i + 1}: advice given.`);
    await lawyer.getByTestId('record-outcome').selectOption('advice_given');
    await lawyer.getByTestId('record-save').click();
    await hidden(lawyer.getByTestId('record-form'));
  }

  made.lawyerId = (await api('GET', '/api/me', token)).body.account.id;
  await lawyer.getByTestId('go-offline').click();
  for (const list of [...problems, resident.problems]) assertClean(list);
  await resident.close();
  await lawyer.context().close();
});

test('the lawyer\'s own service record: this month\'s figures, the certificate as a PDF, the CSV line', async () => {
  assert.equal(made.consultations.length, 2, 'the first test made the consultations');
  const { first, today, to } = thisMonth();
  const token = await accessToken(server, 'demo-lawyer');
  const { body: own } = await api('GET', `/api/service-records?from=${first}&to=${to}&by=volunteer`, token);
  assert.equal(own.lines.length, 1);
  assert.equal(own.total.consultations, 2);
  assert.equal(own.total.referrals, 1);
  assert.equal(own.total.ratings, 2);
  assert.equal(own.total.rating_avg, 4.5);

  const { context, page, problems } = await openApp('/lawyer', 'demo-lawyer');
  const block = page.getByTestId('service-record');
  await visible(block);
  // This month so far, by default; read once the block is in view.
  assert.equal(await page.getByTestId('service-from').inputValue(), first);
  assert.equal(await page.getByTestId('service-to').inputValue(), today);
  await block.scrollIntoViewIfNeeded();
  await visible(page.getByTestId('service-figures'));
  const value = (id) => page.getByTestId(id).getAttribute('data-value').then(Number);
  await eventually(async () => assert.ok((await value('service-consultations')) >= 1));
  assert.equal(await value('service-consultations'), own.total.consultations);
  assert.equal(await value('service-hours'), own.total.minutes);
  assert.equal(await value('service-appointments'), own.total.appointments_kept);
  assert.equal(await value('service-referrals'), 1);
  assert.equal(await value('service-ratings'), 2);
  await textMatches(page.getByTestId('service-ratings'), /2 次，平均 4\.50 \/ 5/);
  await textMatches(page.getByTestId('service-consultations'), /^2$/);
  await textMatches(page.getByTestId('service-period'), /至/);
  await checkScreen(page, 'service-lawyer-page-zh');
  await screenshot(block, 'service-lawyer-zh');

  // The certificate: a PDF, fetched with the bearer token.
  const certificate = await downloaded(page, 'service-certificate');
  assert.ok(isPdf(certificate.bytes), `a PDF: ${certificate.bytes.subarray(0, 16).toString('latin1')}`);
  // Named by the period's first and last day.
  assert.equal(certificate.name, `service-certificate-${first}-${today}.pdf`);
  await textMatches(page.getByTestId('service-status'), new RegExp(`已下载 ${certificate.name}`));
  // The same address without the token is refused: a plain link would not do.
  assert.equal((await api('GET', `/api/service-records/certificate?from=${first}&to=${to}`)).status, 401);

  // The CSV: the header, the lawyer's own line, and the total (for one volunteer, the same figures).
  const csv = await downloaded(page, 'service-csv');
  const lines = csv.bytes.toString('utf8').trim().split('\n');
  assert.equal(lines[0], CSV_HEADER);
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[1], new RegExp(`^${made.lawyerId},".*",2,\\d+,0,1,2,4\\.50$`));
  assert.match(lines[2], /^,"total",2,\d+,0,1,2,4\.50$/);

  // Another period: nothing in it.
  await page.getByTestId('service-from').fill('2020-01-01');
  await page.getByTestId('service-to').fill('2020-01-31');
  await page.getByTestId('service-show').click();
  await eventually(async () => assert.equal(await value('service-consultations'), 0));
  await textMatches(page.getByTestId('service-ratings'), /暂无评价/);
  // A period the API would refuse is said here, nothing asked.
  await page.getByTestId('service-to').fill('2019-12-31');
  await page.getByTestId('service-show').click();
  await eventually(async () => assert.equal(await page.getByTestId('service-status').getAttribute('data-error-code'), 'service_range'));
  await page.getByTestId('service-from').fill(first);
  await page.getByTestId('service-to').fill(today);
  await page.getByTestId('service-show').click();
  await eventually(async () => assert.equal(await value('service-consultations'), 2));

  await switchTo(page, 'en');
  await textMatches(page.getByTestId('service-ratings'), /^2, average 4\.50 \/ 5$/);
  await textMatches(block.locator('h3'), /My service record/);
  await checkScreen(page, 'service-lawyer-page-en');
  await screenshot(block, 'service-lawyer-en');
  await switchTo(page, 'zh');
  assertClean(problems);
  await context.close();
});

/**
 * The table's lines as the page shows them: key → {field: value}, the total under ''.
 * @param {import('playwright-core').Page} page
 */
const tableLines = (page) => page.getByTestId('service-records-table').evaluate((table) => {
  const out = {};
  for (const row of table.querySelectorAll('tbody tr, tfoot tr')) {
    const key = row.closest('tfoot') ? '' : row.dataset.key;
    out[key] = { name: row.querySelector('th').textContent };
    for (const cell of row.querySelectorAll('td[data-field]')) out[key][cell.dataset.field] = cell.dataset.value;
  }
  return out;
});

/** The API's lines in the same shape (names of lines, values as the page keeps them). */
function apiLines(records) {
  const out = {};
  for (const line of [...records.lines, { ...records.total, key: '' }]) {
    out[line.key] = {};
    for (const field of FIELDS) out[line.key][field] = line[field] == null ? '' : String(line[field]);
  }
  return out;
}

test('the coordinator\'s service records: the API\'s numbers per volunteer, team and region, the CSV, a certificate and the monthly report', async () => {
  assert.equal(made.consultations.length, 2, 'the first test made the consultations');
  const { first, today, month, to } = thisMonth();
  const token = await accessToken(server, 'demo-coordinator');
  const { context, page, problems } = await openApp('/coordinator', 'demo-coordinator');
  const section = page.getByTestId('service-records');
  await visible(section);
  assert.equal(await page.locator('.section-nav a[href="#service-records-heading"]').isVisible(), true);
  await eventually(async () => assert.equal(await page.getByTestId('service-records-from').inputValue(), first));
  assert.equal(await page.getByTestId('service-records-to').inputValue(), today);
  await section.scrollIntoViewIfNeeded();

  for (const by of ['volunteer', 'team', 'region']) {
    if (by !== 'volunteer') await page.getByTestId('service-records-by').selectOption(by);
    const { status, body } = await api('GET', `/api/service-records?from=${first}&to=${to}&by=${by}`, token);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.total.consultations, 2, JSON.stringify(body));
    const expected = apiLines(body);
    await eventually(async () => {
      const shown = await tableLines(page);
      const values = Object.fromEntries(Object.entries(shown).map(([k, v]) => [k, Object.fromEntries(FIELDS.map((f) => [f, v[f]]))]));
      assert.deepEqual(values, expected);
      for (const line of body.lines) assert.equal(shown[line.key].name, line.name);
    });
    if (by === 'volunteer') {
      assert.ok(body.lines.some((l) => l.key === made.lawyerId));
      await checkScreen(page, 'service-coordinator-page-zh');
      await screenshot(section, 'service-coordinator-volunteer-zh');
    } else {
      await screenshot(section, `service-coordinator-${by}-zh`);
      // Certificates are a volunteer's: no buttons per team or region.
      assert.equal(await page.locator('[data-testid^="service-certificate-"]').count(), 0);
    }
  }
  await page.getByTestId('service-records-by').selectOption('volunteer');
  await visible(page.getByTestId(`service-row-${made.lawyerId}`));
  await textMatches(page.getByTestId(`service-row-${made.lawyerId}`), /卓玛律师.*2.*4\.50/);
  await textMatches(page.getByTestId('service-total'), /合计/);

  // The CSV of the same query.
  const csv = await downloaded(page, 'service-records-csv');
  assert.equal(csv.name, `service-volunteer-${first}-${today}.csv`);
  const lines = csv.bytes.toString('utf8').trim().split('\n');
  assert.equal(lines[0], CSV_HEADER);
  assert.ok(lines.some((l) => l.startsWith(`${made.lawyerId},`)), lines.join('\n'));
  assert.match(lines.at(-1), /^,"total",2,/);

  // The lawyer's certificate, from the row.
  const certificate = await downloaded(page, `service-certificate-${made.lawyerId}`);
  assert.ok(isPdf(certificate.bytes));
  await textMatches(page.getByTestId('service-records-download'), /已下载/);

  // The monthly report of the region, this month (the last whole month is offered first).
  const months = await page.getByTestId('monthly-report-month').locator('option').evaluateAll((all) => all.map((o) => o.value));
  assert.equal(months[0], month);
  assert.equal(await page.getByTestId('monthly-report-month').inputValue(), months[1]);
  assert.equal(await page.getByTestId('monthly-report-region').inputValue(), 'demo-garze');
  await page.getByTestId('monthly-report-month').selectOption(month);
  const report = await downloaded(page, 'monthly-report-download');
  assert.ok(isPdf(report.bytes));
  assert.equal(report.name, `monthly-report-demo-garze-${month}.pdf`);
  await textMatches(page.getByTestId('monthly-report-status'), /monthly-report-demo-garze/);

  // Refused by the server (fonts missing, as a route plays it): said next to the button.
  const noFonts = (route) => route.fulfill({ status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'fonts_missing', message: 'this server has not the fonts its documents are set in' } }) });
  await page.route('**/api/service-records/monthly-report*', noFonts);
  await page.getByTestId('monthly-report-download').click();
  await eventually(async () => assert.equal(await page.getByTestId('monthly-report-status').getAttribute('data-error-code'), 'fonts_missing'));
  await textMatches(page.getByTestId('monthly-report-status'), /字体/);
  await page.unroute('**/api/service-records/monthly-report*', noFonts);

  await switchTo(page, 'en');
  await textMatches(page.getByTestId('service-total'), /Total/);
  await textMatches(section.locator('thead'), /Volunteer.*Consultations.*Hours in calls/);
  await checkScreen(page, 'service-coordinator-page-en');
  await screenshot(section, 'service-coordinator-volunteer-en');
  await switchTo(page, 'zh');
  assertClean(problems);
  await context.close();
});

test('a caseworker sees no service records, and the API refuses them', async () => {
  const { context, page, problems } = await openApp('/coordinator', 'demo-caseworker');
  await visible(page.getByTestId('referrals'));
  assert.equal(await page.getByTestId('service-records').isVisible(), false);
  assert.equal(await page.locator('.section-nav a[href="#service-records-heading"]').isVisible(), false);
  const { first, to } = thisMonth();
  const token = await accessToken(server, 'demo-caseworker');
  assert.equal((await api('GET', `/api/service-records?from=${first}&to=${to}`, token)).status, 403);
  assertClean(problems);
  await context.close();
});
