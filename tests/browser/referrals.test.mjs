// Referrals: during a consultation the lawyer (/lawyer) proposes a referral to
// the region's legal-aid centre; the resident agrees on the kiosk (played
// through the API with the terminal's device token) and the lawyer sees the
// reference code; a proposal to mediation is declined, proposed again in the
// wrap-up and agreed after the record is saved (a notice then gives the code).
// Then the receiving offices' caseworkers work their queue in /coordinator:
// the legal-aid caseworker assigns the referral to a colleague of her office
// and takes it back, accepts, notes and closes; the mediation caseworker
// sees only their office's referral, which is overdue (its due time moved back
// in the database: nothing in the API moves time); the coordinator sees both
// without the matter, and an admin sets up an office with a new caseworker
// account. A caseworker's page is titled for the referrals. Last, the record
// and the Refer block as one flow: an outcome that refers brings the block up
// on that service's office (or says the region has none), and an agreement
// sets an outcome not chosen yet (a refusal sets nothing).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, assertClean, visible, hidden, textMatches, eventually, checkScreen, screenshot,
  liveClient, accessToken, unique, callApi, demoTerminalToken, openApp as openAppPage, pageLang as lang,
  switchLanguage as switchTo,
} from './support.mjs';

// Offers last a minute, long enough for a busy machine.
const CONFIG = '[live]\noffer_timeout_secs = 60\n';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started), { config: CONFIG });

const api = (method, url, token, body) => callApi(server, method, url, token, body);

/** The demo terminal's device token (its enrollment code works once), kept in `deviceToken` too. */
let deviceToken = null;
const terminalToken = async () => (deviceToken = await demoTerminalToken(server));

/** An app page in a fresh context, logged in; what it reports goes to `problems`. */
const openApp = (path, username, password) => openAppPage(browser, server, path, username, password);

/** The count of one kind in an office's summary row. */
const summaryCount = (page, service, field) =>
  page.locator(`[data-testid="referrals-summary"] tr[data-service="${service}"] td[data-count="${field}"]`).textContent()
    .then((text) => Number(text.replace(/\D/g, '')));

/** Waits until an office's summary row shows these counts. */
const countsAre = (page, service, expected) => eventually(async () => {
  const seen = {};
  for (const field of Object.keys(expected)) seen[field] = await summaryCount(page, service, field);
  assert.deepEqual(seen, expected);
});

// What the first test makes, for the others.
const made = {
  legalAid: { id: '', code: '', matter: '' },
  mediation: { id: '', code: '', matter: '' },
};

