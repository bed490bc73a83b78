// Every screen once: layout checks (labels, target sizes, overflow,
// untranslated keys) and a PNG in tests/browser/artifacts/ to look at.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, newContext, newKioskContext, watch, assertClean, visible, textMatches, login,
  checkScreen, screenshot,
} from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

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

  await login(page, 'demo-coordinator', 'demo-pass');
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

  await page.getByTestId('lang-en').click();
  await textMatches(page.getByTestId('accounts'), /Accounts/);
  await checkScreen(page, 'coordinator-dashboard-en');
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
  // A portrait kiosk screen too.
  await page.setViewportSize({ width: 800, height: 1280 });
  await page.getByTestId('lang-bo').click();
  await checkScreen(page, 'kiosk-start-bo-portrait', { minTarget: 64 });
  assertClean(problems);
  await context.close();
});
