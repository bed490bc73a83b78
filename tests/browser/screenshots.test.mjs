// Every screen once: layout checks (labels, target sizes, overflow,
// untranslated keys) and a PNG in tests/browser/artifacts/ to look at.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, newKioskContext, watch, assertClean, visible, textMatches, login, checkScreen,
  screenshot,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

test('coordinator screens', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await visible(page.getByTestId('login-submit'));
  await checkScreen(page, 'coordinator-login-zh');
  await page.getByTestId('lang-en').click();
  await textMatches(page.getByTestId('login-submit'), /Log in/);
  await checkScreen(page, 'coordinator-login-en');
  await page.getByTestId('lang-zh').click();

  // As the admin: the screenshots show the inline password reset, which only admins have.
  await login(page, 'demo-admin', 'demo-pass');
  await visible(page.getByTestId('account-toggle-demo-lawyer'));
  await page.getByTestId('account-reset-demo-interpreter').click();
  await checkScreen(page, 'coordinator-dashboard-zh');
  await screenshot(page.getByTestId('accounts'), 'coordinator-accounts');

  await page.getByTestId('terminal-name').fill('Demo kiosk 2');
  await page.getByTestId('terminal-township').fill('Tagong');
  await page.getByTestId('terminal-register').click();
  await textMatches(page.getByTestId('enrollment-code'), /\S{6,}/);
  const id = await page.locator('tr[data-terminal-id]', { hasText: 'Demo kiosk 2' }).getAttribute('data-terminal-id');
  await page.getByTestId(`terminal-revoke-${id}`).click();
  await screenshot(page.getByTestId('terminals'), 'coordinator-terminals');

  // Scheduling: an open team edit, a roster, English coverage with gaps.
  await page.getByTestId('account-reset-demo-interpreter').click();
  await page.getByTestId('account-edit-demo-lawyer-2').click();
  const teamId = await page.locator('tr[data-team-id]').first().getAttribute('data-team-id');
  await page.getByTestId(`team-edit-${teamId}`).click();
  await page.getByTestId('roster-team').selectOption(teamId);
  await page.getByTestId('roster-day-tue').check();
  await page.getByTestId('roster-day-thu').check();
  await page.getByTestId('roster-create').click();
  await visible(page.locator('tr[data-roster-id]').first());
  await page.getByTestId('coverage-language').selectOption('en');
  await textMatches(page.getByTestId('coverage-summary'), /0%/);
  await checkScreen(page, 'coordinator-schedule-zh');
  for (const part of ['teams', 'rosters', 'coverage', 'lawyers-on-duty']) {
    await screenshot(page.getByTestId(part), `coordinator-${part}-zh`);
  }

  await page.getByTestId('lang-en').click();
  await textMatches(page.getByTestId('accounts'), /Accounts/);
  await checkScreen(page, 'coordinator-dashboard-en');
  for (const part of ['teams', 'rosters', 'coverage', 'lawyers-on-duty']) {
    await screenshot(page.getByTestId(part), `coordinator-${part}-en`);
  }
  assertClean(problems);
  await context.close();
});

test('lawyer screens', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await visible(page.getByTestId('login-submit'));
  await checkScreen(page, 'lawyer-login-zh');
  await login(page, 'demo-lawyer', 'wrong-password');
  await visible(page.getByTestId('login-error'));
  await checkScreen(page, 'lawyer-login-error-zh');
  await login(page, 'demo-lawyer', 'demo-pass');
  await textMatches(page.getByTestId('profile-name'), /\S/);
  await visible(page.getByTestId('weekly-row-0'));
  await page.getByTestId('availability-add-override').click();
  await page.getByTestId('calendar-create').click();
  await visible(page.getByTestId('calendar-url'));
  await checkScreen(page, 'lawyer-console-zh');
  await page.getByTestId('lang-en').click();
  await textMatches(page.getByTestId('profile-languages'), /Tibetan/);
  await checkScreen(page, 'lawyer-console-en');
  assertClean(problems);
  await context.close();
});