test('the lawyer refers during the call; the resident agrees to legal aid, declines and then agrees to mediation', async () => {
  const { context, page, problems } = await openApp('/lawyer', 'demo-lawyer');
  await eventually(async () => assert.equal(await page.getByTestId('live-connection').getAttribute('data-state'), 'up'), 20_000);
  await page.getByTestId('go-online').click();
  await visible(page.getByTestId('go-offline'));

  // A resident asks at the kiosk (its live connection, without the kiosk's screens); the lawyer answers.
  const resident = await liveClient(browser, server, await terminalToken());
  await resident.next('welcome');
  await resident.send({ type: 'consult.request', language: 'zh', topic: 'family' });
  await visible(page.getByTestId('incoming-call'));
  await page.getByTestId('accept-call').click();
  const started = await resident.next('consult.started');
  await visible(page.getByTestId('call-view'));

  // The referral block is under the record, during the call: the demo region's two offices.
  const refer = page.getByTestId('refer');
  await visible(refer);
  const offices = (await api('GET', `/api/consultations/${started.consultation}/referrals`, await accessToken(server, 'demo-lawyer'))).body.offices;
  const legalAid = offices.find((o) => o.service === 'legal_aid');
  const mediation = offices.find((o) => o.service === 'mediation');
  assert.ok(legalAid && mediation, JSON.stringify(offices));
  const select = page.getByTestId('refer-office');
  await eventually(async () => {
    const options = await select.locator('option').evaluateAll((all) => all.map((o) => ({ value: o.value, text: o.textContent })));
    assert.deepEqual(options.map((o) => o.value).sort(), ['', legalAid.id, mediation.id].sort());
    assert.match(options.find((o) => o.value === legalAid.id).text, new RegExp(`^法律援助 · ${legalAid.name.slice(0, 6)}`));
    assert.match(options.find((o) => o.value === mediation.id).text, /^人民调解 · /);
  });

  // Nothing chosen, nothing written: said next to the form.
  await page.getByTestId('refer-submit').click();
  await eventually(async () => assert.equal(await page.getByTestId('refer-status').getAttribute('data-error-code'), 'refer_no_office'));
  await select.selectOption(legalAid.id);
  await page.getByTestId('refer-submit').click();
  await eventually(async () => assert.equal(await page.getByTestId('refer-status').getAttribute('data-error-code'), 'refer_no_matter'));

  // To legal aid: proposed, and the kiosk is asked.
  made.legalAid.matter = `Divorce: the husband keeps the children's land-use certificate and pays no support (${unique()}).`;
  await page.getByTestId('refer-matter').fill(made.legalAid.matter);
  await textMatches(page.getByTestId('refer-count'), new RegExp(`^${made.legalAid.matter.length} / 2000`));
  await page.getByTestId('refer-submit').click();
  const legalItem = page.getByTestId('refer-item-legal_aid');
  await visible(legalItem);
  assert.equal(await legalItem.getAttribute('data-state'), 'proposed');
  await textMatches(legalItem, /正在等待居民在终端上答复/);
  await textMatches(page.getByTestId('refer-status'), /终端正在请居民确认/);
  assert.equal(await page.getByTestId('refer-matter').inputValue(), '', 'the form is emptied');
  await screenshot(refer, 'referrals-lawyer-proposed-zh');
  const askedLegal = await resident.next('referral.proposed');
  assert.equal(askedLegal.consultation, started.consultation);
  assert.equal(askedLegal.service, 'legal_aid');
  assert.equal(askedLegal.office, legalAid.name);
  made.legalAid.id = askedLegal.referral;
  // One referral per office: this one is offered no more.
  assert.equal(await select.locator(`option[value="${legalAid.id}"]`).isDisabled(), true);

  // Refused by the server: the same office again (the option is enabled by hand), and too late (played by a route).
  await select.evaluate((el, id) => {
    el.querySelector(`option[value="${id}"]`).disabled = false;
    el.value = id;
  }, legalAid.id);
  await page.getByTestId('refer-matter').fill('Once more.');
  await page.getByTestId('refer-submit').click();
  await eventually(async () => assert.equal(await page.getByTestId('refer-status').getAttribute('data-error-code'), 'referral_exists'));
  await textMatches(page.getByTestId('refer-status'), /已经转介过这个机构/);
  const tooLate = (route) => (route.request().method() === 'POST'
    ? route.fulfill({ status: 409, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'too_late', message: 'the consultation ended more than 30 minutes ago' } }) })
    : route.continue());
  await page.route('**/api/consultations/*/referrals', tooLate);
  await select.selectOption(mediation.id);
  await page.getByTestId('refer-submit').click();
  await eventually(async () => assert.equal(await page.getByTestId('refer-status').getAttribute('data-error-code'), 'too_late'));
  await textMatches(page.getByTestId('refer-status'), /通话结束后 30 分钟内/);
  await page.unroute('**/api/consultations/*/referrals', tooLate);

  // The resident agrees on the kiosk, leaving a phone number: the lawyer sees the code.
  const agreed = await api('POST', `/api/referrals/${made.legalAid.id}/consent`, deviceToken, { agree: true, contact: '138 0000 1111' });
  assert.equal(agreed.status, 200, JSON.stringify(agreed.body));
  assert.equal(agreed.body.status, 'new');
  assert.match(agreed.body.code, /^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$/);
  assert.match(agreed.body.qr_svg, /<svg/);
  made.legalAid.code = agreed.body.code;
  await eventually(async () => assert.equal(await legalItem.getAttribute('data-state'), 'new'));
  await textMatches(page.getByTestId('refer-code-legal_aid'), new RegExp(`^${made.legalAid.code}$`));
  await textMatches(legalItem, /居民已同意/);

  // To mediation: the resident declines; nothing stays but this page's word for it.
  made.mediation.matter = `Boundary dispute with the neighbour over a fence between two yards (${unique()}).`;
  await select.selectOption(mediation.id);
  await page.getByTestId('refer-matter').fill(made.mediation.matter);
  await page.getByTestId('refer-submit').click();
  const mediationItem = page.getByTestId('refer-item-mediation');
  await visible(mediationItem);
  const askedMediation = await resident.next('referral.proposed', (m) => m.service === 'mediation');
  const refused = await api('POST', `/api/referrals/${askedMediation.referral}/consent`, deviceToken, { agree: false, contact: null });
  assert.equal(refused.status, 200);
  assert.equal(refused.body.status, 'declined');
  assert.equal(refused.body.code ?? null, null, 'no code for a refusal');
  await eventually(async () => assert.equal(await mediationItem.getAttribute('data-state'), 'declined'));
  await textMatches(mediationItem, /居民拒绝了转介，没有转出任何信息/);
  assert.equal(await page.getByTestId('refer-code-mediation').count(), 0);
  // Asked again once: a second proposal to the same office is allowed after a refusal.
  assert.equal(await select.locator(`option[value="${mediation.id}"]`).isDisabled(), false);

  for (const code of ['zh', 'en']) {
    await switchTo(page, code);
    await checkScreen(page, `referrals-lawyer-call-${code}`);
    await screenshot(page.getByTestId('refer'), `referrals-lawyer-refer-${code}`);
  }
  await textMatches(mediationItem, /The resident declined; nothing was shared/);
  await textMatches(legalItem, /Reference code:/);
  await switchTo(page, 'zh');

  // The call ends: in the wrap-up the block stays under the record, and still proposes.
  await page.getByTestId('hang-up').click();
  await hidden(page.getByTestId('call-view'));
  await visible(refer);
  await textMatches(page.getByTestId('refer-code-legal_aid'), new RegExp(made.legalAid.code));
  await select.selectOption(mediation.id);
  await page.getByTestId('refer-matter').fill(made.mediation.matter);
  await page.getByTestId('refer-submit').click();
  await eventually(async () => assert.equal(await mediationItem.getAttribute('data-state'), 'proposed'));
  const askedAgain = await resident.next('referral.proposed', (m) => m.service === 'mediation');

  // Saving the record closes the record and the block; the resident's answer, agreed this time
  // (no contact left), comes as the panel's notice with the code.
  await page.getByTestId('record-summary').fill('Divorce and a boundary dispute: referred to legal aid and to mediation.');
  await page.getByTestId('record-outcome').selectOption('referred_legal_aid');
  await page.getByTestId('record-save').click();
  await hidden(page.getByTestId('record-form'));
  await hidden(refer);
  const agreedAgain = await api('POST', `/api/referrals/${askedAgain.referral}/consent`, deviceToken, { agree: true });
  assert.equal(agreedAgain.status, 200, JSON.stringify(agreedAgain.body));
  made.mediation.id = askedAgain.referral;
  made.mediation.code = agreedAgain.body.code;
  await textMatches(page.getByTestId('live-status'), new RegExp(`居民同意转介给${mediation.name.slice(0, 8)}.*转介编号：${made.mediation.code}`));
  // Answered already: the kiosk cannot answer twice.
  assert.equal((await api('POST', `/api/referrals/${made.mediation.id}/consent`, deviceToken, { agree: false })).status, 409);

  await page.getByTestId('go-offline').click();
  assertClean(problems);
  assertClean(resident.problems);
  await resident.close();
  await context.close();
});

