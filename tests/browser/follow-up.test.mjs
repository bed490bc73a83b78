// A follow-up appointment booked from the lawyer's record column: a real
// consultation (the kiosk's live connection without its screens, the demo
// lawyer answering in /lawyer), then in the "Follow-up appointment" block a
// date and a start time next week. The API has the appointment at the same
// kiosk, with the lawyer, in the consultation's language and topic; the
// kiosk's own list has it, and so has the lawyer's "My appointments". The
// record's empty outcome becomes "follow-up appointment", a chosen one stays.
// Refusals each get their words: no time, too soon, off the grid, the same
// slot again, and (played by a route) a hotline caller without a kept number;
// a booking by phone (played by a route) says so. The booked lines survive a
// reload in the wrap-up, and go with the record once it is saved.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, watch, assertClean, visible, hidden, textMatches, eventually, login,
  checkScreen, screenshot, liveClient, accessToken, callApi, switchLanguage as switchTo,
} from './support.mjs';

// Offers last a minute, long enough for a busy machine.
const CONFIG = '[live]\noffer_timeout_secs = 60\n';
const ZONE = 'Asia/Shanghai';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started), { config: CONFIG });

const api = (method, url, token, body) => callApi(server, method, url, token, body);

/** An instant's date ("YYYY-MM-DD") and time ("HH:MM") in the zone. */
function local(ms) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

/** "YYYY-MM-DD" plus n days. */
function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** A date and time in Shanghai (UTC+8, no summer time) as the API writes instants. */
const utc = (date, time) => new Date(`${date}T${time}:00+08:00`).toISOString().replace('.000Z', 'Z');

/** Fills the block's date and time and books; resolves when the status line has answered. */
async function book(page, date, time) {
  await page.getByTestId('follow-up-date').fill(date);
  await page.getByTestId('follow-up-time').fill(time);
  const answered = page.waitForResponse((r) => r.url().endsWith('/follow-up') && r.request().method() === 'POST');
  await page.getByTestId('follow-up-submit').click();
  const response = await answered;
  await eventually(async () => assert.notEqual(await page.getByTestId('follow-up-status').textContent(), ''));
  return response;
}

const errorCode = (page) => page.getByTestId('follow-up-status').getAttribute('data-error-code');