test('kiosk screens', async () => {
  const context = await newKioskContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/terminal'));
  await visible(page.getByTestId('enroll-screen'));
  await checkScreen(page, 'kiosk-enroll-bo', { minTarget: 64 });
  await page.getByTestId('enroll-lang-zh').click();
  await page.getByTestId('enroll-code').fill('WRONG-CODE');
  await page.getByTestId('enroll-submit').click();
  await visible(page.getByTestId('enroll-error'));
  await checkScreen(page, 'kiosk-enroll-error-zh', { minTarget: 64 });

  await page.getByTestId('enroll-code').fill('DEMO-TERMINAL-1');
  await page.getByTestId('enroll-submit').click();
  await visible(page.getByTestId('start-screen'));
  await textMatches(page.getByTestId('place-text'), /\S/);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'bo', 'a new start is in Tibetan');
  for (const lang of ['bo', 'zh', 'en']) {
    await page.getByTestId(`lang-${lang}`).click();
    await checkScreen(page, `kiosk-start-${lang}`, { minTarget: 64 });
  }
  // Looking up a referral by its code: the empty field, and a code nobody has.
  // (The consent and the reference code come in a call: kiosk-referral.test.mjs.)
  for (const lang of ['bo', 'zh', 'en']) {
    await page.getByTestId(`lang-${lang}`).click();
    await page.getByTestId('check-referral').click();
    await visible(page.getByTestId('referral-status-screen'));
    await checkScreen(page, `kiosk-referral-lookup-${lang}`, { minTarget: 64 });
    await page.getByTestId('referral-code-input').fill('ZZZZ-ZZZZ');
    await page.getByTestId('referral-status-submit').click();
    await visible(page.getByTestId('referral-status-result'));
    await checkScreen(page, `kiosk-referral-lookup-unknown-${lang}`, { minTarget: 64 });
    await page.getByTestId('referral-status-back').click();
    await visible(page.getByTestId('start-screen'));
  }
  // Nobody speaks English yet: no time to offer.
  await page.getByTestId('lang-en').click();
  await page.getByTestId('book-later').click();
  await page.getByTestId('topic-other').click();
  await visible(page.getByTestId('booking-no-slots'));
  await checkScreen(page, 'kiosk-book-noslots-en', { minTarget: 64 });
  await page.getByTestId('booking-back-slots').click();
  await page.getByTestId('booking-back').click();
  // Now demo-lawyer-2 speaks English too.
  const token = (await (await fetch(server.url('/api/auth/login'), {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'demo-coordinator', password: 'demo-pass' }),
  })).json()).access_token;
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const accounts = await (await fetch(server.url('/api/accounts'), { headers: auth })).json();
  const lawyer2 = accounts.find((a) => a.username === 'demo-lawyer-2');
  const patched = await fetch(server.url(`/api/accounts/${lawyer2.id}`), {
    method: 'PATCH', headers: auth, body: JSON.stringify({ languages: ['zh', 'en'] }),
  });
  assert.equal(patched.status, 200);

  // Booking a later time, every screen in every language (a refused booking too).
  for (const [i, lang] of ['bo', 'zh', 'en'].entries()) {
    await page.getByTestId(`lang-${lang}`).click();
    await page.getByTestId('book-later').click();
    await visible(page.getByTestId('topic-land'));
    await checkScreen(page, `kiosk-book-topic-${lang}`, { minTarget: 64 });
    await page.getByTestId('topic-land').click();
    // Tomorrow: late in the day, today may have fewer than three slots left.
    await page.locator('[data-testid^="slot-day-"]').nth(1).click();
    const slot = page.locator('[data-testid="slot-times"] button').nth(i);
    await visible(slot);
    await checkScreen(page, `kiosk-book-slots-${lang}`, { minTarget: 64 });
    await slot.click();
    await visible(page.getByTestId('booking-submit'));
    await checkScreen(page, `kiosk-book-confirm-${lang}`, { minTarget: 64 });
    const refuse = (route) => route.fulfill({
      status: 409, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'slot_taken', message: 'slot taken' } }),
    });
    await page.route('**/api/appointments', refuse);
    await page.getByTestId('booking-submit').click();
    await visible(page.getByTestId('booking-error'));
    await checkScreen(page, `kiosk-book-error-${lang}`, { minTarget: 64 });
    await page.unroute('**/api/appointments', refuse);
    await page.getByTestId('booking-back-confirm').click();
    await slot.click();
    await page.getByTestId('booking-submit').click();
    await visible(page.getByTestId('booking-confirmed'));
    await checkScreen(page, `kiosk-book-done-${lang}`, { minTarget: 64 });
    await page.getByTestId('booking-finish').click();
    await visible(page.getByTestId('start-screen'));
  }

  // A portrait kiosk screen too.
  await page.setViewportSize({ width: 800, height: 1280 });
  await page.getByTestId('lang-bo').click();
  await checkScreen(page, 'kiosk-start-bo-portrait', { minTarget: 64 });
  await page.getByTestId('book-later').click();
  await page.getByTestId('topic-family').click();
  await visible(page.locator('[data-testid="slot-times"] button').first());
  await checkScreen(page, 'kiosk-book-slots-bo-portrait', { minTarget: 64 });
  assertClean(problems);
  await context.close();
});
