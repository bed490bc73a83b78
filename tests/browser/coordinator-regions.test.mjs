// Regions on the coordinator dashboard: an admin creates one (with a parent and a
// time zone) and every section that depends on regions sees it; bad input and a
// duplicate id are refused next to the form and create nothing; a coordinator
// sees the regions they look after, without the form.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, watch, assertClean, visible, hidden, textMatches, eventually, login, unique,
  accessToken, checkScreen, screenshot,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

/** GET /api/regions as the demo admin. */
async function apiRegions() {
  const token = await accessToken(server, 'demo-admin');
  const response = await fetch(server.url('/api/regions'), { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  return response.json();
}

const optionValues = (select) => select.locator('option').evaluateAll((options) => options.map((o) => o.value));

test('an admin creates a region with a parent and a time zone; bad input and a duplicate id are refused', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-admin', 'demo-pass');
  const card = page.getByTestId('regions');
  await visible(card);
  assert.equal(await page.locator('.section-nav a[href="#regions-heading"]').count(), 1, 'a nav link to the card');

  // The demo region: top level, Asia/Shanghai.
  const garze = page.getByTestId('region-row-demo-garze');
  await textMatches(garze, /demo-garze.*甘孜藏族自治州.*无（顶级地区）.*Asia\/Shanghai/);
  await visible(page.getByTestId('region-create'));
  await hidden(page.getByTestId('regions-viewer-hint'));
  assert.deepEqual(await optionValues(page.getByTestId('region-parent')), ['', 'demo-garze']);
  assert.equal(await page.getByTestId('region-time-zone').inputValue(), 'Asia/Shanghai', 'the server default, filled in');
  const zones = await page.locator('#region-time-zones option').evaluateAll((o) => o.map((x) => x.value));
  assert.ok(zones.includes('Asia/Shanghai') && zones.includes('Asia/Urumqi') && zones.length > 20, `zones: ${zones.length}`);

  // Create one under Garzê, in another zone.
  const id = `litang-${unique()}`;
  const name = `理塘县 Litang ${id}`;
  await page.getByTestId('region-id').fill(id);
  await page.getByTestId('region-name').fill(name);
  await page.getByTestId('region-parent').selectOption('demo-garze');
  await page.getByTestId('region-time-zone').fill('Asia/Urumqi');
  await page.getByTestId('region-create').click();
  await textMatches(page.getByTestId('status'), new RegExp(`已创建地区 ${name}`));
  const row = page.getByTestId(`region-row-${id}`);
  await textMatches(row, new RegExp(`${id}.*${name}.*甘孜藏族自治州.*Asia/Urumqi`));
  await hidden(page.getByTestId('region-error'));
  assert.equal(await page.getByTestId('region-id').inputValue(), '', 'the form is emptied');
  assert.equal(await page.getByTestId('region-time-zone').inputValue(), 'Asia/Shanghai');
  // Tree order: the child right after its parent.
  const order = await page.locator('[data-testid="regions-body"] tr').evaluateAll((rows) => rows.map((r) => r.dataset.regionId));
  assert.deepEqual(order.slice(0, 2), ['demo-garze', id]);

  // Every section that depends on regions sees it: the picker, the parent choice, the queue, the reports.
  await eventually(async () => assert.ok((await optionValues(page.getByTestId('region-select'))).includes(id)));
  assert.ok((await optionValues(page.getByTestId('region-parent'))).includes(id));
  await visible(page.getByTestId(`queue-region-${id}`));
  await visible(page.getByTestId('reports-region'));
  assert.ok((await optionValues(page.getByTestId('reports-region'))).includes(id));
  await page.getByTestId('region-select').selectOption(id);
  await textMatches(page.getByTestId('region-zone'), /Asia\/Urumqi/);
  await textMatches(page.getByTestId('terminals-body'), /本地区还没有终端/);
  await page.getByTestId('region-select').selectOption('demo-garze');

  let saved = (await apiRegions()).find((r) => r.id === id);
  assert.deepEqual(saved, { id, name, parent_id: 'demo-garze', time_zone: 'Asia/Urumqi' });
  const count = (await apiRegions()).length;

  /** Submits the form and waits for the refusal; returns the error element. */
  const refused = async (code, field) => {
    const error = page.getByTestId('region-error');
    await eventually(async () => assert.equal(await error.getAttribute('data-error-code'), code));
    await visible(error);
    assert.equal(await page.getByTestId(field).getAttribute('aria-invalid'), 'true', `${field} is marked`);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), field, `${field} has focus`);
    return error;
  };

  // A time zone that does not exist.
  await page.getByTestId('region-id').fill(`tz-${unique()}`);
  await page.getByTestId('region-name').fill('Nowhere');
  await page.getByTestId('region-time-zone').fill('Mars/Olympus_Mons');
  await page.getByTestId('region-create').click();
  await textMatches(await refused('region_time_zone', 'region-time-zone'), /时区无效.*Mars\/Olympus_Mons/);

  // An id with capitals and a space.
  await page.getByTestId('region-time-zone').fill('Asia/Shanghai');
  await page.getByTestId('region-id').fill('Bad ID');
  await page.getByTestId('region-create').click();
  await textMatches(await refused('region_id', 'region-id'), /地区编号只能由/);
  assert.equal(await page.getByTestId('region-time-zone').getAttribute('aria-invalid'), null, 'only the refused field is marked');

  // An empty name (spaces only), submitted from the keyboard.
  const emptyId = `empty-${unique()}`;
  await page.getByTestId('region-id').fill(emptyId);
  await page.getByTestId('region-name').fill('   ');
  await page.getByTestId('region-name').press('Enter');
  await textMatches(await refused('region_name', 'region-name'), /请填写名称/);

  // The id of the region just created.
  await page.getByTestId('region-id').fill(id);
  await page.getByTestId('region-name').fill('Another Litang');
  await page.getByTestId('region-create').click();
  const duplicate = await refused('region_exists', 'region-id');
  await textMatches(duplicate, /已有使用这个编号的地区.*already exists/);

  // Nothing was created by any of these.
  const after = await apiRegions();
  assert.equal(after.length, count);
  assert.ok(!after.some((r) => r.id === emptyId || r.id === 'Bad ID' || r.name === 'Nowhere'));
  saved = after.find((r) => r.id === id);
  assert.equal(saved.name, name, 'the duplicate changed nothing');
  assert.equal(await page.locator('[data-testid="regions-body"] tr').count(), count);

  await card.scrollIntoViewIfNeeded();
  await checkScreen(page, 'coordinator-regions-zh');
  await screenshot(card, 'coordinator-regions-card-zh');

  // In English: the table, the form and the shown error.
  await page.getByTestId('lang-en').click();
  await textMatches(card, /Regions.*Parent region.*Time zone/s);
  await textMatches(garze, /None \(top level\)/);
  await textMatches(duplicate, /A region with this ID already exists/);
  await checkScreen(page, 'coordinator-regions-en');
  await screenshot(card, 'coordinator-regions-card-en');

  // A correct try clears the error.
  const second = `batang-${unique()}`;
  await page.getByTestId('region-id').fill(second);
  await page.getByTestId('region-name').fill(`Batang ${second}`);
  await page.getByTestId('region-create').click();
  await textMatches(page.getByTestId('status'), new RegExp(`Region Batang ${second} \\(${second}\\) created`));
  await hidden(page.getByTestId('region-error'));
  assert.equal(await page.getByTestId('region-id').getAttribute('aria-invalid'), null);
  await textMatches(page.getByTestId(`region-row-${second}`), /None \(top level\).*Asia\/Shanghai/);
  assert.equal((await apiRegions()).find((r) => r.id === second)?.time_zone, 'Asia/Shanghai');

  assertClean(problems);
  await context.close();
});