test('the legal-aid caseworker sees only the referrals tab, assigns to a colleague and back, accepts, notes and closes; the counts follow', async () => {
  assert.ok(made.legalAid.code, 'the first test made the referrals');
  // A second caseworker in the legal-aid office, to assign to.
  const admin = await accessToken(server, 'demo-admin');
  const colleagueName = `多吉办案员 Caseworker Dorje ${unique()}`;
  const colleague = await api('POST', '/api/accounts', admin, {
    username: `dorje-${unique()}`, display_name: colleagueName, password: 'dorje-pass-1', roles: ['caseworker'], languages: ['zh', 'bo'],
  });
  assert.equal(colleague.status, 201, JSON.stringify(colleague.body));
  const accounts = (await api('GET', '/api/accounts', admin)).body;
  const zhangId = accounts.find((a) => a.username === 'demo-caseworker').id;
  const offices = (await api('GET', '/api/regions/demo-garze/offices', admin)).body;
  const legalAidOffice = offices.find((o) => o.service === 'legal_aid');
  const updated = await api('PUT', `/api/offices/${legalAidOffice.id}`, admin, {
    name: legalAidOffice.name, names: legalAidOffice.names, decision_days: legalAidOffice.decision_days, caseworkers: [zhangId, colleague.body.id],
  });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));

  const { context, page, problems } = await openApp('/coordinator', 'demo-caseworker');
  const section = page.getByTestId('referrals');
  await visible(section);
  await visible(page.getByTestId('referrals-intro-caseworker'));
  // Titled for the work: the office's referrals, not the coordinators' dashboard.
  await textMatches(page.getByTestId('app-title'), /^转介工作台$/);
  assert.equal(await page.title(), '转介工作台 · 云律所');
  await screenshot(page.locator('.app-header'), 'referrals-caseworker-title-zh');
  // Nothing of the coordinators' dashboard.
  for (const part of ['accounts', 'regions', 'terminals', 'queue', 'reports', 'teams']) {
    assert.equal(await page.getByTestId(part).isVisible(), false, `${part} is hidden from a caseworker`);
  }
  assert.equal(await page.getByTestId('region-select').isVisible(), false);
  const links = await page.locator('.section-nav a:visible').evaluateAll((all) => all.map((a) => a.getAttribute('href')));
  assert.deepEqual(links, ['#referrals-heading']);

  // The counts: only the legal-aid office.
  await countsAre(page, 'legal_aid', { new: 1, accepted: 0, overdue: 0, closed: 0 });
  assert.equal(await page.locator('[data-testid="referrals-summary"] tr[data-service]').count(), 1);

  // The queue: the legal-aid referral only.
  const row = page.getByTestId(`referral-row-${made.legalAid.code}`);
  await visible(row);
  await textMatches(row, new RegExp(`${made.legalAid.code}.*法律援助.*婚姻家庭.*汉语.*待受理.*未分配`));
  assert.equal(await page.getByTestId(`referral-row-${made.mediation.code}`).count(), 0);
  assert.equal(await row.getAttribute('data-overdue'), 'false');

  // Opened: the matter, the contact, no notes yet.
  await page.getByTestId(`referral-open-${made.legalAid.id}`).click();
  const detail = page.getByTestId('referral-detail');
  await visible(detail);
  await textMatches(page.getByTestId('referral-matter'), new RegExp(made.legalAid.matter.slice(0, 30)));
  await textMatches(page.getByTestId('referral-contact'), /138 0000 1111/);
  await visible(page.getByTestId('referral-notes-empty'));
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'referral-detail-heading');

  // Assigning: the office's caseworkers, herself first (and chosen), then her colleague.
  const assignee = page.getByTestId('referral-assignee');
  const assignees = () => assignee.locator('option').evaluateAll((all) => all.map((o) => [o.value, o.textContent]));
  await eventually(async () => assert.deepEqual((await assignees()).map(([id]) => id), [zhangId, colleague.body.id]));
  assert.match((await assignees())[0][1], /Caseworker Zhang.*（我）$/);
  assert.equal((await assignees())[1][1], colleagueName);
  assert.equal(await assignee.inputValue(), zhangId);
  await checkScreen(page, 'referrals-caseworker-open-zh');
  await screenshot(detail, 'referrals-caseworker-assign-zh');
  await assignee.selectOption(colleague.body.id);
  await page.getByTestId('referral-assign').click();
  await textMatches(page.getByTestId('referral-detail-assignee'), new RegExp(colleagueName));
  await textMatches(page.getByTestId('status'), new RegExp(`已分配转介 ${made.legalAid.code}`));
  await textMatches(page.getByTestId('referral-detail-status'), /待受理/);
  await textMatches(row, new RegExp(`待受理.*${colleagueName}`));
  // Taken back in one click: she is the one offered.
  await eventually(async () => assert.deepEqual((await assignees()).map(([id]) => id), [zhangId]));
  assert.equal(await assignee.inputValue(), zhangId);
  await page.getByTestId('referral-assign').click();
  await textMatches(page.getByTestId('referral-detail-assignee'), /Caseworker Zhang/);
  const held = await api('GET', `/api/referrals/${made.legalAid.id}`, await accessToken(server, 'demo-caseworker'));
  assert.equal(held.body.assignee_id, zhangId);
  assert.deepEqual(held.body.caseworkers.map((c) => c.id).sort(), [zhangId, colleague.body.id].sort());

  // Accepted: it is hers.
  await page.getByTestId('referral-accept').click();
  await textMatches(page.getByTestId('referral-detail-status'), /已受理/);
  await textMatches(page.getByTestId('referral-detail-assignee'), /Caseworker Zhang/);
  await textMatches(page.getByTestId('status'), new RegExp(`已受理转介 ${made.legalAid.code}`));
  await countsAre(page, 'legal_aid', { new: 0, accepted: 1, overdue: 0, closed: 0 });
  await textMatches(row, /已受理.*Caseworker Zhang/);
  assert.equal(await page.getByTestId('referral-accept').count(), 0);
  // Hers already: only her colleague is offered.
  await eventually(async () => assert.deepEqual((await assignees()).map(([id]) => id), [colleague.body.id]));
  await switchTo(page, 'en');
  await textMatches(detail, /Assign to/);
  await textMatches(page.getByTestId('app-title'), /^Referral desk$/);
  assert.equal(await page.title(), 'Referral desk · Cloud Law Office');
  await screenshot(detail, 'referrals-caseworker-assign-en');
  await switchTo(page, 'zh');

  // A note.
  await page.getByTestId('referral-note').fill('Phoned the resident: documents to bring on Monday.');
  await page.getByTestId('referral-note-add').click();
  await textMatches(page.getByTestId('referral-notes'), /Caseworker Zhang.*Phoned the resident: documents to bring on Monday\./s);
  assert.equal(await page.getByTestId('referral-note').inputValue(), '');

  // Closing asks for an outcome, then for a confirmation.
  await page.getByTestId('referral-close').click();
  assert.equal(await page.getByTestId('referral-outcome').getAttribute('aria-invalid'), 'true');
  const outcomes = await page.getByTestId('referral-outcome').locator('option').evaluateAll((all) => all.map((o) => o.value));
  assert.deepEqual(outcomes, ['', 'legal_aid_granted', 'legal_aid_refused', 'withdrawn', 'unreachable', 'other']);
  await page.getByTestId('referral-outcome').selectOption('legal_aid_granted');
  await page.getByTestId('referral-close').click();
  await visible(page.getByTestId('referral-close-confirm'));
  await textMatches(detail, new RegExp(`以“给予法律援助”办结转介 ${made.legalAid.code}`));
  await checkScreen(page, 'referrals-caseworker-closing-zh');
  await page.getByTestId('referral-close-confirm').click();
  await textMatches(page.getByTestId('referral-detail-status'), /已办结/);
  await textMatches(detail, /给予法律援助/);
  await textMatches(detail, /已办结，不能再更改/);
  assert.equal(await page.getByTestId('referral-note').count(), 0, 'a closed referral takes no more notes');
  await countsAre(page, 'legal_aid', { new: 0, accepted: 0, overdue: 0, closed: 1 });
  // Not open any more: gone from the open list, there under closed.
  await hidden(row);
  await textMatches(page.getByTestId('referrals-body'), /没有未办结的转介/);
  await page.getByTestId('referrals-filter').selectOption('closed');
  await visible(row);
  await textMatches(row, /已办结.*给予法律援助/);

  // Any kiosk finds where it stands by its code (without the person or the matter).
  const lookup = await api('GET', `/api/referral-status/${made.legalAid.code.toLowerCase()}`, deviceToken);
  assert.equal(lookup.status, 200);
  assert.equal(lookup.body.status, 'closed');
  assert.equal(lookup.body.outcome, 'legal_aid_granted');

  await switchTo(page, 'en');
  await textMatches(page.getByTestId('referral-detail-status'), /Closed/);
  await checkScreen(page, 'referrals-caseworker-closed-en');
  await page.getByTestId('referral-detail-back').click();
  await hidden(detail);
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), `referral-open-${made.legalAid.id}`);
  await switchTo(page, 'zh');
  assertClean(problems);
  await context.close();
});

