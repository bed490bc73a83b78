// Accounts: a coordinator creates and deactivates a lawyer account, an admin resets its password;
// wrong passwords are refused on both login pages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, watch, assertClean, visible, hidden, textMatches, eventually, login, unique,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

test('a coordinator creates a lawyer account and deactivates it; the lawyer can then no longer log in', async () => {
  const coordinator = await newContext(browser, server);
  const page = await coordinator.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh', 'Chinese by default');

  await login(page, 'demo-coordinator', 'demo-pass');
  await visible(page.getByTestId('accounts'));
  await textMatches(page.getByTestId('whoami'), /demo-coordinator/);
  await visible(page.getByTestId('account-toggle-demo-lawyer'));
  // One cannot deactivate oneself.
  assert.equal(await page.getByTestId('account-toggle-demo-coordinator').isDisabled(), true);

  const username = `lawyer-${unique()}`;
  const displayName = `测试律师 ${username}`;
  await page.getByTestId('account-username').fill(username);
  await page.getByTestId('account-display-name').fill(displayName);
  await page.getByTestId('account-password').fill('first-pass-1');
  await page.getByTestId('account-role-lawyer').check();
  await page.getByTestId('account-lang-bo').check();
  await page.getByTestId('account-lang-zh').check();
  await page.getByTestId('account-topic-land').check();
  await page.getByTestId('account-topic-family').check();
  await page.getByTestId('account-create').click();

  const toggle = page.getByTestId(`account-toggle-${username}`);
  await visible(toggle);
  await textMatches(page.getByTestId('status'), new RegExp(username));
  const row = page.locator(`tr[data-username="${username}"]`);
  await textMatches(row, new RegExp(`${displayName}.*律师.*藏语、汉语.*土地、婚姻家庭`));
  assert.equal(await page.getByTestId(`account-active-${username}`).getAttribute('data-active'), 'true');
  assert.equal(await page.getByTestId('account-username').inputValue(), '', 'the form is emptied');

  // A coordinator cannot set a lawyer's password (whoever does could sign in as them);
  // an admin resets it inline.
  assert.equal(await page.getByTestId(`account-reset-${username}`).count(), 0, 'no reset button for coordinators');
  const adminContext = await newContext(browser, server);
  const admin = await adminContext.newPage();
  const adminProblems = watch(admin);
  await admin.goto(server.url('/coordinator'));
  await login(admin, 'demo-admin', 'demo-pass');
  await admin.getByTestId(`account-reset-${username}`).click();
  await admin.getByTestId(`account-reset-password-${username}`).fill('second-pass-2');
  await admin.getByTestId(`account-reset-confirm-${username}`).click();
  await hidden(admin.getByTestId(`account-reset-password-${username}`));
  await textMatches(admin.getByTestId('status'), new RegExp(`已重设 ${username}`));
  assertClean(adminProblems);
  await adminContext.close();

  // The lawyer logs in with the new password and sees who they are.
  const lawyerContext = await newContext(browser, server);
  const lawyer = await lawyerContext.newPage();
  const lawyerProblems = watch(lawyer);
  await lawyer.goto(server.url('/lawyer'));
  await login(lawyer, username, 'second-pass-2');
  await textMatches(lawyer.getByTestId('profile-name'), new RegExp(displayName));
  await textMatches(lawyer.getByTestId('profile-languages'), /藏语、汉语/);
  await textMatches(lawyer.getByTestId('profile-topics'), /土地、婚姻家庭/);
  await visible(lawyer.getByTestId('console'));
  await lawyer.getByTestId('logout').click();
  await visible(lawyer.getByTestId('login-submit'));
  assert.equal(await lawyer.evaluate(() => localStorage.getItem('cloudlaw.lawyer')), null, 'tokens are gone');

  // The coordinator deactivates the account.
  await toggle.click();
  await eventually(async () =>
    assert.equal(await page.getByTestId(`account-active-${username}`).getAttribute('data-active'), 'false'));
  await textMatches(toggle, /启用/);
  await textMatches(page.getByTestId('status'), new RegExp(`已停用账户 ${username}`));

  // Now the lawyer is refused.
  await login(lawyer, username, 'second-pass-2');
  await visible(lawyer.getByTestId('login-error'));
  assert.equal(await lawyer.getByTestId('console').isVisible(), false);

  // Logging out of the dashboard leaves nothing on screen.
  await page.getByTestId('logout').click();
  await visible(page.getByTestId('login-submit'));
  assert.equal(await page.getByTestId('accounts').isVisible(), false);
  assert.equal(await page.locator(`tr[data-username="${username}"]`).count(), 0);

  assertClean(problems);
  assertClean(lawyerProblems);
  await coordinator.close();
  await lawyerContext.close();
});

