// The live panel of /lawyer: going online, being rung, declining (the
// request moves on to the next lawyer), answering, media both ways through
// the relay, a reload in the middle of the call (the call resumes, the draft
// of the record survives), hanging up, writing the record in the wrap-up, the
// past consultations, going offline, and a network loss and return.
//
// The resident is played without the kiosk's UI: a page on the server's
// origin with the terminal's device token on /ws, and web/shared/call.js for
// its media (Chromium's fake camera and microphone).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowserForFile, newContext, watch, assertClean, visible, hidden, textMatches, eventually, login,
  checkScreen, screenshot, liveClient, accessToken as loginToken, recordPeerConnections, seesAndHears, callApi,
  demoTerminalToken, pageLang as lang,
} from './support.mjs';

// The rings open by the clock as shipped (30, 60, 90 s): whatever is rung
// within a test's seconds is rung because a ring was empty, not because it
// widened. Offers last a minute, long enough for screenshots on a busy machine.
const CONFIG = '[live]\noffer_timeout_secs = 60\n';
const MEDIA_TIMEOUT = 45_000;

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started), { config: CONFIG });

const api = (method, url, token, body) => callApi(server, method, url, token, body);

/** The demo terminal's device token (its enrollment code works once). */
const terminalToken = () => demoTerminalToken(server);

const accessToken = (username) => loginToken(server, username);

/** A lawyer's console, logged in, with its live connection up (its peer connections recorded). */
async function openConsole(username) {
  const context = await newContext(browser, server);
  await recordPeerConnections(context);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await login(page, username, 'demo-pass');
  await connected(page);
  return { context, page, problems };
}

const connected = (page) => eventually(async () =>
  assert.equal(await page.getByTestId('live-connection').getAttribute('data-state'), 'up'), 20_000);

/** Waits until the presence the page shows is `state`. */
const presenceIs = (page, state, timeout = 20_000) => eventually(async () =>
  assert.equal(await page.getByTestId('presence').getAttribute('data-state'), state), timeout);

/** The other end of a live connection (see support.mjs liveClient). */
const liveEnd = (token, options) => liveClient(browser, server, token, options);

/** The remote videos of a lawyer's page: size, frames shown and time played. */
const remoteVideos = (page) => page.evaluate(() =>
  [...document.querySelectorAll('[data-testid="remote-video"]')].map((v) => ({
    width: v.videoWidth,
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
    time: v.currentTime,
  })));

/** The page shows `count` remote videos, each with moving pictures. */
async function seesVideo(page, count = 1) {
  let first;
  await eventually(async () => {
    const videos = await remoteVideos(page);
    assert.equal(videos.length, count, JSON.stringify(videos));
    assert.ok(videos.every((v) => v.width > 0 && v.frames > 0), JSON.stringify(videos));
    first = videos;
  }, MEDIA_TIMEOUT);
  await eventually(async () => {
    const now = await remoteVideos(page);
    assert.ok(now.length === count && now.every((v, i) => v.frames > first[i].frames + 5 && v.time > first[i].time),
      JSON.stringify({ first, now }));
  }, MEDIA_TIMEOUT);
}

/** The terminal decodes video from the others. */
async function terminalSeesVideo(resident, count = 1) {
  let first;
  await eventually(async () => {
    first = await resident.received();
    assert.ok(first.streams >= count && first.frames > 0, JSON.stringify(first));
  }, MEDIA_TIMEOUT);
  await eventually(async () => {
    const now = await resident.received();
    assert.ok(now.frames > first.frames + 5, JSON.stringify({ first, now }));
  }, MEDIA_TIMEOUT);
}


/** Checks and saves a screen in Chinese and English (and, with `narrow`, on a phone), back in Chinese. */
async function screens(page, name, { narrow = false } = {}) {
  for (const code of ['zh', 'en']) {
    await page.getByTestId(`lang-${code}`).click();
    await eventually(async () => assert.equal(await lang(page), code));
    await checkScreen(page, `lawyer-${name}-${code}`);
    await screenshot(page.getByTestId('live'), `lawyer-live-${name}-${code}`);
  }
  if (narrow) {
    await page.setViewportSize({ width: 390, height: 844 });
    await checkScreen(page, `lawyer-${name}-en-narrow`);
    await screenshot(page.getByTestId('live'), `lawyer-live-${name}-en-narrow`);
    await page.setViewportSize({ width: 1280, height: 800 });
  }
  await page.getByTestId('lang-zh').click();
  await eventually(async () => assert.equal(await lang(page), 'zh'));
}