test('the lawyer books a follow-up next week from the record column; refusals are explained', async () => {
  const enrolled = await api('POST', '/api/terminals/enroll', null, { code: 'DEMO-TERMINAL-1' });
  assert.equal(enrolled.status, 200);
  const deviceToken = enrolled.body.device_token;
  const terminalId = enrolled.body.terminal.id;

  const context = await newContext(browser, server, { timezoneId: ZONE });
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await login(page, 'demo-lawyer', 'demo-pass');
  await eventually(async () => assert.equal(await page.getByTestId('live-connection').getAttribute('data-state'), 'up'), 20_000);
  await page.getByTestId('go-online').click();
  await visible(page.getByTestId('go-offline'));
  const lawyerToken = await accessToken(server, 'demo-lawyer');
  const me = (await api('GET', '/api/me', lawyerToken)).body.account;

  // A resident asks at the kiosk; the lawyer answers.
  const resident = await liveClient(browser, server, deviceToken);
  await resident.next('welcome');
  await resident.send({ type: 'consult.request', language: 'zh', topic: 'family' });
  await visible(page.getByTestId('incoming-call'));
  await page.getByTestId('accept-call').click();
  const started = await resident.next('consult.started');
  await visible(page.getByTestId('call-view'));

  // The block is in the record column during the call, its times in the browser's zone.
  const block = page.getByTestId('follow-up');
  await visible(block);
  await textMatches(page.getByTestId('follow-up-zone'), /Asia\/Shanghai/);
  const now = local(Date.now());
  assert.equal(await page.getByTestId('follow-up-date').getAttribute('min'), now.date, 'no day before today is offered');
  assert.equal(await page.getByTestId('follow-up-booked').isVisible(), false);
  assert.equal(await page.getByTestId('record-outcome').inputValue(), '');

  // Nothing chosen: said before anything is sent.
  await page.getByTestId('follow-up-submit').click();
  await eventually(async () => assert.equal(await errorCode(page), 'follow_up_no_time'));
  await textMatches(page.getByTestId('follow-up-status'), /请选择日期和开始时间/);

  // Too soon: the next half hour on the grid, less than the hour of notice away.
  const soon = local(Math.ceil((Date.now() + 60_000) / 1_800_000) * 1_800_000);
  assert.equal((await book(page, soon.date, soon.time)).status(), 400);
  await eventually(async () => assert.equal(await errorCode(page), 'follow_up_too_soon'));
  await textMatches(page.getByTestId('follow-up-status'), /离现在太近/);

  // Off the grid: the picker takes any minute, the server says how often appointments start.
  const nextWeek = addDays(now.date, 7);
  assert.equal((await book(page, nextWeek, '10:05')).status(), 400);
  await eventually(async () => assert.equal(await errorCode(page), 'follow_up_off_grid'));
  await textMatches(page.getByTestId('follow-up-status'), /不能从这个分钟开始.*every 30 minutes/);
  // Editing the time clears the refusal.
  await page.getByTestId('follow-up-time').fill('10:30');
  await eventually(async () => assert.equal(await page.getByTestId('follow-up-status').textContent(), ''));

  // Next week at 10:00: booked at this kiosk, and the empty outcome says so.
  const created = await book(page, nextWeek, '10:00');
  assert.equal(created.status(), 201);
  const appointment = await created.json();
  const line = page.getByTestId(`follow-up-booked-${appointment.id}`);
  await visible(line);
  const shown = new Intl.DateTimeFormat('zh', { timeZone: ZONE, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .format(new Date(appointment.start));
  assert.equal(shown, '10:00');
  await textMatches(line, /^✓已预约：.*10:00.*，在这个终端$/);
  await textMatches(page.getByTestId('follow-up-status'), /也列在“我的预约”中.*处理结果已设为“约定后续咨询”/);
  assert.equal(await page.getByTestId('record-outcome').inputValue(), 'follow_up_appointment');
  assert.equal(await page.getByTestId('follow-up-time').inputValue(), '', 'the time is emptied for another');

  // The API: the same kiosk, the lawyer, the consultation's language and topic.
  assert.equal(appointment.start, utc(nextWeek, '10:00'));
  const mine = (await api('GET', '/api/appointments', lawyerToken)).body;
  const stored = mine.find((a) => a.id === appointment.id);
  assert.ok(stored, JSON.stringify(mine));
  assert.equal(stored.terminal_id, terminalId);
  assert.equal(stored.lawyer_id, me.id);
  assert.equal(stored.language, 'zh');
  assert.equal(stored.topic, 'family');
  assert.equal(stored.status, 'booked');
  assert.equal(stored.channel, 'kiosk');
  assert.equal(stored.start, utc(nextWeek, '10:00'));
  const consultation = (await api('GET', `/api/consultations/${started.consultation}`, lawyerToken)).body;
  assert.equal(stored.region_id, consultation.region_id);
  // The kiosk sees it in its own list.
  const kiosk = (await api('GET', '/api/appointments', deviceToken)).body;
  assert.ok(kiosk.some((a) => a.id === appointment.id && a.start === stored.start && a.lawyer_id === me.id), JSON.stringify(kiosk));
  // And the lawyer's "My appointments" was read again.
  const row = page.getByTestId(`appointment-${appointment.id}`);
  await visible(row);
  await textMatches(row, /汉语.*婚姻家庭.*已预约/);
  await textMatches(page.getByTestId(`appointment-start-${appointment.id}`), /10:00/);

  // The same slot again: the resident's kiosk (and the lawyer) are booked then.
  assert.equal((await book(page, nextWeek, '10:00')).status(), 409);
  await eventually(async () => assert.match(await errorCode(page), /^follow_up_(terminal_busy|slot_taken)$/));
  await textMatches(page.getByTestId('follow-up-status'), /已经有预约了。请选择其他时间/);
  assert.equal(await page.locator('[data-testid^="follow-up-booked-"]').count(), 1);

  // A chosen outcome stays: a second follow-up the next day at 11:00.
  await page.getByTestId('record-outcome').selectOption('advice_given');
  const second = await book(page, addDays(nextWeek, 1), '11:00');
  assert.equal(second.status(), 201);
  const secondId = (await second.json()).id;
  await visible(page.getByTestId(`follow-up-booked-${secondId}`));
  await textMatches(page.getByTestId('follow-up-status'), /^这次预约也列在“我的预约”中。$/);
  assert.equal(await page.getByTestId('record-outcome').inputValue(), 'advice_given');
  await page.getByTestId('record-outcome').selectOption('follow_up_appointment');

  await checkScreen(page, 'follow-up-call-zh');
  await screenshot(block, 'follow-up-block-zh');
  await switchTo(page, 'en');
  await textMatches(line, /^✓Booked: .*10:00.* at this kiosk$/);
  await textMatches(page.getByTestId('follow-up-status'), /^It is also in My appointments\.$/);
  await checkScreen(page, 'follow-up-call-en');
  await screenshot(block, 'follow-up-block-en');

  // A refusal in English too, then back.
  assert.equal((await book(page, nextWeek, '10:00')).status(), 409);
  await textMatches(page.getByTestId('follow-up-status'), /already has an appointment at that time|You already have an appointment then/);
  await screenshot(block, 'follow-up-refused-en');
  await switchTo(page, 'zh');
  await textMatches(page.getByTestId('follow-up-status'), /已经有预约了/);

  // The call ends: the block stays in the wrap-up, and what was booked survives a reload.
  await page.getByTestId('hang-up').click();
  await hidden(page.getByTestId('call-view'));
  await visible(block);
  await page.reload();
  await visible(page.getByTestId('record-form'));
  await visible(page.getByTestId(`follow-up-booked-${appointment.id}`));
  await visible(page.getByTestId(`follow-up-booked-${secondId}`));
  assert.equal(await page.getByTestId('record-outcome').inputValue(), 'follow_up_appointment', 'the outcome is in the draft');

  // A hotline caller (played by routes): booked by phone, or refused without a kept number.
  const byPhone = (route) => route.fulfill({
    status: 201, contentType: 'application/json',
    body: JSON.stringify({ ...stored, id: 'played-phone', terminal_id: 'hotline', channel: 'phone', phone: '138****5678', start: utc(addDays(nextWeek, 2), '09:00') }),
  });
  await page.route('**/api/consultations/*/follow-up', byPhone);
  await book(page, addDays(nextWeek, 2), '09:00');
  const phoneLine = page.getByTestId('follow-up-booked-played-phone');
  await textMatches(phoneLine, /已预约：.*09:00.*电话咨询（138\*\*\*\*5678）/);
  assert.equal(await phoneLine.getAttribute('data-channel'), 'phone');
  await page.unroute('**/api/consultations/*/follow-up', byPhone);
  const noNumber = (route) => route.fulfill({
    status: 409, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'no_number', message: "the caller's number was not kept; they can call the hotline again" } }),
  });
  await page.route('**/api/consultations/*/follow-up', noNumber);
  await book(page, addDays(nextWeek, 2), '09:30');
  await eventually(async () => assert.equal(await errorCode(page), 'follow_up_no_number'));
  await textMatches(page.getByTestId('follow-up-status'), /没有保留这位热线来电者的号码/);
  await switchTo(page, 'en');
  await textMatches(page.getByTestId('follow-up-status'), /number was not kept, so no appointment by phone can be booked/);
  await textMatches(phoneLine, /Booked: .*09:00.* by phone \(138\*\*\*\*5678\)/);
  await screenshot(block, 'follow-up-wrap-up-en');
  await switchTo(page, 'zh');
  await page.unroute('**/api/consultations/*/follow-up', noNumber);

  // Saving the record closes the column.
  await page.getByTestId('record-summary').fill('Divorce: custody questions; a follow-up next week with the documents.');
  await page.getByTestId('record-save').click();
  await hidden(page.getByTestId('record-form'));
  await hidden(block);
  const saved = (await api('GET', `/api/consultations/${started.consultation}`, lawyerToken)).body;
  assert.equal(saved.outcome, 'follow_up_appointment');

  await page.getByTestId('go-offline').click();
  assertClean(problems);
  assertClean(resident.problems);
  await resident.close();
  await context.close();
});