test('an existing username is refused with a visible conflict message', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  await visible(page.getByTestId('account-toggle-demo-lawyer'));
  await page.getByTestId('account-username').fill('demo-lawyer');
  await page.getByTestId('account-display-name').fill('Duplicate');
  await page.getByTestId('account-password').fill('long-enough-1');
  await page.getByTestId('account-role-lawyer').check();
  await page.getByTestId('account-create').click();
  await eventually(async () =>
    assert.equal(await page.getByTestId('status').getAttribute('data-error-code'), 'conflict'));
  assert.equal(await page.getByTestId('status').getAttribute('data-kind'), 'error');
  assertClean(problems);
  await context.close();
});

test('a wrong password shows the login error on both login pages', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  for (const [path, username] of [['/coordinator', 'demo-coordinator'], ['/lawyer', 'demo-lawyer']]) {
    await page.goto(server.url(path));
    await login(page, username, 'not-the-password');
    const error = page.getByTestId('login-error');
    await visible(error);
    assert.equal(await error.getAttribute('data-error-code'), 'invalid_credentials', path);
    await textMatches(error, /用户名或密码错误/);
    assert.equal(await page.getByTestId('logout').isVisible(), false, path);
  }
  // The error follows a language switch.
  await page.getByTestId('lang-en').click();
  await textMatches(page.getByTestId('login-error'), /Wrong username or password/);
  assertClean(problems);
  await context.close();
});

test('an account without the coordinator role cannot use the dashboard', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-lawyer', 'demo-pass');
  const error = page.getByTestId('login-error');
  await visible(error);
  assert.equal(await error.getAttribute('data-error-code'), 'wrong_role');
  assert.equal(await page.evaluate(() => localStorage.getItem('cloudlaw.coordinator')), null);
  assertClean(problems);
  await context.close();
});

test('the dashboard works from the keyboard alone', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  // The app shows its login form once it has started: keys typed before would go nowhere.
  await visible(page.locator('#login-view'));
  await page.getByTestId('login-username').focus();
  await page.keyboard.type('demo-admin');
  await page.keyboard.press('Tab');
  await page.keyboard.type('demo-pass');
  await page.keyboard.press('Enter');
  await visible(page.getByTestId('account-toggle-demo-lawyer'));

  // (As an admin: only admins set others' passwords.)
  // Open the inline password reset with the keyboard; Escape closes it and focus returns.
  await page.getByTestId('account-reset-demo-lawyer').focus();
  await page.keyboard.press('Enter');
  const input = page.getByTestId('account-reset-password-demo-lawyer');
  await visible(input);
  assert.equal(await input.evaluate((el) => el === document.activeElement), true, 'focus moves to the new input');
  await page.keyboard.press('Escape');
  await hidden(input);
  assert.equal(
    await page.getByTestId('account-reset-demo-lawyer').evaluate((el) => el === document.activeElement), true,
    'focus returns to the button');
  assertClean(problems);
  await context.close();
});