const session = (page, key) => page.evaluate((k) => sessionStorage.getItem(k), key);

test('a lawyer goes online, declines; the next answers, talks, resumes after a reload, hangs up and writes the record', async () => {
  const first = await openConsole('demo-lawyer');
  const second = await openConsole('demo-lawyer-2');
  const a = first.page;
  const b = second.page;

  // Offline at first: only "go online" is offered.
  await presenceIs(a, 'offline');
  await textMatches(a.getByTestId('presence'), /已下线/);
  assert.equal(await a.getByTestId('go-offline').isVisible(), false);
  await a.getByTestId('go-online').click();
  await presenceIs(a, 'available');
  await textMatches(a.getByTestId('presence'), /在线，等待来电/);
  assert.equal(await session(a, 'cloudlaw.lawyer.want'), 'available');
  assert.equal(await a.getByTestId('off-duty').isVisible(), false, 'the demo lawyers are always on duty');
  await visible(a.getByTestId('go-offline'));
  await screens(a, 'idle', { narrow: true });

  await b.getByTestId('go-online').click();
  await presenceIs(b, 'available');
  // The second lawyer has the console open in a second tab too.
  const b2 = await second.context.newPage();
  const b2Problems = watch(b2);
  await b2.goto(server.url('/lawyer'));
  await connected(b2);
  await presenceIs(b2, 'available');

  // A resident asks (Chinese, land): the region's team is rung first.
  const resident = await liveEnd(await terminalToken(), { media: true });
  await resident.next('welcome');
  await resident.send({ type: 'consult.request', language: 'zh', topic: 'land' });
  await resident.next('consult.queued');

  const incoming = a.getByTestId('incoming-call');
  await visible(incoming);
  await presenceIs(a, 'ringing');
  await textMatches(a.getByTestId('incoming-language'), /汉语/);
  await textMatches(a.getByTestId('incoming-topic'), /土地/);
  await textMatches(a.getByTestId('incoming-region'), /甘孜/);
  await textMatches(a.getByTestId('incoming-role'), /律师/);
  await textMatches(a.getByTestId('incoming-countdown'), /请在 \d+ 秒内接听/);
  await textMatches(a.getByTestId('incoming-waited'), /^\d+:\d\d$/);
  assert.equal(await a.getByTestId('incoming-three-way').isVisible(), false);
  assert.equal(await a.evaluate(() => document.activeElement?.dataset.testid), 'accept-call', 'focus is on Answer');
  assert.equal(await incoming.getAttribute('role'), 'alertdialog');
  await eventually(async () => assert.match(await a.title(), /来电/), 5_000);
  assert.equal(await b.getByTestId('incoming-call').isVisible(), false, 'one lawyer is rung at a time');
  await screens(a, 'ringing', { narrow: true });

  // The first lawyer declines: the second, available all along, is rung at once.
  const declined = Date.now();
  await a.getByTestId('decline-call').click();
  await visible(b.getByTestId('incoming-call'));
  const rungAfter = Date.now() - declined;
  assert.ok(rungAfter < 2_000, `the next lawyer was rung ${rungAfter} ms after the decline`);
  await hidden(incoming);
  await presenceIs(a, 'available');
  await eventually(async () => assert.doesNotMatch(await a.title(), /来电/), 5_000);
  await visible(b.getByTestId('incoming-call'));
  await textMatches(b.getByTestId('incoming-topic'), /土地/);
  await visible(b2.getByTestId('incoming-call'));
  // From the keyboard: the ring put the focus on Answer.
  assert.equal(await b.evaluate(() => document.activeElement?.dataset.testid), 'accept-call');
  await b.keyboard.press('Enter');

  // The other tab knows of the call but leaves camera and media to the tab that answered.
  await visible(b2.getByTestId('call-elsewhere'));
  await visible(b2.getByTestId('take-call-here'));
  await hidden(b2.getByTestId('incoming-call'));
  assert.equal(await b2.getByTestId('record-form').isVisible(), false);
  assert.equal(await b2.evaluate(() => document.querySelector('[data-testid="local-video"]').srcObject), null);

  // The call: both sides see and hear each other.
  await visible(b.getByTestId('call-view'));
  await hidden(b.getByTestId('incoming-call'));
  assert.equal(await b.evaluate(() => document.activeElement?.dataset.testid), 'hang-up');
  await presenceIs(b, 'in_consultation');
  const started = await resident.next('consult.started');
  assert.equal(started.role, 'resident');
  assert.deepEqual(started.peers.map((p) => p.role), ['lawyer']);
  await textMatches(b.getByTestId('call-peers'), /居民.*新都桥/);
  await textMatches(b.getByTestId('call-language'), /汉语/);
  await textMatches(b.getByTestId('call-topic'), /土地/);
  await textMatches(b.getByTestId('call-elapsed'), /^\d+:\d\d$/);
  await seesVideo(b);
  await terminalSeesVideo(resident);
  await eventually(async () => assert.ok(await b.evaluate(() => document.querySelector('[data-testid="local-video"]').videoWidth > 0)));
  await eventually(async () => assert.equal(await b.getByTestId('network-quality').getAttribute('data-quality'), 'good'), MEDIA_TIMEOUT);
  assert.equal(await a.getByTestId('call-view').isVisible(), false);

  assert.equal(await b2.locator('[data-testid="remote-video"]').count(), 0);
  assertClean(b2Problems);
  await b2.close();

  // The lawyer mutes and unmutes the microphone.
  await b.getByTestId('mute-mic').click();
  assert.equal(await b.getByTestId('mute-mic').getAttribute('aria-pressed'), 'true');
  await b.getByTestId('mute-mic').click();
  assert.equal(await b.getByTestId('mute-mic').getAttribute('aria-pressed'), 'false');

  // A draft of the record, during the call.
  const summary = '土地承包合同纠纷：村委会收回承包地。建议先协商，不成再申请农村土地承包仲裁。';
  await visible(b.getByTestId('record-form'));
  await b.getByTestId('record-summary').fill(summary);
  await b.getByTestId('record-outcome').selectOption('referred_mediation');
  const draftKey = `cloudlaw.lawyer.draft.${started.consultation}`;
  assert.equal(JSON.parse(await session(b, draftKey)).summary, summary);
  await screens(b, 'call', { narrow: true });

  // A reload in the middle of the call: the call resumes in the same room, the draft is still there.
  await b.reload();
  await visible(b.getByTestId('call-view'));
  await presenceIs(b, 'in_consultation');
  assert.equal(await b.getByTestId('record-summary').inputValue(), summary);
  assert.equal(await b.getByTestId('record-outcome').inputValue(), 'referred_mediation');
  await seesVideo(b);
  await terminalSeesVideo(resident);
  // The resident heard that the lawyer went, and came back (unless the new connection came first).
  const peers = await resident.unread('consult.peer');
  assert.equal(peers.filter((m) => m.present).length, peers.filter((m) => !m.present).length, JSON.stringify(peers));

  // Hang up: the call view closes, the camera stops, the record stays with the wrap-up's countdown.
  await b.getByTestId('hang-up').click();
  const ended = await resident.next('consult.ended');
  assert.equal(ended.reason, 'hung_up');
  await hidden(b.getByTestId('call-view'));
  await presenceIs(b, 'wrap_up');
  await visible(b.getByTestId('record-form'));
  await textMatches(b.getByTestId('wrap-up-countdown'), /整理记录剩余时间：[45]:\d\d/);
  assert.equal(await b.evaluate(() => document.querySelector('[data-testid="local-video"]').srcObject), null);
  assert.equal(await b.locator('[data-testid="remote-video"]').count(), 0);
  assert.equal(await b.getByTestId('record-summary').inputValue(), summary);
  await screens(b, 'wrapup', { narrow: true });

  // An outcome is needed; then the record is saved and the wrap-up ends.
  await b.getByTestId('record-outcome').selectOption('');
  await b.getByTestId('record-save').click();
  await eventually(async () => assert.equal(await b.getByTestId('record-status').getAttribute('data-error-code'), 'no_outcome'));
  await b.getByTestId('record-outcome').selectOption('advice_given');
  await b.getByTestId('record-save').click();
  await textMatches(b.getByTestId('live-status'), /咨询记录已保存/);
  await hidden(b.getByTestId('record-form'));
  await presenceIs(b, 'available');
  assert.equal(await session(b, draftKey), null, 'the draft is gone once saved');

  const token = await accessToken('demo-lawyer-2');
  const listed = await api('GET', '/api/consultations', token);
  const saved = listed.body.find((c) => c.id === started.consultation);
  assert.equal(saved.summary, summary);
  assert.equal(saved.outcome, 'advice_given');
  assert.equal(saved.status, 'ended');

  // The past consultations show it.
  const row = b.getByTestId(`past-${started.consultation}`);
  await visible(row);
  await textMatches(b.getByTestId(`past-outcome-${started.consultation}`), /已提供法律意见/);
  await textMatches(b.getByTestId(`past-record-${started.consultation}`), /已写/);
  await textMatches(row, /汉语.*土地.*\d+:\d\d.*律师/);
  await b.locator('#past-heading').focus();
  await screens(b, 'past');

  // Going offline.
  await b.getByTestId('go-offline').click();
  await presenceIs(b, 'offline');
  assert.equal(await session(b, 'cloudlaw.lawyer.want'), 'offline');
  await a.getByTestId('go-offline').click();
  await presenceIs(a, 'offline');

  assertClean(first.problems);
  assertClean(second.problems);
  assertClean(resident.problems);
  for (const c of [first.context, second.context, resident.context]) await c.close();
});

