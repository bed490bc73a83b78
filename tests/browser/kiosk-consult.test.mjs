// Talking to a lawyer now at the kiosk, in a real Chromium against the real
// server: topic, camera check, waiting (place, estimate, nobody on duty ->
// booking, cancel), the call through the relay, rating; the network pulled
// out while waiting and in a call; a reload while waiting; an appointment
// that starts during another call; the served Tibetan webfont. The lawyer's side is played by a
// bare live client here (lawyer-live.test.mjs and consultation.test.mjs use
// the lawyer's own app). Screenshots of every screen in every language.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServerAndBrowser, stopServerAndBrowser, newContext, watch, assertClean, visible, hidden, textMatches,
  eventually, checkScreen, accessToken, enrollKiosk, availableLawyer as liveLawyer, leaveLive as leave,
} from './support.mjs';

// English is offered too, for the screenshots of a whole call in English; lawyers outside
// the region's team are rung after 2 s of waiting rather than 30.
// Appointments that start are looked for every second.
const CONFIG = '[live]\nlanguages = ["bo", "zh", "en"]\nring_after_secs = [2, 4, 6]\n[schedule]\nreminder_check_secs = 1\n';

let server;
let browser;
let kiosk;
let page;
let problems;
let englishLawyer;
const fontsServed = [];

before(async () => {
  ({ server, browser } = await startServerAndBrowser({ config: CONFIG }));
  kiosk = await newContext(browser, server, { hasTouch: true, timezoneId: 'Asia/Shanghai' });
  page = await kiosk.newPage();
  problems = watch(page);
  page.on('response', (response) => {
    if (response.url().includes('/web/fonts/')) fontsServed.push(`${new URL(response.url()).pathname} ${response.status()}`);
  });
  await enrollKiosk(page, server);
  englishLawyer = await createEnglishLawyer();
});

after(async () => {
  await kiosk?.close();
  await stopServerAndBrowser(server, browser);
});