test('an expired access token is refreshed once; a dead session goes back to the login form', async () => {
  const context = await newContext(browser, server);
  const first = await context.newPage();
  const firstProblems = watch(first);
  await first.goto(server.url('/coordinator'));
  await login(first, 'demo-coordinator', 'demo-pass');
  await visible(first.getByTestId('accounts'));
  // Closed before its token is broken: a page still open would itself meet the
  // broken token, refresh, and could be gone before it stored the new tokens.
  assertClean(firstProblems);
  await first.close();

  // A broken access token with a good refresh token: the client refreshes and carries on.
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/healthz'));
  await page.evaluate(() => {
    const stored = JSON.parse(localStorage.getItem('cloudlaw.coordinator'));
    localStorage.setItem('cloudlaw.coordinator', JSON.stringify({ ...stored, access_token: 'broken' }));
  });
  await page.goto(server.url('/coordinator'));
  await visible(page.getByTestId('account-toggle-demo-lawyer'));
  const renewed = await page.evaluate(() => JSON.parse(localStorage.getItem('cloudlaw.coordinator')).access_token);
  assert.notEqual(renewed, 'broken');

  // Both tokens broken: logged out, with a message, and the tokens are gone.
  await page.evaluate(() =>
    localStorage.setItem('cloudlaw.coordinator', JSON.stringify({ access_token: 'broken', refresh_token: 'broken' })));
  await page.getByTestId('terminals-refresh').click();
  await visible(page.getByTestId('login-submit'));
  assert.equal(await page.getByTestId('login-error').getAttribute('data-error-code'), 'session_expired');
  assert.equal(await page.getByTestId('accounts').isVisible(), false);
  assert.equal(await page.evaluate(() => localStorage.getItem('cloudlaw.coordinator')), null);
  assertClean(problems);
  await context.close();
});

test('a coordinator edits an account\'s roles, languages and topics inline; granting coordinator is refused', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  const u = 'demo-lawyer-2';
  await visible(page.getByTestId(`account-edit-${u}`));
  await page.getByTestId(`account-edit-${u}`).click();
  // The form starts from what the account has.
  assert.equal(await page.getByTestId(`account-edit-language-zh-${u}`).isChecked(), true);
  assert.equal(await page.getByTestId(`account-edit-language-bo-${u}`).isChecked(), false);
  assert.equal(await page.getByTestId(`account-edit-role-lawyer-${u}`).isChecked(), true);
  await page.getByTestId(`account-edit-language-bo-${u}`).check();
  for (const topic of ['criminal', 'other', 'debt', 'administrative', 'labour']) {
    await page.getByTestId(`account-edit-topic-${topic}-${u}`).uncheck();
  }
  // A language switch keeps what was ticked.
  await page.getByTestId('lang-en').click();
  assert.equal(await page.getByTestId(`account-edit-language-bo-${u}`).isChecked(), true);
  await page.getByTestId('lang-zh').click();
  await page.getByTestId(`account-save-${u}`).click();
  await hidden(page.getByTestId(`account-save-${u}`));
  const row = page.locator(`tr[data-username="${u}"]`);
  await textMatches(row, /藏语、汉语.*土地、婚姻家庭/);
  await textMatches(page.getByTestId('status'), new RegExp(`已保存账户 ${u}`));

  // It survives a reload.
  await page.reload();
  await textMatches(page.locator(`tr[data-username="${u}"]`), /藏语、汉语.*土地、婚姻家庭/);

  // A coordinator may not grant the coordinator role: the refusal shows in the status area.
  await page.getByTestId(`account-edit-${u}`).click();
  await page.getByTestId(`account-edit-role-coordinator-${u}`).check();
  await page.getByTestId(`account-save-${u}`).click();
  await eventually(async () =>
    assert.equal(await page.getByTestId('status').getAttribute('data-error-code'), 'forbidden'));
  assert.equal(await page.getByTestId('status').getAttribute('data-kind'), 'error');
  await visible(page.getByTestId(`account-save-${u}`));
  // Escape closes the form without saving; focus returns to its button.
  await page.getByTestId(`account-edit-role-coordinator-${u}`).focus();
  await page.keyboard.press('Escape');
  await hidden(page.getByTestId(`account-save-${u}`));
  assert.equal(await page.getByTestId(`account-edit-${u}`).evaluate((el) => el === document.activeElement), true);
  await textMatches(page.locator(`tr[data-username="${u}"] td`).nth(1), /^律师$/);
  assertClean(problems);
  await context.close();
});