test('a lost network shows "reconnecting", and the lawyer is online again when it returns', async () => {
  const { context, page, problems } = await openConsole('demo-lawyer');
  await eventually(async () => assert.notEqual(await page.getByTestId('presence').getAttribute('data-state'), ''));
  if (await page.getByTestId('go-offline').isVisible()) {
    await page.getByTestId('go-offline').click();
    await presenceIs(page, 'offline');
  }
  await page.getByTestId('go-online').click();
  await presenceIs(page, 'available');

  // A break, and back.
  await page.getByTestId('take-break').click();
  await presenceIs(page, 'break');
  assert.equal(await page.getByTestId('take-break').isVisible(), false);
  await page.getByTestId('go-online').click();
  await presenceIs(page, 'available');

  // A short loss: the server kept the state.
  await context.setOffline(true);
  await eventually(async () => assert.equal(await page.getByTestId('live-connection').getAttribute('data-state'), 'down'));
  await textMatches(page.getByTestId('live-connection'), /正在重新连接/);
  await context.setOffline(false);
  await connected(page);
  await textMatches(page.getByTestId('live-connection'), /已连接/);
  await presenceIs(page, 'available');

  // Meanwhile the server went offline for this lawyer (as after a reconnection longer than its
  // grace period): the page, whose lawyer wanted to be online, goes online again.
  await context.setOffline(true);
  await eventually(async () => assert.equal(await page.getByTestId('live-connection').getAttribute('data-state'), 'down'));
  const other = await liveEnd(await accessToken('demo-lawyer'));
  await other.next('presence');
  await other.send({ type: 'presence.set', state: 'offline' });
  await other.next('presence', (m) => m.state === 'offline');
  await context.setOffline(false);
  await connected(page);
  await other.next('presence', (m) => m.state === 'available');
  await presenceIs(page, 'available');

  // After a reload too.
  await page.reload();
  await connected(page);
  await presenceIs(page, 'available');
  await page.getByTestId('go-offline').click();
  await presenceIs(page, 'offline');
  await page.reload();
  await connected(page);
  await presenceIs(page, 'offline');

  assertClean(problems);
  assertClean(other.problems);
  await other.context.close();
  await context.close();
});

