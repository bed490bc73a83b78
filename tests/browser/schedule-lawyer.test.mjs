// The lawyer's schedule: availability that survives a reload, appointments
// with a cancel button, and the private calendar feed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, watch, assertClean, visible, hidden, textMatches, eventually, login, callApi,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

const api = (method, path, token, body) => callApi(server, method, path, token, body);

test('a lawyer replaces the weekly hours, adds a day off, and both survive a reload', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await login(page, 'demo-lawyer-2', 'demo-pass');
  const weekly = page.getByTestId('availability-weekly');
  await visible(page.getByTestId('weekly-row-6'));
  await textMatches(page.getByTestId('availability-zone'), /Asia\/Shanghai/);
  assert.equal(await page.getByTestId('weekly-end-0').inputValue(), '24:00');

  // Remove all seven demo rows with the keyboard (focus stays on a remove button).
  await page.getByTestId('weekly-remove-0').focus();
  for (let i = 0; i < 7; i += 1) await page.keyboard.press('Enter');
  await textMatches(weekly, /还没有每周时间/);

  await page.getByTestId('availability-add-weekly').click();
  await page.getByTestId('weekly-weekday-0').selectOption('tue');
  await page.getByTestId('weekly-start-0').selectOption('09:00');
  await page.getByTestId('weekly-end-0').selectOption('12:30');
  await page.getByTestId('availability-add-weekly').click();
  await page.getByTestId('weekly-start-1').selectOption('14:00');
  await page.getByTestId('weekly-end-1').selectOption('18:00');
  assert.equal(await page.getByTestId('weekly-weekday-1').inputValue(), 'wed', 'a new row takes the next day');

  await page.getByTestId('availability-add-override').click();
  await page.getByTestId('override-date-0').fill('2027-01-05');
  await page.getByTestId('override-kind-0').selectOption('off');

  // An end before its start is caught before sending.
  await page.getByTestId('weekly-end-1').selectOption('08:00');
  await page.getByTestId('availability-save').click();
  await eventually(async () =>
    assert.equal(await page.getByTestId('availability-status').getAttribute('data-error-code'), 'time_order'));
  await page.getByTestId('weekly-end-1').selectOption('18:00');
  await page.getByTestId('availability-save').click();
  await textMatches(page.getByTestId('availability-status'), /值班时间已保存/);

  await page.reload();
  await visible(page.getByTestId('weekly-row-1'));
  assert.equal(await page.getByTestId('weekly-row-2').count(), 0);
  assert.equal(await page.getByTestId('weekly-weekday-0').inputValue(), 'tue');
  assert.equal(await page.getByTestId('weekly-end-0').inputValue(), '12:30');
  assert.equal(await page.getByTestId('weekly-weekday-1').inputValue(), 'wed');
  assert.equal(await page.getByTestId('override-date-0').inputValue(), '2027-01-05');
  assert.equal(await page.getByTestId('override-kind-0').inputValue(), 'off');
  assert.equal(await page.getByTestId('override-end-0').inputValue(), '24:00');
  assertClean(problems);
  await context.close();
});

test('the calendar feed URL serves iCalendar until it is revoked', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await login(page, 'demo-lawyer', 'demo-pass');
  await visible(page.getByTestId('calendar-feed'));
  assert.equal(await page.getByTestId('calendar-url').isVisible(), false);
  await page.getByTestId('calendar-create').click();
  const url = (await textMatches(page.getByTestId('calendar-url'), /^http:\/\/127\.0\.0\.1:\d+\/calendar\/\S+\.ics$/)).trim();
  assert.ok(url.startsWith(server.origin));
  const feed = await fetch(url);
  assert.equal(feed.status, 200);
  assert.match(feed.headers.get('content-type'), /^text\/calendar/);
  assert.match(await feed.text(), /BEGIN:VCALENDAR/);

  await page.getByTestId('calendar-revoke').click();
  await hidden(page.getByTestId('calendar-url'));
  await textMatches(page.getByTestId('calendar-status'), /链接已停用/);
  assert.equal((await fetch(url)).status, 404);
  assertClean(problems);
  await context.close();
});

test('a booked appointment shows in My appointments with local time, and the lawyer cancels it', async () => {
  const enrolled = await api('POST', '/api/terminals/enroll', null, { code: 'DEMO-TERMINAL-1' });
  assert.equal(enrolled.status, 200);
  const device = enrolled.body.device_token;
  const slots = await api('GET', '/api/appointments/slots?language=bo&topic=land', device);
  assert.equal(slots.status, 200);
  const slot = slots.body[3];
  const booked = await api('POST', '/api/appointments', device, { start: slot.start, language: 'bo', topic: 'land' });
  assert.equal(booked.status, 201);
  const id = booked.body.id;

  const context = await newContext(browser, server, { timezoneId: 'Asia/Shanghai' });
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await login(page, 'demo-lawyer', 'demo-pass');
  const row = page.getByTestId(`appointment-${id}`);
  await visible(row);
  await textMatches(page.getByTestId('appointments-zone'), /Asia\/Shanghai/);
  const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .format(new Date(slot.start));
  await textMatches(page.getByTestId(`appointment-start-${id}`), new RegExp(local));
  await textMatches(row, /藏语.*土地.*已预约/);

  await page.getByTestId(`appointment-cancel-${id}`).click();
  await page.getByTestId(`appointment-cancel-confirm-${id}`).click();
  await textMatches(page.getByTestId(`appointment-status-${id}`), /已取消/);
  assert.equal(await page.getByTestId(`appointment-cancel-${id}`).count(), 0);
  const after = await api('GET', `/api/appointments/${id}`, device);
  assert.equal(after.body.status, 'cancelled');
  assertClean(problems);
  await context.close();
});
