// Booking a later time at the kiosk: topic, day and time, confirmation in
// Tibetan; the lawyer then sees it. Booking errors and the idle reset.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServerAndBrowser, stopServerAndBrowser, newContext, watch, assertClean, visible, hidden, textMatches,
  eventually, login, enrollKiosk,
} from './support.mjs';

let server;
let browser;
let kiosk;
let page;
let problems;

before(async () => {
  ({ server, browser } = await startServerAndBrowser());
  // One enrolled kiosk for the whole file (the demo code works once), in the region's zone.
  kiosk = await newContext(browser, server, { hasTouch: true, timezoneId: 'Asia/Shanghai' });
  page = await kiosk.newPage();
  problems = watch(page);
  await enrollKiosk(page, server);
});

after(async () => {
  await kiosk?.close();
  await stopServerAndBrowser(server, browser);
});

const deviceToken = () => page.evaluate(() => JSON.parse(localStorage.getItem('cloudlaw.terminal')).access_token);

/** The first offered time of the first day, as its ISO start. */
async function firstSlot() {
  const button = page.locator('[data-testid="slot-times"] button').first();
  await visible(button);
  return (await button.getAttribute('data-testid')).slice('slot-'.length);
}

test('a resident books a time in Tibetan, sees it written large, and the lawyer sees it', async () => {
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'bo');
  await page.getByTestId('book-later').tap();
  await visible(page.getByTestId('booking-topic-screen'));
  for (const code of ['land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other']) {
    await visible(page.getByTestId(`topic-${code}`));
  }
  await textMatches(page.getByTestId('topic-land'), /ས་ཞིང་།/);
  const slotsRequest = page.waitForRequest((r) => r.url().includes('/api/appointments/slots'));
  await page.getByTestId('topic-land').tap();
  const query = new URL((await slotsRequest).url()).searchParams;
  assert.equal(query.get('language'), 'bo');
  assert.equal(query.get('topic'), 'land');

  // Days first; the first day is chosen. Then a later day, and a time on it.
  const days = page.locator('[data-testid="slot-days"] button');
  await visible(days.first());
  assert.equal(await days.first().getAttribute('aria-pressed'), 'true');
  await days.nth(1).tap();
  assert.equal(await days.nth(1).getAttribute('aria-pressed'), 'true');
  const start = await firstSlot();
  await page.getByTestId(`slot-${start}`).tap();
  await visible(page.getByTestId('booking-confirm-screen'));
  const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .format(new Date(start));
  await textMatches(page.getByTestId('confirm-time'), new RegExp(`ཆུ་ཚོད། ${local}`));

  const bookRequest = page.waitForRequest((r) => r.url().endsWith('/api/appointments') && r.method() === 'POST');
  await page.getByTestId('booking-submit').tap();
  assert.deepEqual(JSON.parse((await bookRequest).postData()), { start, language: 'bo', topic: 'land' });
  const done = page.getByTestId('booking-confirmed');
  await visible(done);
  await textMatches(page.getByTestId('done-time'), new RegExp(local));
  const day = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', day: 'numeric' }).format(new Date(start));
  await textMatches(page.getByTestId('done-date'), new RegExp(`^གཟའ་.*ཟླ་\\d+ ཚེས་${day}$`));
  await textMatches(page.getByTestId('done-details'), /ས་ཞིང་། · བོད་སྐད།/);
  // Written large.
  const size = await page.getByTestId('done-time').evaluate((el) => Number.parseFloat(getComputedStyle(el).fontSize));
  assert.ok(size >= 48, `the time is large (${size}px)`);

  await page.getByTestId('booking-finish').tap();
  await visible(page.getByTestId('start-screen'));

  // The lawyer who speaks Tibetan sees it in My appointments.
  const lawyerContext = await newContext(browser, server, { timezoneId: 'Asia/Shanghai' });
  const lawyer = await lawyerContext.newPage();
  const lawyerProblems = watch(lawyer);
  await lawyer.goto(server.url('/lawyer'));
  await login(lawyer, 'demo-lawyer', 'demo-pass');
  const row = lawyer.locator('tr[data-appointment-id]', { hasText: local });
  await visible(row);
  await textMatches(row, /藏语.*土地.*已预约/);
  assertClean(lawyerProblems);
  await lawyerContext.close();
  assertClean(problems);
});

test('a time taken meanwhile shows a simple message with a way back to other times', async () => {
  await page.getByTestId('lang-zh').tap();
  await page.getByTestId('book-later').tap();
  await page.getByTestId('topic-family').tap();
  const start = await firstSlot();
  await page.getByTestId(`slot-${start}`).tap();
  await visible(page.getByTestId('booking-confirm-screen'));
  // Someone takes it first (this kiosk, from elsewhere).
  const response = await fetch(server.url('/api/appointments'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await deviceToken()}` },
    body: JSON.stringify({ start, language: 'zh', topic: 'family' }),
  });
  assert.equal(response.status, 201);
  await page.getByTestId('booking-submit').tap();
  const error = page.getByTestId('booking-error');
  await visible(error);
  assert.ok(['slot_taken', 'terminal_busy', 'no_lawyer_available'].includes(await error.getAttribute('data-error-code')));
  await textMatches(error, /请选别的时间/);
  assert.equal(await page.getByTestId('booking-submit').isVisible(), false);
  await page.getByTestId('booking-error-back').tap();
  await visible(page.getByTestId('booking-slots-screen'));
  await visible(page.locator('[data-testid="slot-times"] button').first());
  // That time is no longer offered.
  assert.equal(await page.getByTestId(`slot-${start}`).count(), 0);
  await page.getByTestId('booking-back-slots').tap();
  await visible(page.getByTestId('booking-topic-screen'));
  await page.getByTestId('booking-back').tap();
  await visible(page.getByTestId('start-screen'));
  assertClean(problems);
});

test('the idle reset leaves the booking flow and forgets it', async () => {
  await page.clock.install();
  await page.reload();
  await visible(page.getByTestId('start-screen'));
  // English first: nobody speaks it, so there is no time to offer.
  await page.getByTestId('lang-en').tap();
  await page.getByTestId('book-later').tap();
  await page.getByTestId('topic-debt').tap();
  await textMatches(page.getByTestId('booking-no-slots'), /no free time/);
  await page.getByTestId('booking-back-slots').tap();
  await page.getByTestId('booking-back').tap();
  await page.getByTestId('lang-zh').tap();
  await page.getByTestId('book-later').tap();
  await page.getByTestId('topic-debt').tap();
  const start = await firstSlot();
  await page.getByTestId(`slot-${start}`).tap();
  await visible(page.getByTestId('booking-confirm-screen'));
  await textMatches(page.locator('#confirm-details'), /债务 · 汉语/);
  await page.clock.fastForward(91_000);
  await visible(page.getByTestId('start-screen'));
  await hidden(page.getByTestId('booking-confirm-screen'));
  await eventually(async () => assert.equal(await page.evaluate(() => document.documentElement.lang), 'bo'));
  assert.equal(await page.locator('#confirm-details').textContent(), '');
  assert.equal(await page.locator('[data-testid="slot-times"] button').count(), 0);
  // Starting again begins at the topic, not where the last person stopped.
  await page.getByTestId('book-later').tap();
  await visible(page.getByTestId('booking-topic-screen'));
  assertClean(problems);
});
