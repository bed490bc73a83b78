// The coordinator's live queue and reports: terminals and a lawyer play their
// parts over raw WebSockets (no kiosk or lawyer UI), and the coordinator's page
// shows the queue, the consultation and the people change as they happen; then
// the report counts the consultation and its CSV downloads.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  serverAndBrowserForFile, newContext, watch, assertClean, visible, hidden, textMatches, eventually, login, unique,
  checkScreen, screenshot,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

// ---------------------------------------------------------------- helpers

async function api(method, path, body, token) {
  const response = await fetch(server.url(path), {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const signIn = (username) => api('POST', '/api/auth/login', { username, password: 'demo-pass' });

/** Monday of this week in the demo region's calendar (Asia/Shanghai). */
function thisMonday() {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(new Date()).map((p) => [p.type, p.value]));
  const today = new Date(`${parts.year}-${parts.month}-${parts.day}T00:00:00Z`);
  today.setUTCDate(today.getUTCDate() - ((today.getUTCDay() + 6) % 7));
  return today.toISOString().slice(0, 10);
}

/**
 * Terminals and lawyers without their UIs: WebSockets opened in a page of the
 * server's origin, each message kept in a log that next() reads in order.
 */
async function actors() {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/healthz'));
  await page.evaluate(() => {
    window.socks = {};
    window.logs = {};
    window.openSocket = (name, token) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(token)}`);
      window.logs[name] ??= [];
      ws.onmessage = (event) => window.logs[name].push(JSON.parse(event.data));
      ws.onopen = () => {
        window.socks[name] = ws;
        resolve();
      };
      ws.onerror = () => reject(new Error(`${name}: the WebSocket failed`));
    });
    // The server closes connections silent for 60 s.
    setInterval(() => {
      for (const ws of Object.values(window.socks)) if (ws.readyState === 1) ws.send('{"type":"ping"}');
    }, 20_000);
  });
  const seen = {};
  return {
    problems,
    close: () => context.close(),
    open: (name, token) => page.evaluate(([n, tok]) => window.openSocket(n, tok), [name, token]),
    send: (name, message) => page.evaluate(([n, m]) => window.socks[n].send(JSON.stringify(m)), [name, message]),
    drop: (name) => page.evaluate((n) => window.socks[n].close(), name),
    /** The next message of a type (after the last one next() returned for this actor). */
    next(name, type, match = () => true) {
      return eventually(async () => {
        const log = await page.evaluate((n) => window.logs[n] ?? [], name);
        const from = seen[name] ?? 0;
        const index = log.findIndex((m, i) => i >= from && m.type === type && match(m));
        assert.ok(index >= 0, `${name} got no ${type}: ${JSON.stringify(log.slice(from))}`);
        seen[name] = index + 1;
        return log[index];
      }, 10_000);
    },
  };
}

async function openDashboard() {
  const context = await newContext(browser, server, { acceptDownloads: true });
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  await visible(page.getByTestId('queue'));
  return { context, page, problems };
}

const liveState = (page) => page.getByTestId('live-connection').getAttribute('data-state');

// ---------------------------------------------------------------- tests

test('the coordinator sees the queue, consultations and people change live, then reports and a CSV', async () => {
  const { context, page, problems } = await openDashboard();
  const people = await actors();

  // Connected, and nobody waits yet.
  await eventually(async () => assert.equal(await liveState(page), 'connected'));
  await textMatches(page.getByTestId('live-connection'), /实时更新中/);
  assert.equal(await page.getByTestId('live-connection').getAttribute('role'), 'status');
  await textMatches(page.getByTestId('queue-body'), /现在没有人在等待/);
  await textMatches(page.getByTestId('queue-summary'), /没有人在等待/);
  assert.equal(await page.getByTestId('queue-summary').getAttribute('aria-live'), 'polite');
  await visible(page.getByTestId('queue-region-demo-garze'));

  // Two kiosks: the demo one, and one the coordinator registers through the API.
  const coordinator = (await signIn('demo-coordinator')).access_token;
  const kiosk1 = await api('POST', '/api/terminals/enroll', { code: 'DEMO-TERMINAL-1' });
  const created = await api('POST', '/api/terminals', {
    name: `Tagong station ${unique()}`, township: 'Tagong', region_id: 'demo-garze', languages: ['bo', 'zh'],
  }, coordinator);
  const kiosk2 = await api('POST', '/api/terminals/enroll', { code: created.enrollment_code });
  await people.open('kiosk1', kiosk1.device_token);
  await people.open('kiosk2', kiosk2.device_token);

  // A resident asks: a row appears with its language and topic, not ringing (no lawyer is there).
  await people.send('kiosk1', { type: 'consult.request', language: 'bo', topic: 'land' });
  const first = (await people.next('kiosk1', 'consult.queued')).request;
  const firstRow = page.getByTestId(`queue-row-${first}`);
  await visible(firstRow);
  await textMatches(firstRow, /第 1 位.*藏语.*土地/);
  await textMatches(firstRow, /新都桥镇公共法律服务站/);
  assert.equal(await firstRow.getAttribute('data-ringing'), 'false');
  await textMatches(firstRow.getByTestId('queue-status'), /等待中/);
  await textMatches(page.getByTestId('queue-summary'), /1 人正在等待/);
  await eventually(async () => assert.equal(await page.getByTestId('queue-region-demo-garze').getAttribute('data-waiting'), '1'));
  // The wait counts up between the server's pushes.
  const waited = await firstRow.locator('.tick').textContent();
  assert.match(waited, /^\d+:\d{2}$/);
  await eventually(async () => assert.notEqual(await firstRow.locator('.tick').textContent(), waited), 4_000);

  // The resident cancels: the row goes.
  await people.send('kiosk1', { type: 'consult.cancel', request: first });
  await people.next('kiosk1', 'consult.cancelled');
  await hidden(firstRow);
  await textMatches(page.getByTestId('queue-body'), /现在没有人在等待/);

  // A lawyer comes on and is available: in the people list, and on the on-duty list's live badge.
  const lawyerLogin = await signIn('demo-lawyer');
  const lawyerId = lawyerLogin.account.id;
  await people.open('lawyer', lawyerLogin.access_token);
  await people.send('lawyer', { type: 'presence.set', state: 'available' });
  await people.next('lawyer', 'presence', (m) => m.state === 'available');
  const personRow = page.getByTestId(`person-row-${lawyerId}`);
  await eventually(async () => assert.equal(await personRow.getAttribute('data-state'), 'available'));
  await textMatches(personRow, /卓玛律师 Lawyer Drolma.*律师.*藏语、汉语.*有空.*值班中/);
  await textMatches(page.getByTestId(`on-duty-state-${lawyerId}`), /现在：有空/);
  await textMatches(page.getByTestId('queue-summary'), /1 位律师或翻译有空/);

  // A resident asks again: the lawyer is rung, and the row says so.
  await people.send('kiosk1', { type: 'consult.request', language: 'bo', topic: 'land' });
  const second = (await people.next('kiosk1', 'consult.queued')).request;
  const offer = await people.next('lawyer', 'consult.offer', (m) => m.request === second);
  const secondRow = page.getByTestId(`queue-row-${second}`);
  await eventually(async () => assert.equal(await secondRow.getAttribute('data-ringing'), 'true'));
  await textMatches(secondRow.getByTestId('queue-status'), /正在呼叫律师/);
  await eventually(async () => assert.equal(await personRow.getAttribute('data-state'), 'ringing'));

  // The lawyer accepts: the request leaves the queue and a consultation is in progress.
  await people.send('lawyer', { type: 'consult.accept', request: offer.request });
  const started = await people.next('lawyer', 'consult.started');
  await people.next('kiosk1', 'consult.started');
  await hidden(secondRow);
  const consultationRow = page.getByTestId(`consultation-row-${started.consultation}`);
  await visible(consultationRow);
  await textMatches(consultationRow, /藏语.*土地.*卓玛律师 Lawyer Drolma/);
  await textMatches(consultationRow.getByTestId('consultation-connection'), /各方都在线/);
  await eventually(async () => assert.equal(await personRow.getAttribute('data-state'), 'in_consultation'));
  await textMatches(page.getByTestId(`on-duty-state-${lawyerId}`), /现在：咨询中/);
  await textMatches(page.getByTestId('queue-summary'), /1 场咨询正在进行/);

  // Another resident waits meanwhile (nobody free to ring).
  await people.send('kiosk2', { type: 'consult.request', language: 'zh', topic: 'family' });
  const third = (await people.next('kiosk2', 'consult.queued')).request;
  const thirdRow = page.getByTestId(`queue-row-${third}`);
  await visible(thirdRow);
  await textMatches(thirdRow, /汉语.*婚姻家庭/);
  await textMatches(thirdRow, new RegExp(created.terminal.name));
  assert.equal(await thirdRow.getAttribute('data-ringing'), 'false');

  // The live queue, with someone waiting and a consultation in progress, in both languages.
  await checkScreen(page, 'coordinator-live-zh');
  await screenshot(page.getByTestId('queue'), 'coordinator-queue-zh');
  await screenshot(page.getByTestId('lawyers-on-duty'), 'coordinator-on-duty-live-zh');
  await page.getByTestId('lang-en').click();
  await textMatches(thirdRow, /Chinese.*Family/);
  await textMatches(consultationRow, /Tibetan.*Land.*Lawyer Drolma/);
  await textMatches(page.getByTestId('live-connection'), /Live/);
  await textMatches(page.getByTestId(`on-duty-state-${lawyerId}`), /Now: In consultation/);
  await checkScreen(page, 'coordinator-live-en');
  await screenshot(page.getByTestId('queue'), 'coordinator-queue-en');
  await page.getByTestId('lang-zh').click();
  await textMatches(thirdRow, /汉语.*婚姻家庭/);

  // The resident's kiosk drops: the consultation waits for it, and shows so; it comes back.
  await people.drop('kiosk1');
  await eventually(async () => assert.equal(await consultationRow.getAttribute('data-waiting-for'), 'resident'));
  await textMatches(consultationRow.getByTestId('consultation-connection'), /等待居民重新连接/);
  await people.open('kiosk1', kiosk1.device_token);
  await people.next('kiosk1', 'consult.started', (m) => m.resumed);
  await eventually(async () => assert.equal(await consultationRow.getAttribute('data-waiting-for'), ''));

  // Hang up: the consultation goes; the lawyer is in wrap-up. The resident rates it.
  await people.send('lawyer', { type: 'consult.hangup', consultation: started.consultation });
  await people.next('kiosk1', 'consult.ended');
  await hidden(consultationRow);
  await textMatches(page.getByTestId('consultations-body'), /现在没有正在进行的咨询/);
  await eventually(async () => assert.equal(await personRow.getAttribute('data-state'), 'wrap_up'));
  await people.send('kiosk1', { type: 'consult.rate', consultation: started.consultation, rating: 5 });
  await people.next('kiosk1', 'consult.rated');
  await people.send('kiosk2', { type: 'consult.cancel', request: third });
  await hidden(thirdRow);

  // Reports: the nav link brings the section into view; this week counts the consultation.
  await page.locator('nav a[href="#reports-heading"]').click();
  const reports = page.getByTestId('reports');
  await page.getByTestId('reports-show').click();
  await textMatches(page.getByTestId('reports-status'), /按周/);
  await eventually(async () => {
    const total = Number(await page.getByTestId('reports-total-consultations').locator('.total-value').textContent());
    assert.ok(total >= 1, `consultations: ${total}`);
  });
  const monday = thisMonday();
  const chart = page.getByTestId('chart-consultations');
  assert.ok(await chart.locator('svg.chart-svg rect.bar').count() >= 1, 'a bar for the consultation');
  await chart.getByTestId('chart-consultations-table-toggle').click();
  const weekRow = chart.locator(`table tbody tr[data-period="${monday}"]`);
  await visible(weekRow);
  const cells = await weekRow.locator('td').allTextContents();
  assert.ok(Number(cells.at(-1)) >= 1, `this week's total: ${cells}`);
  await textMatches(chart.locator('table thead'), /藏语/);
  // Abandonment: the two cancelled requests and the one matched request this week.
  const abandonRow = page.getByTestId('chart-abandonment').locator(`table tbody tr[data-period="${monday}"]`);
  assert.match((await abandonRow.locator('td').allTextContents()).join(' '), /\d+ \d+ \d+(\.\d+)?%/);
  // Satisfaction: the rating of 5.
  await textMatches(page.getByTestId('reports-total-rating'), /5\.0/);
  // Each chart has a title, axis labels and a legend.
  for (const id of ['consultations', 'waits', 'abandonment', 'satisfaction']) {
    const figure = page.getByTestId(`chart-${id}`);
    await textMatches(figure.locator('.chart-title'), /\S/);
    assert.equal(await figure.locator('text.axis-label').count(), 2, `${id}: two axis labels`);
    assert.ok(await figure.locator('.chart-legend li').count() >= 1, `${id}: a legend`);
    assert.equal(await figure.locator('svg.chart-svg').getAttribute('role'), 'img');
  }
  // Break down by topic instead of language.
  await page.getByTestId('reports-breakdown').selectOption('topic');
  await textMatches(chart.locator('table thead'), /土地/);
  await textMatches(chart.locator('.chart-legend'), /土地/);
  await checkScreen(page, 'coordinator-reports-page-zh');
  await screenshot(reports, 'coordinator-reports-zh');

  // The CSV of the same query: a header and this week's line.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('reports-csv').click()]);
  assert.match(download.suggestedFilename(), /^consultations-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = (await readFile(await download.path(), 'utf8')).trim().split('\n');
  assert.equal(csv[0], 'period_start,region_id,language,topic,requests,consultations,abandoned,abandonment_rate,wait_p50_secs,wait_p90_secs,ratings,rating_avg,channel');
  assert.ok(csv.some((line) => line.startsWith(`${monday},"demo-garze",bo,land,`)), csv.join('\n'));

  await page.getByTestId('lang-en').click();
  await textMatches(page.getByTestId('chart-consultations').locator('.chart-title'), /Consultations per week/);
  await textMatches(chart.locator('table thead'), /Land/);
  await checkScreen(page, 'coordinator-reports-page-en');
  await screenshot(reports, 'coordinator-reports-en');

  // Monthly: the same consultation, in this month.
  await page.getByTestId('reports-period').selectOption('month');
  await textMatches(page.getByTestId('reports-status'), /per month/);
  await textMatches(page.getByTestId('chart-consultations').locator('.chart-title'), /Consultations per month/);
  await eventually(async () => {
    const total = Number(await page.getByTestId('reports-total-consultations').locator('.total-value').textContent());
    assert.ok(total >= 1);
  });

  assertClean(problems);
  assertClean(people.problems);
  await people.close();
  await context.close();
});

test('reports: a period without data, and dates out of order', async () => {
  const { context, page, problems } = await openDashboard();
  await page.getByTestId('reports-from').fill('2001-01-01');
  await page.getByTestId('reports-to').fill('2001-03-31');
  await page.getByTestId('reports-show').click();
  await visible(page.getByTestId('reports-empty'));
  await textMatches(page.getByTestId('reports-empty'), /这段时间没有数据/);
  assert.equal(await page.getByTestId('chart-consultations').count(), 0);
  await screenshot(page.getByTestId('reports'), 'coordinator-reports-empty-zh');

  await page.getByTestId('reports-to').fill('2000-12-01');
  await page.getByTestId('reports-show').click();
  await visible(page.getByTestId('reports-error'));
  await textMatches(page.getByTestId('reports-error'), /结束不能早于开始/);
  await page.getByTestId('reports-to').fill('2002-06-01');
  await page.getByTestId('reports-show').click();
  await textMatches(page.getByTestId('reports-error'), /最多统计 366 天/);
  assertClean(problems);
  await context.close();
});

/** A busy quarter: twelve weeks of made-up report lines (three languages, three topics). */
function busyQuarter(monday) {
  const lines = [];
  const weekStart = (i) => {
    const d = new Date(`${monday}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() - 7 * (11 - i));
    return d.toISOString().slice(0, 10);
  };
  for (let week = 0; week < 12; week += 1) {
    for (const [l, language] of ['bo', 'zh', 'en'].entries()) {
      for (const [k, topic] of ['land', 'family', 'labour'].entries()) {
        const consultations = (week * 3 + l * 5 + k * 7) % 6 + (language === 'en' ? 0 : 2);
        const abandoned = (week + l + k) % 3;
        const ratings = Math.max(0, consultations - 1);
        lines.push({
          period_start: weekStart(week), region_id: 'demo-garze', language, topic,
          requests: consultations + abandoned, consultations, abandoned,
          abandonment_rate: consultations + abandoned ? abandoned / (consultations + abandoned) : null,
          wait_p50_secs: consultations ? 40 + 25 * ((week + k) % 8) : null,
          wait_p90_secs: consultations ? 200 + 60 * ((week + l) % 9) : null,
          ratings, rating_avg: ratings ? 3 + ((week + l + k) % 3) / 2 : null,
        });
      }
    }
  }
  return lines;
}

/** The server's wait summaries for made-up lines: per week and in all, per region and over all. */
function waitSummaries(lines, totals = {}) {
  const waits = [];
  const regions = [...new Set(lines.map((l) => l.region_id))];
  const weeks = [...new Set(lines.map((l) => l.period_start))];
  for (const [w, period] of weeks.entries()) {
    for (const region of [null, ...regions]) {
      waits.push({ period_start: period, region_id: region, waits: 10, wait_p50_secs: 95 + 3 * w, wait_p90_secs: 400 + 5 * w });
    }
  }
  for (const region of [null, ...regions]) {
    const p50 = totals[region ?? ''] ?? 100;
    waits.push({ period_start: null, region_id: region, waits: 120, wait_p50_secs: p50, wait_p90_secs: 2 * p50 });
  }
  return waits;
}

const mss = (secs) => `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;

test('reports: a busy quarter, stacked by language or topic, with the same figures in the tables', async () => {
  const { context, page, problems } = await openDashboard();
  const monday = thisMonday();
  const lines = busyQuarter(monday);
  const waits = waitSummaries(lines);
  // The JSON report is made up; the CSV still comes from the server.
  await page.route((url) => url.pathname === '/api/reports/consultations', async (route) => {
    const url = new URL(route.request().url());
    if (url.searchParams.get('format') === 'csv') return route.continue();
    return route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ from: url.searchParams.get('from'), to: url.searchParams.get('to'), period: 'week', lines, waits }),
    });
  });
  await page.locator('nav a[href="#reports-heading"]').click();
  await page.getByTestId('reports-show').click();
  const sum = (key, pick = () => true) => lines.filter(pick).reduce((a, l) => a + l[key], 0);
  await textMatches(page.getByTestId('reports-total-consultations'), new RegExp(String(sum('consultations'))));
  await textMatches(page.getByTestId('reports-total-requests'), new RegExp(String(sum('requests'))));

  // Consultations: one stacked segment per language and week with any; the table sums them.
  const chart = page.getByTestId('chart-consultations');
  await textMatches(chart.locator('.chart-legend'), /藏语.*汉语.*英语/);
  const segments = new Set(lines.filter((l) => l.consultations).map((l) => `${l.period_start}|${l.language}`)).size;
  assert.equal(await chart.locator("svg.chart-svg rect.bar").count(), segments);
  const weekRow = chart.locator(`tbody tr[data-period="${monday}"]`);
  const thisWeek = (pick) => sum('consultations', (l) => l.period_start === monday && pick(l));
  assert.deepEqual((await weekRow.locator('td').allTextContents()).map(Number), [
    thisWeek((l) => l.language === 'bo'), thisWeek((l) => l.language === 'zh'), thisWeek((l) => l.language === 'en'), thisWeek(() => true),
  ]);
  await textMatches(chart.locator('tfoot'), new RegExp(`${sum('consultations')}$`));

  // Waits: this week's median and 90th percentile as the server worked them out over the
  // requests (not a mean of the lines' medians), as m:ss; and the whole quarter's.
  const week = waits.find((w) => w.period_start === monday && w.region_id === null);
  const waitCells = await page.getByTestId('chart-waits').locator(`tbody tr[data-period="${monday}"] td`).allTextContents();
  assert.deepEqual(waitCells.slice(0, 2), [mss(week.wait_p50_secs), mss(week.wait_p90_secs)]);
  await textMatches(page.getByTestId('reports-total-wait'), /1:40.*3:20/);
  await textMatches(page.getByTestId('chart-waits').locator('text.axis-label').first(), /分钟/);

  await checkScreen(page, 'coordinator-reports-busy-page-zh');
  await screenshot(page.getByTestId('reports'), 'coordinator-reports-busy-zh');
  await page.getByTestId('reports-breakdown').selectOption('topic');
  await textMatches(chart.locator('.chart-legend'), /土地.*婚姻家庭.*劳动/);
  await page.getByTestId('lang-en').click();
  await textMatches(chart.locator('.chart-legend'), /Land.*Family.*Labour/);
  await checkScreen(page, 'coordinator-reports-busy-page-en');
  await screenshot(page.getByTestId('reports'), 'coordinator-reports-busy-en');

  // A narrow window: the charts redraw to fit, nothing spills out of the page.
  await page.setViewportSize({ width: 420, height: 900 });
  await eventually(async () => {
    const width = await chart.locator('svg.chart-svg').evaluate((el) => el.getBoundingClientRect().width);
    const room = await chart.evaluate((el) => el.clientWidth);
    assert.ok(width <= room, `the chart (${width}px) fits its box (${room}px)`);
  });
  await checkScreen(page, 'coordinator-reports-busy-narrow-en');
  await screenshot(page.getByTestId('reports'), 'coordinator-reports-busy-narrow-en');
  assertClean(problems);
  await context.close();
});

test('an admin with two regions: a tile each, a region column, and the report by region', async () => {
  const admin = (await signIn('demo-admin')).access_token;
  const second = `test-${unique()}`;
  await api('POST', '/api/regions', { id: second, name: `Second region ${second}`, time_zone: 'Asia/Shanghai' }, admin);
  const monday = thisMonday();
  const garze = busyQuarter(monday);
  const other = garze.filter((_, i) => i % 2 === 0).map((l) => ({ ...l, region_id: second }));
  const lines = [...garze, ...other];
  const waits = waitSummaries(lines, { '': 100, 'demo-garze': 200, [second]: 300 });

  const context = await newContext(browser, server, { acceptDownloads: true });
  const page = await context.newPage();
  const problems = watch(page);
  await page.route((url) => url.pathname === '/api/reports/consultations', async (route) => {
    const url = new URL(route.request().url());
    if (url.searchParams.get('format') === 'csv') return route.continue();
    return route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ from: url.searchParams.get('from'), to: url.searchParams.get('to'), period: 'week', lines, waits }),
    });
  });
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-admin', 'demo-pass');

  // The live queue: both regions, the selected one first; a kiosk of the second region asks.
  await eventually(async () => assert.equal(await liveState(page), 'connected'));
  await visible(page.getByTestId(`queue-region-${second}`));
  const tiles = await page.locator('[data-testid="queue-regions"] li').evaluateAll((els) => els.map((el) => el.dataset.testid));
  const selected = await page.getByTestId('region-select').inputValue();
  assert.equal(tiles[0], `queue-region-${selected}`, 'the selected region first');
  const kiosk = await api('POST', '/api/terminals', { name: 'Far station', township: 'Far', region_id: second, languages: ['zh'] }, admin);
  const device = await api('POST', '/api/terminals/enroll', { code: kiosk.enrollment_code });
  const people = await actors();
  await people.open('kiosk', device.device_token);
  await people.send('kiosk', { type: 'consult.request', language: 'zh', topic: 'labour' });
  const request = (await people.next('kiosk', 'consult.queued')).request;
  const row = page.getByTestId(`queue-row-${request}`);
  await textMatches(row, new RegExp(`Second region ${second}.*Far station.*汉语.*劳动`));
  assert.equal(await row.getAttribute('data-region-id'), second);
  await eventually(async () => assert.equal(await page.getByTestId(`queue-region-${second}`).getAttribute('data-waiting'), '1'));
  await textMatches(page.getByTestId('queue-table').locator('thead'), /地区/);
  await people.send('kiosk', { type: 'consult.cancel', request });
  await hidden(row);

  // The report: a region filter, and a breakdown by region.
  await page.locator('nav a[href="#reports-heading"]').click();
  await visible(page.getByTestId('reports-region'));
  await page.getByTestId('reports-show').click();
  const sum = (list) => list.reduce((a, l) => a + l.consultations, 0);
  await textMatches(page.getByTestId('reports-total-consultations'), new RegExp(`^\\D*${sum(lines)}\\D*$`));
  await page.getByTestId('reports-breakdown').selectOption('region');
  const chart = page.getByTestId('chart-consultations');
  await textMatches(chart.locator('.chart-legend'), new RegExp(`Second region ${second}`));
  await textMatches(chart.locator('.chart-legend'), /甘孜/);
  await textMatches(page.getByTestId('reports-total-wait'), /1:40/);
  await page.getByTestId('reports-region').selectOption(second);
  await textMatches(page.getByTestId('reports-total-consultations'), new RegExp(`^\\D*${sum(other)}\\D*$`));
  // That region's own waits, not all regions'.
  await textMatches(page.getByTestId('reports-total-wait'), /5:00.*10:00/);
  await checkScreen(page, 'coordinator-reports-regions-page-zh');

  // The CSV (from the server) keeps the filter: the second region's one real request, cancelled above.
  let [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('reports-csv').click()]);
  assert.match(download.suggestedFilename(), new RegExp(`-${second}\\.csv$`));
  let csv = (await readFile(await download.path(), 'utf8')).trim().split('\n');
  assert.equal(csv[0].split(',')[0], 'period_start');
  assert.deepEqual(csv.slice(1), [`${monday},"${second}",zh,labour,1,0,1,1.000,,,0,,kiosk`]);
  await page.getByTestId('reports-region').selectOption('demo-garze');
  [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('reports-csv').click()]);
  csv = (await readFile(await download.path(), 'utf8')).trim().split('\n');
  assert.ok(csv.slice(1).every((line) => line.split(',')[1] === '"demo-garze"'), csv.join('\n'));

  assertClean(problems);
  assertClean(people.problems);
  await people.close();
  await context.close();
});