/** A lawyer who speaks English and is always on duty, created by the admin. */
async function createEnglishLawyer() {
  const admin = await accessToken(server, 'demo-admin');
  const call = async (method, path, body) => {
    const response = await fetch(server.url(path), {
      method,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const account = await call('POST', '/api/accounts', {
    username: 'english-lawyer', display_name: 'Lawyer Smith', password: 'english-pass-1',
    roles: ['lawyer'], languages: ['en'], topics: ['land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other'],
    time_zone: 'Asia/Shanghai',
  });
  const weekly = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((weekday) => ({ weekday, start: '00:00', end: '24:00' }));
  await call('PUT', `/api/accounts/${account.id}/availability`, { time_zone: 'Asia/Shanghai', weekly, overrides: [] });
  return { username: 'english-lawyer', password: 'english-pass-1' };
}

/** An available lawyer, played by a bare live client. */
const availableLawyer = (username, password) => liveLawyer(browser, server, username, password);

/** Runs a check with the kiosk's screen turned upright (many kiosks stand that way). */
async function portrait(check) {
  await page.setViewportSize({ width: 800, height: 1280 });
  try {
    await check();
  } finally {
    await page.setViewportSize({ width: 1280, height: 800 });
  }
}

/** The start screen's actions are on screen without scrolling (a resident may not know to scroll). */
async function actionsAboveTheFold() {
  const height = page.viewportSize().height;
  for (const id of ['talk-now', 'book-later']) {
    const box = await page.getByTestId(id).boundingBox();
    assert.ok(box && box.y + box.height <= height, `${id} ends at ${box && box.y + box.height}, below the ${height}px screen`);
  }
}

/** From the start screen in a language to the camera check with a topic. */
async function toCheck(lang, topic) {
  await visible(page.getByTestId('start-screen'));
  await page.getByTestId(`lang-${lang}`).tap();
  await eventually(async () => assert.equal(await page.evaluate(() => document.documentElement.lang), lang));
  await actionsAboveTheFold();
  await page.getByTestId('talk-now').tap();
  await visible(page.getByTestId('booking-topic-screen'));
  await page.getByTestId(`topic-${topic}`).tap();
  await visible(page.getByTestId('check-screen'));
  // The fake camera and microphone of the test Chromium.
  await eventually(async () => {
    assert.equal(await page.getByTestId('check-camera-missing').isHidden(), true);
    const playing = await page.getByTestId('check-video').evaluate((v) => v.videoWidth > 0);
    assert.ok(playing, 'the camera preview plays');
  });
}

test('Tibetan is drawn with the webfont the server serves, not a system font', async () => {
  await visible(page.getByTestId('start-screen'));
  const cdp = await kiosk.newCDPSession(page);
  await cdp.send('DOM.enable');
  await cdp.send('CSS.enable');
  const { root } = await cdp.send('DOM.getDocument');
  const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '#start-heading' });
  await eventually(async () => {
    const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
    const web = fonts.find((f) => f.isCustomFont && /Tibetan/.test(f.familyName));
    assert.ok(web, `the heading's Tibetan letters use the webfont: ${JSON.stringify(fonts)}`);
    assert.ok(web.glyphCount > 10);
  });
  await cdp.detach();
  assert.ok(fontsServed.includes('/web/fonts/tibetan-regular.ttf 200'), `fonts served: ${fontsServed}`);
});

test('nobody on duty: the resident is told at once and can book a later time instead', async () => {
  await toCheck('bo', 'land');
  await textMatches(page.getByTestId('check-chosen'), /ས་ཞིང་།/);
  await checkScreen(page, 'kiosk-check-bo', { minTarget: 64 });
  await page.getByTestId('consult-now').tap();
  await visible(page.getByTestId('waiting'));
  await visible(page.getByTestId('nobody-on-duty'));
  await textMatches(page.getByTestId('waiting-place'), /^༡$/);
  await checkScreen(page, 'kiosk-waiting-nobody-bo', { minTarget: 64 });

  // Booking instead: the request is withdrawn, the topic is kept.
  const slots = page.waitForRequest((r) => r.url().includes('/api/appointments/slots'));
  await page.getByTestId('waiting-book').tap();
  await visible(page.getByTestId('booking-slots-screen'));
  assert.equal(new URL((await slots).url()).searchParams.get('topic'), 'land');
  // The terminal no longer waits: it may ask again at once.
  await page.getByTestId('booking-back-slots').tap();
  await page.getByTestId('booking-back').tap();
  await toCheck('bo', 'land');
  await page.getByTestId('consult-now').tap();
  await visible(page.getByTestId('waiting'));
  await page.getByTestId('cancel').tap();
  await visible(page.getByTestId('start-screen'));
  assertClean(problems);
});

test('a resident asks in Tibetan, talks with the lawyer through the relay, and rates', async () => {
  const lawyer = await availableLawyer();
  try {
    await toCheck('bo', 'family');
    await page.getByTestId('consult-now').tap();
    await visible(page.getByTestId('waiting'));
    const offer = await lawyer.next('consult.offer');
    assert.equal(offer.language, 'bo');
    assert.equal(offer.topic, 'family');
    await textMatches(page.getByTestId('waiting-place'), /^༡$/);
    assert.equal(await page.getByTestId('nobody-on-duty').isHidden(), true);
    await visible(page.getByTestId('waiting-estimate'));
    await checkScreen(page, 'kiosk-waiting-bo', { minTarget: 64 });
    await portrait(() => checkScreen(page, 'kiosk-waiting-bo-portrait', { minTarget: 64 }));

    await lawyer.send({ type: 'consult.accept', request: offer.request });
    const started = await lawyer.next('consult.started');
    await visible(page.getByTestId('call-screen'));

    // The resident sees and hears the lawyer; the lawyer sees the resident.
    const remote = page.getByTestId('remote-video');
    await eventually(async () => {
      const state = await remote.evaluate((v) => ({ width: v.videoWidth, time: v.currentTime, audio: v.srcObject?.getAudioTracks().length }));
      assert.ok(state.width > 0 && state.time > 0.5, `remote video plays: ${JSON.stringify(state)}`);
      assert.equal(state.audio, 1);
    }, 30_000);
    await eventually(async () => assert.ok((await lawyer.received()).frames > 10, 'the lawyer receives video'), 30_000);
    assert.equal(await page.getByTestId('local-video').evaluate((v) => v.muted && v.srcObject !== null), true);
    await textMatches(page.locator('.remote figcaption'), /ཁྲིམས་རྩོད་པ།/);
    await eventually(async () => assert.equal(await page.getByTestId('network-quality').getAttribute('data-level'), 'good'));
    await checkScreen(page, 'kiosk-call-bo', { minTarget: 64 });
    await portrait(() => checkScreen(page, 'kiosk-call-bo-portrait', { minTarget: 64 }));

    // Sound only, by choice, and back.
    await page.getByTestId('audio-only').tap();
    assert.equal(await page.getByTestId('audio-only').getAttribute('aria-pressed'), 'true');
    await eventually(async () => assert.equal(await page.evaluate(() => document.querySelector('#local-video').hidden), true));
    await page.getByTestId('audio-only').tap();
    assert.equal(await page.getByTestId('audio-only').getAttribute('aria-pressed'), 'false');

    // The resident hangs up, and rates.
    await page.getByTestId('hang-up').tap();
    const ended = await lawyer.next('consult.ended');
    assert.equal(ended.reason, 'hung_up');
    await visible(page.getByTestId('rating-screen'));
    for (let n = 1; n <= 5; n += 1) await visible(page.getByTestId(`rate-${n}`));
    await checkScreen(page, 'kiosk-rating-bo', { minTarget: 64 });
    await page.getByTestId('rate-4').tap();
    await visible(page.getByTestId('rating-thanks'));
    const token = await accessToken(server, 'demo-lawyer');
    await eventually(async () => {
      const response = await fetch(server.url(`/api/consultations/${started.consultation}`), { headers: { authorization: `Bearer ${token}` } });
      assert.equal((await response.json()).rating, 4);
    });
    // Nothing of this resident stays: the start screen, in Tibetan, camera off.
    await visible(page.getByTestId('start-screen'));
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'bo');
    assert.equal(await page.evaluate(() => document.querySelector('#local-video').srcObject), null);
  } finally {
    await leave(lawyer);
  }
  assertClean(problems);
});