test('a coordinator sees the regions they look after, and no form to create one', async () => {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/coordinator'));
  await login(page, 'demo-coordinator', 'demo-pass');
  const card = page.getByTestId('regions');
  await visible(card);
  await textMatches(page.getByTestId('region-row-demo-garze'), /demo-garze.*甘孜藏族自治州.*Asia\/Shanghai/);
  await visible(page.getByTestId('regions-viewer-hint'));
  // Only their own region, though the admin has made others in this run.
  assert.ok((await apiRegions()).length > 1);
  assert.equal(await page.locator('[data-testid="regions-body"] tr').count(), 1);
  for (const testid of ['region-id', 'region-name', 'region-parent', 'region-time-zone', 'region-create']) {
    assert.equal(await page.getByTestId(testid).isVisible(), false, `${testid} is hidden`);
  }
  await screenshot(card, 'coordinator-regions-coordinator');

  // Logging out and in as the admin shows the form again (nothing stays from before).
  await page.getByTestId('logout').click();
  await visible(page.getByTestId('login-submit'));
  await login(page, 'demo-admin', 'demo-pass');
  await visible(page.getByTestId('region-create'));
  await hidden(page.getByTestId('regions-viewer-hint'));
  await eventually(async () => assert.ok((await page.locator('[data-testid="regions-body"] tr').count()) > 1));

  assertClean(problems);
  await context.close();
});