/**
 * The lawyer (demo-lawyer-2, Chinese) and the interpreter (Tibetan and
 * Chinese) on duty, a resident asks in Tibetan: both are rung at once. The one
 * `first` accepts and is shown waiting for the other; nothing starts until the
 * other accepts too; then all three see and hear the two others.
 */
async function threeWay(first) {
  const lawyer = await openConsole('demo-lawyer-2');
  const interpreter = await openConsole('demo-interpreter');
  const l = lawyer.page;
  const i = interpreter.page;
  for (const page of [l, i]) {
    await eventually(async () => assert.notEqual(await page.getByTestId('presence').getAttribute('data-state'), ''));
    if (await page.getByTestId('go-online').isVisible()) await page.getByTestId('go-online').click();
    await presenceIs(page, 'available');
  }
  const resident = await liveEnd(await terminalToken(), { media: true });
  await resident.next('welcome');
  const asked = Date.now();
  await resident.send({ type: 'consult.request', language: 'bo', topic: 'family' });
  await visible(i.getByTestId('incoming-call'));
  await visible(l.getByTestId('incoming-call'));
  // No lawyer speaks Tibetan: the pair is rung at once, not after the 90 s of the last ring.
  assert.ok(Date.now() - asked < 5_000, `rung ${Date.now() - asked} ms after the request`);
  await textMatches(i.locator('#incoming-heading'), /需要翻译/);
  await textMatches(i.getByTestId('incoming-role'), /翻译/);
  await textMatches(i.getByTestId('incoming-language'), /藏语/);
  await textMatches(i.getByTestId('incoming-topic'), /婚姻家庭/);
  await textMatches(i.getByTestId('incoming-three-way'), /您为居民和律师翻译/);
  await textMatches(l.getByTestId('incoming-role'), /律师/);
  await textMatches(l.getByTestId('incoming-three-way'), /另有一名翻译参加/);
  if (first === 'interpreter') await screens(i, 'ringing-interpreter');

  const [firstPage, secondPage] = first === 'interpreter' ? [i, l] : [l, i];
  await firstPage.getByTestId('accept-call').click();
  await textMatches(firstPage.getByTestId('incoming-countdown'),
    first === 'interpreter' ? /您已接受，正在等待律师接听/ : /您已接受，正在等待翻译接听/);
  // Waiting: still ringing for the other, no call yet anywhere; the first may still give it up.
  await presenceIs(firstPage, 'ringing');
  assert.equal(await firstPage.getByTestId('decline-call').isDisabled(), false);
  assert.equal(await firstPage.getByTestId('accept-call').isDisabled(), true);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.equal(await firstPage.getByTestId('call-view').isVisible(), false);
  assert.equal(await secondPage.getByTestId('call-view').isVisible(), false);
  assert.deepEqual(await resident.unread('consult.started'), [], 'no call starts with one of the two');
  await screens(firstPage, `three-way-waiting-${first}`);

  await secondPage.getByTestId('accept-call').click();
  // Both consoles go straight into the call: neither is told it is in another tab.
  await visible(i.getByTestId('call-view'));
  await visible(l.getByTestId('call-view'));
  for (const page of [i, l]) assert.equal(await page.getByTestId('call-elsewhere').isVisible(), false);
  const started = await resident.next('consult.started');
  assert.deepEqual(started.peers.map((p) => p.role).sort(), ['interpreter', 'lawyer']);
  await seesVideo(i, 2);
  await seesVideo(l, 2);
  await terminalSeesVideo(resident, 2);
  // The browsers' own statistics: each of the three decodes the two others and hears them.
  await seesAndHears(i, 2);
  await seesAndHears(l, 2);
  await seesAndHears(resident.page, 2);
  return { lawyer, interpreter, resident, started };
}