test('the network goes away while the resident waits, and the wait goes on', async () => {
  await toCheck('zh', 'debt');
  await page.getByTestId('consult-now').tap();
  await visible(page.getByTestId('waiting'));
  await textMatches(page.getByTestId('waiting-place'), /^1$/);
  await kiosk.setOffline(true);
  await visible(page.getByTestId('offline'));
  await visible(page.getByTestId('waiting'));
  await kiosk.setOffline(false);
  await hidden(page.getByTestId('offline'));
  // The server says again that the request waits; a lawyer who comes takes it.
  const lawyer = await availableLawyer('demo-lawyer-2');
  try {
    const offer = await lawyer.next('consult.offer');
    assert.equal(offer.topic, 'debt');
    // A reload while waiting comes back to the same wait.
    await page.reload();
    await visible(page.getByTestId('waiting'));
    await lawyer.send({ type: 'consult.decline', request: offer.request });
    await page.getByTestId('cancel').tap();
    await visible(page.getByTestId('start-screen'));
  } finally {
    await leave(lawyer);
  }
  assertClean(problems);
});

test('the kiosk loses its network in the middle of a call, and the call comes back by itself', async () => {
  const lawyer = await availableLawyer();
  try {
    await toCheck('bo', 'criminal');
    await page.getByTestId('consult-now').tap();
    const offer = await lawyer.next('consult.offer');
    await lawyer.send({ type: 'consult.accept', request: offer.request });
    const started = await lawyer.next('consult.started');
    const playing = () => page.getByTestId('remote-video').evaluate((v) => v.videoWidth > 0 ? v.currentTime : 0);
    await eventually(async () => assert.ok((await playing()) > 0.5), 30_000);

    await kiosk.setOffline(true);
    await visible(page.getByTestId('offline'));
    // The lawyer is told the resident is away; the room waits for them.
    const away = await lawyer.next('consult.peer');
    assert.deepEqual([away.role, away.present], ['resident', false]);
    await kiosk.setOffline(false);
    await hidden(page.getByTestId('offline'));
    const back = await lawyer.next('consult.peer', (m) => m.present);
    assert.equal(back.role, 'resident');
    // Same consultation, same screen, pictures moving again: nobody touched anything.
    await visible(page.getByTestId('call-screen'));
    const before = await playing();
    await eventually(async () => assert.ok((await playing()) > before + 1, "the lawyer's picture moves again"), 30_000);
    await eventually(async () => {
      const frames = (await lawyer.received()).frames;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.ok((await lawyer.received()).frames > frames, 'the lawyer sees the resident again');
    }, 30_000);
    await lawyer.send({ type: 'consult.hangup', consultation: started.consultation });
    await visible(page.getByTestId('rating-screen'));
    await page.getByTestId('rating-done').tap();
    await visible(page.getByTestId('start-screen'));
  } finally {
    await leave(lawyer);
  }
  assertClean(problems);
});

