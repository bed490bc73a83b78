// The whole consultation, every side in its own app in a real Chromium: the
// kiosk (/terminal) asks in Tibetan, the demo lawyer (/lawyer) goes on duty,
// is rung and accepts, both see and hear each other through the relay, the
// lawyer writes the record, the resident rates. Also: a decline moves the
// request to the next lawyer; a lawyer and an interpreter in a three-way call.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServerAndBrowser, stopServerAndBrowser, newContext, watch, assertClean, visible, hidden, eventually,
  accessToken, screenshot, recordPeerConnections, onlineVolunteer, enrollKiosk,
} from './support.mjs';

// Lawyers outside the region's team are rung after 2 s, interpreters (three-way) after 6 s.
const CONFIG = '[live]\nring_after_secs = [2, 4, 6]\n';

let server;
let browser;
let kiosk;
const problems = [];

before(async () => {
  ({ server, browser } = await startServerAndBrowser({ config: CONFIG }));
  const context = await newContext(browser, server, { hasTouch: true, timezoneId: 'Asia/Shanghai' });
  await recordPeerConnections(context);
  kiosk = await context.newPage();
  problems.push(watch(kiosk));
  await enrollKiosk(kiosk, server);
});

after(() => stopServerAndBrowser(server, browser));

/** A lawyer or interpreter signed in to /lawyer and on duty. */
const online = (username) => onlineVolunteer(browser, server, username, problems);

async function offline(page) {
  await page.getByTestId('go-offline').click().catch(() => {});
  await page.context().close();
}

/** The resident asks at the kiosk, in a language, about a topic. */
async function ask(lang, topic) {
  await visible(kiosk.getByTestId('start-screen'));
  await kiosk.getByTestId(`lang-${lang}`).tap();
  await kiosk.getByTestId('talk-now').tap();
  await kiosk.getByTestId(`topic-${topic}`).tap();
  await visible(kiosk.getByTestId('check-screen'));
  await kiosk.getByTestId('consult-now').tap();
  await visible(kiosk.getByTestId('waiting'));
}

/**
 * Every remote-video on a page plays video and carries sound: frames advance,
 * and sound with energy (the fake microphone beeps) is decoded from each.
 */
async function seesAndHears(page, count) {
  await eventually(async () => {
    const videos = page.getByTestId('remote-video');
    assert.equal(await videos.count(), count, 'one remote-video per other participant');
    for (let i = 0; i < count; i += 1) {
      const state = await videos.nth(i).evaluate((v) => ({ width: v.videoWidth, time: v.currentTime, audio: v.srcObject?.getAudioTracks().length ?? 0 }));
      assert.ok(state.width > 0 && state.time > 0.5, `video ${i} plays: ${JSON.stringify(state)}`);
      assert.equal(state.audio, 1, `video ${i} has a sound track`);
    }
  }, 40_000);
  // Heard: the browser decoded sound with energy from every other participant
  // (its own measure, in the statistics of the page's peer connection).
  await eventually(async () => {
    const energies = await page.evaluate(async () => {
      const out = [];
      for (const pc of window.peerConnections ?? []) {
        if (pc.connectionState === 'closed') continue;
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') out.push(s.totalAudioEnergy ?? 0);
        });
      }
      return out;
    });
    assert.ok(energies.filter((e) => e > 0).length >= count, `sound from ${count} participants: ${energies}`);
  }, 30_000);
}