async function goOffline(...pages) {
  for (const page of pages) {
    await page.getByTestId('go-offline').click();
    await presenceIs(page, 'offline');
  }
}

test('a three-way call with the lawyer accepting first starts when the interpreter accepts, and all three see and hear each other', async () => {
  const { lawyer, interpreter, resident } = await threeWay('lawyer');
  const [l, i] = [lawyer.page, interpreter.page];
  await l.getByTestId('hang-up').click();
  await hidden(i.getByTestId('call-view'));
  await presenceIs(l, 'wrap_up');
  await l.getByTestId('record-summary').fill('劳动报酬：已说明劳动仲裁的申请。');
  await l.getByTestId('record-outcome').selectOption('advice_given');
  await l.getByTestId('record-save').click();
  await presenceIs(l, 'available');
  await goOffline(l, i);
  assertClean(lawyer.problems);
  assertClean(interpreter.problems);
  assertClean(resident.problems);
  for (const c of [lawyer.context, interpreter.context, resident.context]) await c.close();
});

test('an interpreter is rung with a lawyer for a Tibetan request, accepts first, interprets, and writes no record', async () => {
  const { lawyer, interpreter, resident, started } = await threeWay('interpreter');
  const [l, i] = [lawyer.page, interpreter.page];
  await textMatches(i.getByTestId('call-peers'), /居民.*新都桥.*律师.*王律师/);
  assert.equal(await i.getByTestId('remote-videos').getAttribute('data-count'), '2');
  // Each video says whose it is.
  const captions = await i.locator('#remote-videos figcaption').allTextContents();
  assert.deepEqual(captions.map((c) => c.split(' · ')[0]).sort(), ['居民', '律师']);
  assert.equal(await i.getByTestId('record-form').isVisible(), false, 'only the lawyer writes the record');
  await visible(l.getByTestId('record-form'));
  await screens(i, 'call-interpreter', { narrow: true });

  // The lawyer hangs up: the interpreter is free at once, the lawyer writes the record.
  await l.getByTestId('hang-up').click();
  await hidden(i.getByTestId('call-view'));
  await textMatches(i.getByTestId('live-status'), /通话已结束/);
  await presenceIs(i, 'available');
  assert.equal(await i.getByTestId('record-form').isVisible(), false);
  await presenceIs(l, 'wrap_up');
  await l.getByTestId('record-summary').fill('离婚财产分割：已说明法律援助的申请条件。');
  await l.getByTestId('record-outcome').selectOption('referred_legal_aid');
  await l.getByTestId('record-save').click();
  await presenceIs(l, 'available');

  // The interpreter's past consultations: their role, and no way to write the record.
  const row = i.getByTestId(`past-${started.consultation}`);
  await visible(row);
  await textMatches(row, /藏语.*婚姻家庭.*翻译/);
  await eventually(async () => {
    await i.getByTestId('past-refresh').click();
    assert.match(await i.getByTestId(`past-outcome-${started.consultation}`).textContent(), /转介法律援助/);
  }, 20_000);
  assert.equal(await i.getByTestId(`past-write-${started.consultation}`).count(), 0);

  await goOffline(l, i);
  assertClean(lawyer.problems);
  assertClean(interpreter.problems);
  assertClean(resident.problems);
  for (const c of [lawyer.context, interpreter.context, resident.context]) await c.close();
});

test('outside their hours a lawyer is told they will not be rung, even when online', async () => {
  // A new lawyer has no hours yet.
  const coordinator = await accessToken('demo-coordinator');
  const username = `live-offduty-${Date.now().toString(36)}`;
  const created = await api('POST', '/api/accounts', coordinator, {
    username, display_name: 'Off-duty Lawyer', password: 'off-duty-pass-1', roles: ['lawyer'], languages: ['zh'], topics: ['land'],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await login(page, username, 'off-duty-pass-1');
  await connected(page);
  await presenceIs(page, 'offline');
  await visible(page.getByTestId('off-duty'));
  await textMatches(page.getByTestId('off-duty'), /不在您的值班时间内/);
  await page.getByTestId('go-online').click();
  await presenceIs(page, 'available');
  await visible(page.getByTestId('off-duty'));
  await textMatches(page.getByTestId('past-body'), /还没有咨询/);
  await page.getByTestId('lang-en').click();
  await textMatches(page.getByTestId('off-duty'), /outside your hours/);
  await checkScreen(page, 'lawyer-offduty-en');
  await page.getByTestId('go-offline').click();
  await presenceIs(page, 'offline');
  assertClean(problems);
  await context.close();
});