/**
 * An appointment at this kiosk with a lawyer that starts now. Booking through
 * the API needs an hour's notice, so the row is written straight into the
 * server's database.
 */
async function appointmentStartingNow(lawyerUsername, language, topic, startsIn = 0) {
  const device = await page.evaluate(() => JSON.parse(localStorage.getItem('cloudlaw.terminal')).access_token);
  const me = await (await fetch(server.url('/api/me'), { headers: { authorization: `Bearer ${device}` } })).json();
  const now = Math.floor(Date.now() / 1000) + startsIn;
  const id = `appointment-${now}`;
  const q = (value) => `'${String(value).replaceAll("'", "''")}'`;
  await server.sql(
    'INSERT INTO appointments (id, terminal_id, region_id, lawyer_id, language, topic, starts_at, ends_at, status, booked_by, created_at, updated_at) ' +
    `SELECT ${q(id)}, ${q(me.terminal.id)}, ${q(me.terminal.region_id)}, id, ${q(language)}, ${q(topic)}, ` +
    `${now - 5}, ${now + 1800}, 'booked', 'test', ${now - 3600}, ${now - 3600} FROM accounts WHERE username = ${q(lawyerUsername)}`,
  );
  return { id, start: now - 5 };
}

test('the start screen says when a consultation booked here begins', async () => {
  await visible(page.getByTestId('start-screen'));
  assert.equal(await page.getByTestId('appointment-soon').isHidden(), true);
  // In ten minutes: inside the reminder window (30 minutes), not started.
  const { start } = await appointmentStartingNow('demo-lawyer', 'bo', 'family', 600);
  await visible(page.getByTestId('appointment-soon'));
  const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .format(new Date(start * 1000));
  await textMatches(page.getByTestId('appointment-soon'), new RegExp(`ཆུ་ཚོད། ${local}`));
  await actionsAboveTheFold();
  await checkScreen(page, 'kiosk-start-appointment-soon-bo', { minTarget: 64 });
  await page.getByTestId('lang-zh').tap();
  await textMatches(page.getByTestId('appointment-soon'), /已预约的咨询/);
  await page.getByTestId('lang-bo').tap();
});