test('the live view says when it reconnects, subscribes again and carries on', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  // Between the page and the server: each live connection, and what the page sends on it.
  const links = [];
  await page.routeWebSocket(/\/ws\?token=/, (ws) => {
    const toServer = ws.connectToServer();
    const link = { ws, sent: [] };
    links.push(link);
    ws.onMessage((message) => {
      link.sent.push(JSON.parse(message).type);
      toServer.send(message);
    });
  });
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  await eventually(async () => assert.equal(await liveState(page), 'connected'));
  await eventually(async () => assert.deepEqual(links.map((l) => l.sent.filter((t) => t === 'live.subscribe').length), [1]));
  await textMatches(page.getByTestId('queue-updated'), /\d/);

  // The link breaks: the status says so at once, then the page reconnects and subscribes again.
  await links[0].ws.close({ code: 4000, reason: 'test' });
  await eventually(async () => assert.equal(await liveState(page), 'reconnecting'), 2_000);
  await textMatches(page.getByTestId('live-connection'), /正在重新连接/);
  await eventually(async () => assert.equal(await liveState(page), 'connected'));
  await eventually(async () => assert.equal(links.length, 2));
  await eventually(async () => assert.deepEqual(links[1].sent.filter((t) => t === 'live.subscribe'), ['live.subscribe']));

  // Updates flow on the new connection.
  const kiosk = await api('POST', '/api/terminals', {
    name: `Reconnect station ${unique()}`, township: 'Lhagang', region_id: 'demo-garze', languages: ['zh'],
  }, (await signIn('demo-coordinator')).access_token);
  const device = await api('POST', '/api/terminals/enroll', { code: kiosk.enrollment_code });
  const people = await actors();
  await people.open('kiosk', device.device_token);
  await people.send('kiosk', { type: 'consult.request', language: 'zh', topic: 'debt' });
  const request = (await people.next('kiosk', 'consult.queued')).request;
  await textMatches(page.getByTestId(`queue-row-${request}`), /汉语.*债务/);
  await people.send('kiosk', { type: 'consult.cancel', request });
  await hidden(page.getByTestId(`queue-row-${request}`));

  // Logging out ends the live connection.
  await page.getByTestId('logout').click();
  await visible(page.getByTestId('login-submit'));
  assert.equal(await page.getByTestId('live-connection').textContent(), '');
  assertClean(problems);
  assertClean(people.problems);
  await people.close();
  await context.close();
});