test('the mediation caseworker sees only the mediation referral, which stands out as overdue', async () => {
  assert.ok(made.mediation.code, 'the first test made the referrals');
  // Nothing in the API moves time: the decision was due two days ago.
  const due = Math.floor(Date.now() / 1000) - 2 * 86_400;
  await server.sql(`UPDATE referrals SET due_at = ${due} WHERE id = '${made.mediation.id}'`);

  const { context, page, problems } = await openApp('/coordinator', 'demo-caseworker-2');
  await visible(page.getByTestId('referrals'));
  await countsAre(page, 'mediation', { new: 1, accepted: 0, overdue: 1, closed: 0 });
  assert.equal(await page.locator('[data-testid="referrals-summary"] tr[data-service="legal_aid"]').count(), 0);
  const row = page.getByTestId(`referral-row-${made.mediation.code}`);
  await visible(row);
  assert.equal(await row.getAttribute('data-overdue'), 'true');
  await textMatches(page.getByTestId(`referral-overdue-${made.mediation.id}`), /⚠\s*已逾期/);
  assert.match(await row.getAttribute('class'), /\boverdue\b/);
  // The overdue row looks different from a row that is not (a colour of its own and a bar at its start).
  const look = await row.evaluate((tr) => ({
    background: getComputedStyle(tr.cells[1]).backgroundColor,
    bar: getComputedStyle(tr.cells[0]).boxShadow,
  }));
  assert.notEqual(look.background, 'rgba(0, 0, 0, 0)');
  assert.match(look.bar, /inset/);
  // The legal-aid referral is not hers, under any filter; nor can she read it.
  await page.getByTestId('referrals-filter').selectOption('all');
  await visible(row);
  assert.equal(await page.getByTestId(`referral-row-${made.legalAid.code}`).count(), 0);
  const token = await accessToken(server, 'demo-caseworker-2');
  assert.equal((await api('GET', `/api/referrals/${made.legalAid.id}`, token)).status, 404);
  await checkScreen(page, 'referrals-caseworker-overdue-zh');

  // Opened: the matter, no contact left; overdue there too. Accepting makes it hers.
  await page.getByTestId(`referral-open-${made.mediation.id}`).click();
  await textMatches(page.getByTestId('referral-matter'), new RegExp(made.mediation.matter.slice(0, 30)));
  await textMatches(page.getByTestId('referral-contact'), /没有留下联系方式/);
  await visible(page.getByTestId('referral-detail-overdue'));
  const outcomes = await page.getByTestId('referral-outcome').locator('option').evaluateAll((all) => all.map((o) => o.value));
  assert.deepEqual(outcomes, ['', 'mediated', 'mediation_failed', 'withdrawn', 'unreachable', 'other']);
  await page.getByTestId('referral-accept').click();
  await textMatches(page.getByTestId('referral-detail-assignee'), /Mediator Kelsang/);
  await countsAre(page, 'mediation', { new: 0, accepted: 1, overdue: 1, closed: 0 });
  await switchTo(page, 'en');
  await textMatches(page.getByTestId(`referral-overdue-${made.mediation.id}`), /Overdue/);
  await checkScreen(page, 'referrals-caseworker-overdue-en');
  await screenshot(page.getByTestId('referrals'), 'referrals-caseworker-queue-en');
  assertClean(problems);
  await context.close();
});