test('a resident asks in Tibetan, the demo lawyer answers, they see and hear each other, record and rating', async () => {
  const drolma = await online('demo-lawyer');
  await ask('bo', 'land');

  // The lawyer is rung: sight (and sound) with language, topic and region.
  const ring = drolma.getByTestId('incoming-call');
  await visible(ring);
  await screenshot(drolma, 'consultation-lawyer-ringing');
  await drolma.getByTestId('accept-call').click();

  await visible(kiosk.getByTestId('call-screen'));
  await seesAndHears(kiosk, 1);
  await seesAndHears(drolma, 1);
  await screenshot(kiosk, 'consultation-kiosk-call');
  await screenshot(drolma, 'consultation-lawyer-call');

  // Notes during the call; the record is saved in the wrap-up.
  await drolma.getByTestId('record-summary').fill('Explained the land contract rights; the village committee must show the registration.');
  await drolma.getByTestId('hang-up').click();
  await visible(kiosk.getByTestId('rating-screen'));
  await drolma.getByTestId('record-outcome').selectOption('referred_legal_aid');
  await drolma.getByTestId('record-save').click();
  await kiosk.getByTestId('rate-5').tap();
  await visible(kiosk.getByTestId('rating-thanks'));

  const token = await accessToken(server, 'demo-lawyer');
  await eventually(async () => {
    const response = await fetch(server.url('/api/consultations'), { headers: { authorization: `Bearer ${token}` } });
    const list = await response.json();
    const consultation = (Array.isArray(list) ? list : list.consultations ?? list.items)[0];
    assert.match(consultation.summary ?? '', /land contract/);
    assert.equal(consultation.outcome, 'referred_legal_aid');
    assert.equal(consultation.rating, 5);
    assert.equal(consultation.language, 'bo');
  });
  await offline(drolma);
  await kiosk.getByTestId('rating-done').tap();
  for (const list of problems) assertClean(list);
});

test('a lawyer who declines passes the resident on to the next lawyer', async () => {
  const drolma = await online('demo-lawyer');
  const wang = await online('demo-lawyer-2');
  await ask('zh', 'labour');
  // The region's team first: Drolma. She declines; Wang is rung.
  await visible(drolma.getByTestId('incoming-call'));
  await drolma.getByTestId('decline-call').click();
  await hidden(drolma.getByTestId('incoming-call'));
  await visible(wang.getByTestId('incoming-call'));
  await wang.getByTestId('accept-call').click();
  await visible(kiosk.getByTestId('call-screen'));
  await seesAndHears(wang, 1);
  assert.equal(await drolma.getByTestId('incoming-call').isHidden(), true);
  await wang.getByTestId('hang-up').click();
  await visible(kiosk.getByTestId('rating-screen'));
  await kiosk.getByTestId('rating-done').tap();
  // The record ends Wang's wrap-up: he can be rung again.
  await wang.getByTestId('record-summary').fill('Wages owed: how to apply to the labour arbitration committee.');
  await wang.getByTestId('record-outcome').selectOption('advice_given');
  await wang.getByTestId('record-save').click();
  await hidden(wang.getByTestId('record-form'));
  await offline(drolma);
  await offline(wang);
  for (const list of problems) assertClean(list);
});

test('a Tibetan speaker with a Chinese-speaking lawyer and an interpreter: a three-way call', async () => {
  const wang = await online('demo-lawyer-2');
  const tsering = await online('demo-interpreter');
  await ask('bo', 'family');
  // Nobody speaks Tibetan and the topic's lawyer is free: lawyer and interpreter are rung together.
  await visible(wang.getByTestId('incoming-call'));
  await visible(tsering.getByTestId('incoming-call'));
  await tsering.getByTestId('accept-call').click();
  await wang.getByTestId('accept-call').click();
  await visible(kiosk.getByTestId('call-screen'));
  await seesAndHears(kiosk, 2);
  await seesAndHears(wang, 2);
  await seesAndHears(tsering, 2);
  await screenshot(kiosk, 'consultation-kiosk-three-way');
  await screenshot(tsering, 'consultation-interpreter-call');
  await kiosk.getByTestId('hang-up').tap();
  await visible(kiosk.getByTestId('rating-screen'));
  await kiosk.getByTestId('rate-4').tap();
  await visible(kiosk.getByTestId('rating-thanks'));
  await offline(wang);
  await offline(tsering);
  for (const list of problems) assertClean(list);
});
