// The coordinator's scheduling: teams, rosters, a week of coverage with its
// gaps, and who is on duty now.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, watch, assertClean, visible, hidden, textMatches, eventually, login, unique,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

const cellStates = (page) => page.locator('[data-testid="coverage-grid"] td[data-state]').evaluateAll(
  (cells) => cells.map((c) => c.dataset.state));

test('a coordinator creates a team and a roster, and sees covered hours and gaps in the coverage grid', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  await visible(page.getByTestId('teams'));

  // An English-speaking lawyer: nobody in the demo speaks English, so English has only gaps.
  const username = `en-${unique()}`;
  await page.getByTestId('account-username').fill(username);
  await page.getByTestId('account-display-name').fill(`English Lawyer ${username}`);
  await page.getByTestId('account-password').fill('long-enough-1');
  await page.getByTestId('account-role-lawyer').check();
  await page.getByTestId('account-lang-en').check();
  await page.getByTestId('account-create').click();
  await visible(page.getByTestId(`team-member-${username}`));

  await page.getByTestId('coverage-language').selectOption('en');
  await textMatches(page.getByTestId('coverage-summary'), /英语：本周 0%/);
  await textMatches(page.getByTestId('coverage-week'), /Asia\/Shanghai/);
  let states = await cellStates(page);
  assert.equal(states.length, 7 * 24);
  assert.ok(states.every((s) => s === 'gap'), 'English: all gaps');

  // The demo team shows its member by name.
  await textMatches(page.getByTestId('teams-body'), /卓玛律师 Lawyer Drolma/);

  // Create a team with the new lawyer, posted to the selected region.
  const teamName = `English desk ${unique()}`;
  await page.getByTestId('team-name').fill(teamName);
  await page.getByTestId(`team-member-${username}`).check();
  await page.getByTestId('team-create').click();
  await textMatches(page.getByTestId('status'), new RegExp(`已创建团队 ${teamName}`));
  const teamRow = page.locator('tr[data-team-id]', { hasText: teamName });
  await textMatches(teamRow, new RegExp(`English Lawyer ${username}.*甘孜`));
  const teamId = await teamRow.getAttribute('data-team-id');

  // A roster: Monday and Wednesday, 09:00-12:30, for the next half year.
  await page.getByTestId('roster-team').selectOption(teamId);
  await page.getByTestId('roster-day-mon').check();
  await page.getByTestId('roster-day-wed').check();
  await page.getByTestId('roster-start').selectOption('09:00');
  await page.getByTestId('roster-end').selectOption('12:30');
  const startsOn = await page.getByTestId('roster-starts-on').inputValue();
  assert.match(startsOn, /^\d{4}-\d{2}-\d{2}$/, 'starts on the shown week by default');
  await page.getByTestId('roster-create').click();
  await textMatches(page.getByTestId('rosters-body'), new RegExp(`${teamName}.*周一、周三.*09:00–12:30`));

  // Coverage: Monday and Wednesday 09-12 covered, 12-13 partly, the rest gaps.
  const monday = startsOn;
  const wednesday = new Date(Date.parse(`${monday}T00:00:00Z`) + 2 * 86_400_000).toISOString().slice(0, 10);
  const cell = (date, hour) => page.getByTestId(`coverage-cell-${date}-${hour}`);
  await eventually(async () => assert.equal(await cell(monday, '09').getAttribute('data-state'), 'covered'));
  assert.equal(await cell(monday, '11').getAttribute('data-state'), 'covered');
  assert.equal(await cell(monday, '12').getAttribute('data-state'), 'partial');
  assert.equal(await cell(monday, '13').getAttribute('data-state'), 'gap');
  assert.equal(await cell(monday, '08').getAttribute('data-state'), 'gap');
  assert.equal(await cell(wednesday, '10').getAttribute('data-state'), 'covered');
  await textMatches(cell(monday, '08'), /✕/);
  await textMatches(cell(monday, '09'), /✓/);
  states = await cellStates(page);
  assert.equal(states.filter((s) => s === 'covered').length, 6);
  assert.equal(states.filter((s) => s === 'partial').length, 2);
  // Gaps differ from covered cells by more than colour: a pattern.
  const [gapBg, coveredBg] = await Promise.all([cell(monday, '08'), cell(monday, '09')].map((c) =>
    c.evaluate((el) => getComputedStyle(el).backgroundImage)));
  assert.match(gapBg, /repeating-linear-gradient/);
  assert.equal(coveredBg, 'none');

  // Next week too (the roster runs on); then back.
  await page.getByTestId('coverage-next').click();
  const nextMonday = new Date(Date.parse(`${monday}T00:00:00Z`) + 7 * 86_400_000).toISOString().slice(0, 10);
  await eventually(async () => assert.equal(await cell(nextMonday, '10').getAttribute('data-state'), 'covered'));
  await page.getByTestId('coverage-prev').click();
  await eventually(async () => assert.equal(await cell(monday, '10').getAttribute('data-state'), 'covered'));
  // Tibetan is covered at every hour by the demo lawyers.
  await page.getByTestId('coverage-language').selectOption('bo');
  await eventually(async () => assert.ok((await cellStates(page)).every((s) => s === 'covered')));

  // Edit the team's members: add the demo interpreter.
  await page.getByTestId(`team-edit-${teamId}`).click();
  assert.equal(await page.getByTestId(`team-edit-member-${username}`).isChecked(), true);
  await page.getByTestId('team-edit-member-demo-interpreter').check();
  await page.getByTestId(`team-save-${teamId}`).click();
  await hidden(page.getByTestId(`team-save-${teamId}`));
  await textMatches(page.getByTestId(`team-members-${teamId}`), new RegExp(`English Lawyer.*、.*|.*、English Lawyer`));
  const teams = await (await fetch(server.url('/api/teams'), {
    headers: { authorization: `Bearer ${await page.evaluate(() => JSON.parse(localStorage.getItem('cloudlaw.coordinator')).access_token)}` },
  })).json();
  assert.equal(teams.find((x) => x.id === teamId).members.length, 2);

  // On duty now: the demo lawyers, by their own hours.
  await visible(page.getByTestId('lawyers-on-duty'));
  await textMatches(page.getByTestId('on-duty-list'), /卓玛律师 Lawyer Drolma.*藏语、汉语.*个人值班时间/);

  // Delete the roster.
  const rosterRow = page.locator('tr[data-roster-id]', { hasText: teamName });
  const rosterId = await rosterRow.getAttribute('data-roster-id');
  await page.getByTestId(`roster-delete-${rosterId}`).click();
  await hidden(page.getByTestId(`roster-row-${rosterId}`));
  await textMatches(page.getByTestId('status'), /已删除/);
  await page.getByTestId('coverage-language').selectOption('en');
  await eventually(async () => assert.ok((await cellStates(page)).every((s) => s === 'gap')));
  assertClean(problems);
  await context.close();
});

test('a roster without a weekday is refused before sending', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  await visible(page.getByTestId('roster-day-mon'));
  await eventually(async () => assert.ok(await page.locator('[data-testid="roster-team"] option').count()));
  await page.getByTestId('roster-create').click();
  await eventually(async () =>
    assert.equal(await page.getByTestId('status').getAttribute('data-error-code'), 'no_weekday'));
  assertClean(problems);
  await context.close();
});