test('an appointment that starts during a call is next at the kiosk, after the rating, in its language', async () => {
  const drolma = await availableLawyer();
  const wang = await availableLawyer('demo-lawyer-2');
  try {
    await toCheck('bo', 'land');
    await page.getByTestId('consult-now').tap();
    const offer = await drolma.next('consult.offer');
    await drolma.send({ type: 'consult.accept', request: offer.request });
    const first = await drolma.next('consult.started');
    await visible(page.getByTestId('call-screen'));

    const { id: appointment } = await appointmentStartingNow('demo-lawyer-2', 'zh', 'labour');
    await wang.next('appointment_started');
    // The call at the kiosk goes on undisturbed; Wang is not rung yet.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(await wang.unread('consult.offer'), []);
    assert.equal(await page.getByTestId('call-screen').isVisible(), true);

    await drolma.send({ type: 'consult.hangup', consultation: first.consultation });
    await visible(page.getByTestId('rating-screen'));
    const second = await wang.next('consult.offer');
    assert.equal(second.topic, 'labour');
    // The resident who just talked still rates; then the booked resident's wait, in Chinese.
    await page.getByTestId('rate-5').tap();
    await visible(page.getByTestId('rating-thanks'));
    await visible(page.getByTestId('waiting'));
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh');
    await textMatches(page.getByTestId('waiting-note'), /预约/);
    await wang.send({ type: 'consult.accept', request: second.request });
    const started = await wang.next('consult.started');
    await visible(page.getByTestId('call-screen'));
    const token = await accessToken(server, 'demo-lawyer-2');
    await eventually(async () => {
      const response = await fetch(server.url(`/api/appointments/${appointment}`), { headers: { authorization: `Bearer ${token}` } });
      const body = await response.json();
      assert.equal(body.status, 'completed');
      assert.equal(body.consultation_id, started.consultation);
    });
    await page.getByTestId('hang-up').tap();
    await visible(page.getByTestId('rating-screen'));
    await page.getByTestId('rating-done').tap();
    await visible(page.getByTestId('start-screen'));
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'bo');
  } finally {
    await leave(drolma);
    await leave(wang);
  }
  assertClean(problems);
});

test('every screen of talking now, in Chinese and English', async () => {
  for (const [lang, lawyerName, password] of [['zh', 'demo-lawyer-2', 'demo-pass'], ['en', englishLawyer.username, englishLawyer.password]]) {
    await toCheck(lang, 'labour');
    await checkScreen(page, `kiosk-check-${lang}`, { minTarget: 64 });
    await page.getByTestId('consult-now').tap();
    await visible(page.getByTestId('nobody-on-duty'));
    await checkScreen(page, `kiosk-waiting-nobody-${lang}`, { minTarget: 64 });
    const lawyer = await availableLawyer(lawyerName, password);
    try {
      const offer = await lawyer.next('consult.offer');
      await hidden(page.getByTestId('nobody-on-duty'));
      await checkScreen(page, `kiosk-waiting-${lang}`, { minTarget: 64 });
      await lawyer.send({ type: 'consult.accept', request: offer.request });
      const started = await lawyer.next('consult.started');
        await eventually(async () => {
        assert.ok(await page.getByTestId('remote-video').evaluate((v) => v.videoWidth > 0 && v.currentTime > 0.3));
      }, 30_000);
      await checkScreen(page, `kiosk-call-${lang}`, { minTarget: 64 });
      // The lawyer hangs up this time.
      await lawyer.send({ type: 'consult.hangup', consultation: started.consultation });
      await visible(page.getByTestId('rating-screen'));
      await checkScreen(page, `kiosk-rating-${lang}`, { minTarget: 64 });
      await page.getByTestId('rate-5').tap();
      await visible(page.getByTestId('rating-thanks'));
      await page.getByTestId('rating-done').tap();
      await visible(page.getByTestId('start-screen'));
    } finally {
      await leave(lawyer);
    }
  }
  assertClean(problems);
});