test('a coordinator sees the referrals without the matter; an admin sets up an office and its new caseworker', async () => {
  assert.ok(made.mediation.code, 'the first test made the referrals');
  const coordinator = await openApp('/coordinator', 'demo-coordinator');
  const page = coordinator.page;
  await visible(page.getByTestId('accounts'));
  await visible(page.getByTestId('referrals'));
  await visible(page.getByTestId('referrals-intro-manager'));
  await textMatches(page.getByTestId('app-title'), /^协调员工作台$/);
  assert.equal(await page.title(), '协调员工作台 · 云律所');
  assert.equal(await page.locator('.section-nav a[href="#referrals-heading"]').isVisible(), true);
  assert.equal(await page.locator('.section-nav a[href="#accounts-heading"]').isVisible(), true);
  await countsAre(page, 'legal_aid', { new: 0, accepted: 0, overdue: 0, closed: 1 });
  await countsAre(page, 'mediation', { new: 0, accepted: 1, overdue: 1, closed: 0 });
  const mediationRow = page.getByTestId(`referral-row-${made.mediation.code}`);
  await visible(mediationRow);
  assert.equal(await mediationRow.getAttribute('data-overdue'), 'true');
  await page.getByTestId('referrals-filter').selectOption('all');
  await visible(page.getByTestId(`referral-row-${made.legalAid.code}`));
  // Where they stand, not what they are about: no matter, no contact, nothing to open.
  const text = await page.locator('body').innerText();
  for (const secret of [made.legalAid.matter, made.mediation.matter, '138 0000 1111']) {
    assert.equal(text.includes(secret.slice(0, 30)), false, `the coordinator's page shows ${secret}`);
  }
  assert.equal(await page.locator('[data-testid^="referral-open-"]').count(), 0);
  const listed = await api('GET', '/api/referrals?status=all', await accessToken(server, 'demo-coordinator'));
  assert.ok(listed.body.length >= 2 && listed.body.every((r) => r.matter === null && r.contact === null));

  // The region's offices, in the regions card.
  const offices = page.getByTestId('offices');
  await visible(offices);
  await textMatches(page.getByTestId('office-caseworkers-legal_aid'), /Caseworker Zhang/);
  await textMatches(page.getByTestId('office-caseworkers-mediation'), /Mediator Kelsang/);
  await textMatches(page.getByTestId('office-row-legal_aid'), /法律援助.*7 天/);
  // Under its name, the name residents read at the kiosks in Tibetan.
  await textMatches(page.getByTestId('office-name-bo-legal_aid'), /^དཀར་མཛེས་/);
  assert.equal(await page.getByTestId('office-name-bo-legal_aid').getAttribute('lang'), 'bo');
  await checkScreen(page, 'referrals-coordinator-zh');
  assertClean(coordinator.problems);
  await coordinator.context.close();

  // An admin creates a caseworker account, adds an office of another service, and puts them in it.
  const admin = await openApp('/coordinator', 'demo-admin');
  const a = admin.page;
  await visible(a.getByTestId('account-toggle-demo-caseworker'));
  await textMatches(a.locator('tr[data-username="demo-caseworker"]'), /受理机构工作人员/);
  const username = `notary-${unique()}`;
  await a.getByTestId('account-username').fill(username);
  await a.getByTestId('account-display-name').fill(`公证员 ${username}`);
  await a.getByTestId('account-password').fill('notary-pass-1');
  await a.getByTestId('account-role-caseworker').check();
  await a.getByTestId('account-lang-zh').check();
  await a.getByTestId('account-create').click();
  await textMatches(a.locator(`tr[data-username="${username}"]`), /受理机构工作人员/);
  // The inline edit offers the role too.
  await a.getByTestId(`account-edit-${username}`).click();
  assert.equal(await a.getByTestId(`account-edit-role-caseworker-${username}`).isChecked(), true);
  await a.getByTestId(`account-edit-cancel-${username}`).click();

  await visible(a.getByTestId('office-row-legal_aid'));
  /** The next office the form sends: its body. */
  const officeSent = () => a.waitForRequest((r) => r.method() === 'POST' && /\/api\/regions\/[^/]+\/offices$/.test(new URL(r.url()).pathname))
    .then((r) => JSON.parse(r.postData()));
  // A second legal-aid office in the region is refused next to the form (no name in Tibetan: none sent).
  await a.getByTestId('office-service').selectOption('legal_aid');
  await a.getByTestId('office-name').fill('Another legal aid centre');
  let sent = officeSent();
  await a.getByTestId('office-create').click();
  assert.equal(Object.hasOwn(await sent, 'names'), false, 'a blank name in Tibetan is left out');
  await eventually(async () => assert.equal(await a.getByTestId('office-error').getAttribute('data-error-code'), 'office_exists'));
  // Another service: its code, checked before it is sent.
  await a.getByTestId('office-service').selectOption('other');
  await visible(a.getByTestId('office-code'));
  await a.getByTestId('office-code').fill('Notary!');
  await a.getByTestId('office-name').fill('康定市公证处 Kangding Notary Office');
  // Its name in Tibetan, for the residents at the kiosks.
  const notaryBo = 'དར་རྩེ་མདོ་གྲོང་ཁྱེར་དཔང་ཡིག་ཁང་།';
  assert.equal(await a.getByTestId('office-name-bo').getAttribute('lang'), 'bo');
  await a.getByTestId('office-name-bo').fill(` ${notaryBo} `);
  await a.getByTestId('office-days').fill('30');
  await a.getByTestId('office-create').click();
  await eventually(async () => assert.equal(await a.getByTestId('office-error').getAttribute('data-error-code'), 'office_service'));
  assert.equal(await a.getByTestId('office-code').getAttribute('aria-invalid'), 'true');
  await a.getByTestId('office-code').fill('notary');
  sent = officeSent();
  await a.getByTestId('office-create').click();
  assert.deepEqual((await sent).names, { bo: notaryBo });
  const notaryRow = a.getByTestId('office-row-notary');
  await visible(notaryRow);
  await textMatches(notaryRow, /notary.*康定市公证处.*30 天.*暂无/);
  await textMatches(a.getByTestId('office-name-bo-notary'), new RegExp(`^${notaryBo}$`));
  assert.equal(await a.getByTestId('office-name-bo').inputValue(), '');
  await hidden(a.getByTestId('office-error'));
  // Saved: read back. A name in another language, set through the API, is kept by the app's edits below.
  const adminToken = await accessToken(server, 'demo-admin');
  const notaryId = await notaryRow.getAttribute('data-office-id');
  const notaryOffice = async () => (await api('GET', '/api/regions/demo-garze/offices', adminToken)).body.find((o) => o.id === notaryId);
  assert.deepEqual((await notaryOffice()).names, { bo: notaryBo });
  const withEnglish = await api('PUT', `/api/offices/${notaryId}`, adminToken, {
    name: '康定市公证处 Kangding Notary Office', names: { bo: notaryBo, en: 'Kangding Notary Office' }, decision_days: 30, caseworkers: [],
  });
  assert.equal(withEnglish.status, 200, JSON.stringify(withEnglish.body));
  await a.reload();
  await visible(notaryRow);

  const created = (await api('GET', '/api/accounts', await accessToken(server, 'demo-admin'))).body.find((x) => x.username === username);
  await a.getByTestId('office-edit-notary').click();
  const box = a.getByTestId(`office-caseworker-notary-${created.id}`);
  await visible(box);
  assert.equal(await a.getByTestId('office-edit-name-bo-notary').inputValue(), notaryBo);
  assert.equal(await a.getByTestId('office-edit-name-bo-notary').getAttribute('lang'), 'bo');
  await box.check();
  await a.getByTestId('office-edit-days-notary').fill('20');
  await checkScreen(a, 'referrals-admin-offices-zh');
  await screenshot(a.getByTestId('regions'), 'referrals-admin-offices-zh');
  await a.getByTestId('office-save-notary').click();
  await textMatches(a.getByTestId('office-caseworkers-notary'), new RegExp(`公证员 ${username}`));
  await textMatches(notaryRow, /20 天/);
  await textMatches(a.getByTestId('office-name-bo-notary'), new RegExp(`^${notaryBo}$`));
  let saved = await notaryOffice();
  assert.deepEqual([saved.names, saved.decision_days], [{ bo: notaryBo, en: 'Kangding Notary Office' }, 20]);
  // The name in Tibetan emptied: removed, the English one still kept.
  await a.getByTestId('office-edit-notary').click();
  await a.getByTestId('office-edit-name-bo-notary').fill('  ');
  await a.getByTestId('office-save-notary').click();
  await hidden(a.getByTestId('office-name-bo-notary'));
  saved = await notaryOffice();
  assert.deepEqual(saved.names, { en: 'Kangding Notary Office' });
  await switchTo(a, 'en');
  await textMatches(a.getByTestId('offices'), /Receiving offices of/);
  await checkScreen(a, 'referrals-admin-offices-en');
  assertClean(admin.problems);
  await admin.context.close();

  // The new caseworker signs in: their office, nothing in it yet.
  const notary = await openApp('/coordinator', username, 'notary-pass-1');
  await visible(notary.page.getByTestId('referrals'));
  await countsAre(notary.page, 'notary', { new: 0, accepted: 0, overdue: 0, closed: 0 });
  await textMatches(notary.page.getByTestId('referrals-body'), /没有未办结的转介/);
  assertClean(notary.problems);
  await notary.context.close();
});

