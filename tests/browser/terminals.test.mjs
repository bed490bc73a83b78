// Terminals: a coordinator registers a kiosk, the kiosk enrolls with the code,
// the coordinator revokes it and the kiosk falls back to enrollment; the idle
// reset brings a kiosk back to Tibetan.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, newKioskContext, watch, assertClean, visible, hidden, textMatches, eventually,
  login, unique,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

async function enroll(kiosk, code) {
  await visible(kiosk.getByTestId('enroll-screen'));
  await kiosk.getByTestId('enroll-code').fill(code);
  await kiosk.getByTestId('enroll-submit').click();
}

test('a registered terminal enrolls with its code and is sent back to enrollment once revoked', async () => {
  const coordinatorContext = await newContext(browser, server);
  const page = await coordinatorContext.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  await visible(page.getByTestId('terminals'));
  await eventually(async () =>
    assert.ok(await page.locator('[data-testid="region-select"] option[value="demo-garze"]').count()));
  await page.getByTestId('region-select').selectOption('demo-garze');

  const name = `Kiosk ${unique()}`;
  await page.getByTestId('terminal-name').fill(name);
  await page.getByTestId('terminal-township').fill('Tagong');
  await page.getByTestId('terminal-lang-en').check();
  await page.getByTestId('terminal-register').click();

  const code = (await textMatches(page.getByTestId('enrollment-code'), /\S{6,}/)).trim();
  await textMatches(page.getByTestId('enrollment-expiry'), /\d/);
  const row = page.locator('tr[data-terminal-id]', { hasText: name });
  await visible(row);
  const id = await row.getAttribute('data-terminal-id');
  assert.equal(await page.getByTestId(`terminal-status-${id}`).getAttribute('data-status'), 'pending');

  // The kiosk, in its own browser context, enrolls.
  const kioskContext = await newKioskContext(browser, server);
  const kiosk = await kioskContext.newPage();
  const kioskProblems = watch(kiosk);
  await kiosk.goto(server.url('/terminal'));
  await enroll(kiosk, code);
  await visible(kiosk.getByTestId('start-screen'));
  for (const lang of ['bo', 'zh', 'en']) await visible(kiosk.getByTestId(`lang-${lang}`));
  assert.equal(await kiosk.getByTestId('lang-bo').textContent(), 'བོད་ཡིག');
  assert.equal(await kiosk.evaluate(() => document.documentElement.lang), 'bo');
  await textMatches(kiosk.getByTestId('place-text'), new RegExp(`Tagong.*${name}`));
  assert.ok(await kiosk.evaluate(() => localStorage.getItem('cloudlaw.terminal')), 'the device token is kept');

  // The coordinator sees it enrolled, then revokes it.
  await page.getByTestId('terminals-refresh').click();
  await eventually(async () =>
    assert.equal(await page.getByTestId(`terminal-status-${id}`).getAttribute('data-status'), 'enrolled'));
  await page.getByTestId(`terminal-revoke-${id}`).click();
  await page.getByTestId(`terminal-revoke-confirm-${id}`).click();
  await eventually(async () =>
    assert.equal(await page.getByTestId(`terminal-status-${id}`).getAttribute('data-status'), 'revoked'));
  await hidden(page.getByTestId(`terminal-revoke-${id}`));

  // On reload, the kiosk is back on the enrollment screen and has forgotten its token.
  await kiosk.reload();
  await visible(kiosk.getByTestId('enroll-screen'));
  assert.equal(await kiosk.getByTestId('start-screen').isVisible(), false);
  assert.equal(await kiosk.evaluate(() => localStorage.getItem('cloudlaw.terminal')), null);

  assertClean(problems);
  assertClean(kioskProblems);
  await coordinatorContext.close();
  await kioskContext.close();
});

test('a new enrollment code can be issued, and the inline revoke can be cancelled', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  await visible(page.getByTestId('terminals'));
  const name = `Spare ${unique()}`;
  await page.getByTestId('terminal-name').fill(name);
  await page.getByTestId('terminal-township').fill('Bamei');
  await page.getByTestId('terminal-register').click();
  const first = (await textMatches(page.getByTestId('enrollment-code'), /\S{6,}/)).trim();
  const row = page.locator('tr[data-terminal-id]', { hasText: name });
  const id = await row.getAttribute('data-terminal-id');

  await page.getByTestId(`terminal-new-code-${id}`).click();
  await eventually(async () => assert.notEqual((await page.getByTestId('enrollment-code').textContent()).trim(), first));

  await page.getByTestId(`terminal-revoke-${id}`).click();
  await page.getByTestId(`terminal-revoke-cancel-${id}`).click();
  await visible(page.getByTestId(`terminal-revoke-${id}`));
  assert.equal(await page.getByTestId(`terminal-status-${id}`).getAttribute('data-status'), 'pending');
  assertClean(problems);
  await context.close();
});

test('a wrong enrollment code shows an error on the kiosk', async () => {
  const context = await newKioskContext(browser, server);
  const kiosk = await context.newPage();
  const problems = watch(kiosk);
  await kiosk.goto(server.url('/terminal'));
  await enroll(kiosk, 'NOPE-NOPE-NOPE');
  const error = kiosk.getByTestId('enroll-error');
  await visible(error);
  assert.match((await error.getAttribute('data-error-code')) ?? '', /invalid_code|rate_limited/);
  assert.equal(await kiosk.getByTestId('start-screen').isVisible(), false);
  assertClean(problems);
  await context.close();
});

test('after 90 s without a touch the kiosk returns to the start screen in Tibetan', async () => {
  const context = await newKioskContext(browser, server);
  const kiosk = await context.newPage();
  const problems = watch(kiosk);
  await kiosk.clock.install();
  await kiosk.goto(server.url('/terminal'));
  await enroll(kiosk, 'DEMO-TERMINAL-1');
  await visible(kiosk.getByTestId('start-screen'));
  await textMatches(kiosk.getByTestId('place-text'), /\S/);

  await kiosk.getByTestId('lang-zh').tap();
  await eventually(async () => assert.equal(await kiosk.evaluate(() => document.documentElement.lang), 'zh'));
  assert.equal(await kiosk.getByTestId('lang-zh').getAttribute('aria-pressed'), 'true');
  await textMatches(kiosk.locator('#start-heading'), /欢迎/);

  await kiosk.clock.fastForward(80_000);
  assert.equal(await kiosk.evaluate(() => document.documentElement.lang), 'zh', 'not yet');
  await kiosk.clock.fastForward(11_000);
  await eventually(async () => assert.equal(await kiosk.evaluate(() => document.documentElement.lang), 'bo'));
  await visible(kiosk.getByTestId('start-screen'));
  assert.equal(await kiosk.getByTestId('lang-bo').getAttribute('aria-pressed'), 'true');
  await textMatches(kiosk.locator('#start-heading'), /ཕེབས/);
  assertClean(problems);
  await context.close();
});