/**
 * The demo lawyer in /lawyer, online, in a call with a resident at the kiosk (its live
 * connection, without the kiosk's screens); `route` is set on the page before anything loads.
 */
async function lawyerInCall(topic, route = null) {
  const opened = await openApp('/lawyer', 'demo-lawyer');
  const { page } = opened;
  if (route) await page.route(...route);
  await eventually(async () => assert.equal(await page.getByTestId('live-connection').getAttribute('data-state'), 'up'), 20_000);
  await visible(page.locator('[data-testid="go-online"]:visible, [data-testid="go-offline"]:visible').first());
  if (await page.getByTestId('go-online').isVisible()) await page.getByTestId('go-online').click();
  await visible(page.getByTestId('go-offline'));
  const resident = await liveClient(browser, server, await terminalToken());
  await resident.next('welcome');
  await resident.send({ type: 'consult.request', language: 'zh', topic });
  await visible(page.getByTestId('incoming-call'));
  await page.getByTestId('accept-call').click();
  const started = await resident.next('consult.started');
  await visible(page.getByTestId('call-view'));
  await visible(page.getByTestId('refer'));
  return { ...opened, resident, consultation: started.consultation };
}

/** The call ends and the record is saved with what its form says; the lawyer goes offline. */
async function hangUpAndSave(page, summary) {
  await page.getByTestId('hang-up').click();
  await hidden(page.getByTestId('call-view'));
  await page.getByTestId('record-summary').fill(summary);
  await page.getByTestId('record-save').click();
  await hidden(page.getByTestId('record-form'));
  await page.getByTestId('go-offline').click();
}

/** Whether an element lies wholly in the page's viewport. */
const inView = (locator) => locator.evaluate((el) => {
  const box = el.getBoundingClientRect();
  return box.top >= 0 && box.left >= 0 && box.bottom <= window.innerHeight && box.right <= window.innerWidth;
});

test('the outcome first: a referral as the outcome brings up the Refer block on that office, or says the region has none', async () => {
  // An office of a service the apps have no words for: named by its code in plain letters.
  const admin = await accessToken(server, 'demo-admin');
  const labour = await api('POST', '/api/regions/demo-garze/offices', admin, {
    service: 'labour_arbitration', name: '康定市劳动人事争议仲裁院 Labour Arbitration', decision_days: 10,
  });
  assert.equal(labour.status, 201, JSON.stringify(labour.body));

  // The region's mediation office left out of what the console reads: as if the region had none.
  const withoutMediation = async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    const response = await route.fetch();
    const body = await response.json();
    body.offices = body.offices.filter((o) => o.service !== 'mediation');
    return route.fulfill({ response, json: body });
  };
  const { context, page, problems, resident, consultation } = await lawyerInCall('labour', ['**/api/consultations/*/referrals', withoutMediation]);
  const offices = (await api('GET', `/api/consultations/${consultation}/referrals`, await accessToken(server, 'demo-lawyer'))).body.offices;
  const legalAid = offices.find((o) => o.service === 'legal_aid');
  const select = page.getByTestId('refer-office');
  await eventually(async () => assert.match(await select.locator(`option[value="${labour.body.id}"]`).textContent(), /^labour arbitration · 康定市/));
  const outcome = page.getByTestId('record-outcome');
  const note = page.getByTestId('record-no-office');
  assert.equal(await note.isHidden(), true);

  // Mediation: the region has no office of it, and the record says so beside the outcome.
  await outcome.focus();
  await outcome.selectOption('referred_mediation');
  await textMatches(note, /^本地区还没有设立人民调解机构，请联系协调员。$/);
  assert.equal(await select.inputValue(), '');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'record-outcome');
  assert.equal(await outcome.getAttribute('aria-describedby'), 'record-no-office');
  await switchTo(page, 'en');
  await textMatches(note, /^This region has no mediation office configured; ask a coordinator\.$/);
  await screenshot(page.getByTestId('record-form'), 'referrals-lawyer-outcome-no-office-en');
  await switchTo(page, 'zh');
  await page.unroute('**/api/consultations/*/referrals', withoutMediation);

  // Legal aid: the block comes into view on the legal-aid office, the matter field to write in;
  // the focus stays on the outcome (a keyboard user arrowing through the list goes on).
  await outcome.focus();
  await outcome.selectOption('referred_legal_aid');
  await hidden(note);
  await eventually(async () => assert.equal(await select.inputValue(), legalAid.id));
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'record-outcome');
  assert.equal(await inView(page.getByTestId('refer-matter')), true, 'the matter field is in view');
  assert.equal(await inView(select), true, 'the chosen office is in view');
  await checkScreen(page, 'referrals-lawyer-outcome-refer-zh');
  await screenshot(page.locator('#record-column'), 'referrals-lawyer-outcome-refer-zh');
  const matter = `Unpaid wages; the employer refuses a contract (${unique()}).`;
  await page.getByTestId('refer-matter').click();
  await page.keyboard.type(matter);
  assert.equal(await page.getByTestId('refer-matter').inputValue(), matter);
  await page.getByTestId('refer-submit').click();
  const item = page.getByTestId('refer-item-legal_aid');
  await visible(item);
  assert.equal(await item.getAttribute('data-state'), 'proposed');
  const asked = await resident.next('referral.proposed');
  assert.equal(asked.service, 'legal_aid');

  // Proposed already: choosing it again moves nothing.
  await outcome.focus();
  await outcome.selectOption('advice_given');
  await outcome.selectOption('referred_legal_aid');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(await select.inputValue(), '');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'record-outcome');
  assert.equal(await note.isHidden(), true);

  // The resident agrees on the kiosk: the outcome the lawyer chose stays.
  const agreed = await api('POST', `/api/referrals/${asked.referral}/consent`, deviceToken, { agree: true });
  assert.equal(agreed.status, 200, JSON.stringify(agreed.body));
  await eventually(async () => assert.equal(await item.getAttribute('data-state'), 'new'));
  await textMatches(page.getByTestId('refer-code-legal_aid'), new RegExp(`^${agreed.body.code}$`));
  assert.equal(await outcome.inputValue(), 'referred_legal_aid');

  await hangUpAndSave(page, 'Unpaid wages: referred to legal aid.');
  const saved = await api('GET', `/api/consultations/${consultation}`, await accessToken(server, 'demo-lawyer'));
  assert.equal(saved.body.outcome, 'referred_legal_aid');
  assertClean(problems);
  assertClean(resident.problems);
  await resident.close();
  await context.close();

  // The coordinators' app names the office's service the same way.
  const coordinator = await openApp('/coordinator', 'demo-coordinator');
  await textMatches(coordinator.page.getByTestId('office-row-labour_arbitration'), /^labour arbitration/);
  assertClean(coordinator.problems);
  await coordinator.context.close();
});

test('agreed first: with no outcome chosen, the agreement sets it; a refusal sets nothing', async () => {
  const { context, page, problems, resident, consultation } = await lawyerInCall('family');
  const offices = (await api('GET', `/api/consultations/${consultation}/referrals`, await accessToken(server, 'demo-lawyer'))).body.offices;
  const outcome = page.getByTestId('record-outcome');
  const select = page.getByTestId('refer-office');
  assert.equal(await outcome.inputValue(), '');

  /** The lawyer proposes the region's office of a service; the kiosk is asked. */
  const propose = async (service, matter) => {
    await eventually(async () => assert.equal(await select.locator('option').count(), offices.length + 1));
    await select.selectOption(offices.find((o) => o.service === service).id);
    await page.getByTestId('refer-matter').fill(matter);
    await page.getByTestId('refer-submit').click();
    await eventually(async () => assert.equal(await page.getByTestId(`refer-item-${service}`).getAttribute('data-state'), 'proposed'));
    return resident.next('referral.proposed', (m) => m.service === service);
  };

  // Declined: nothing is set.
  const first = await propose('legal_aid', 'Maintenance for two children after the divorce.');
  assert.equal((await api('POST', `/api/referrals/${first.referral}/consent`, deviceToken, { agree: false })).status, 200);
  await eventually(async () => assert.equal(await page.getByTestId('refer-item-legal_aid').getAttribute('data-state'), 'declined'));
  assert.equal(await outcome.inputValue(), '');

  // Agreed: the outcome follows, and the block says so.
  const second = await propose('mediation', 'The families would talk the maintenance over at the township.');
  const agreed = await api('POST', `/api/referrals/${second.referral}/consent`, deviceToken, { agree: true });
  assert.equal(agreed.status, 200, JSON.stringify(agreed.body));
  await eventually(async () => assert.equal(await outcome.inputValue(), 'referred_mediation'));
  await textMatches(page.getByTestId('refer-status'), /居民已同意。处理结果已设为“转介人民调解”，请保存记录。/);
  await textMatches(page.getByTestId('refer-item-mediation'), new RegExp(agreed.body.code));
  // Kept as the draft, like a choice of the lawyer's.
  const draft = await page.evaluate((id) => JSON.parse(sessionStorage.getItem(`cloudlaw.lawyer.draft.${id}`) ?? 'null'), consultation);
  assert.equal(draft?.outcome, 'referred_mediation');
  await switchTo(page, 'en');
  await textMatches(page.getByTestId('refer-status'), /The record's outcome is now “Referred to mediation”/);
  await checkScreen(page, 'referrals-lawyer-agreed-outcome-en');
  await switchTo(page, 'zh');
  await screenshot(page.locator('#record-column'), 'referrals-lawyer-agreed-outcome-zh');

  await hangUpAndSave(page, 'Maintenance: the resident declined legal aid and agreed to mediation.');
  const saved = await api('GET', `/api/consultations/${consultation}`, await accessToken(server, 'demo-lawyer'));
  assert.equal(saved.body.outcome, 'referred_mediation');
  assertClean(problems);
  assertClean(resident.problems);
  await resident.close();
  await context.close();
});
