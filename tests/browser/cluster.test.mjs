// Two signaling nodes on one PostgreSQL database, with two relay nodes: the
// kiosk app is served by one node and the lawyer app by the other. The lawyer
// is rung, accepts, and both see and hear each other through one relay: the
// live path runs on one node for both, and the room token tells the other
// node which relay the call is on. Only on PostgreSQL (the second pass of
// scripts/test): on SQLite one machine serves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startRelayNode, launchBrowser, newContext, watch, assertClean, visible, eventually, login, screenshot,
  recordPeerConnections,
} from './support.mjs';

const onPostgres = Boolean(process.env.TEST_POSTGRES_URL);
let relays = [];
let first;
let second;
let browser;

before(async () => {
  if (!onPostgres) return;
  relays = [await startRelayNode(), await startRelayNode()];
  const config = relays.map((relay, i) => [
    '[[relay_nodes]]', `name = "relay-${i}"`, `control_url = "${relay.controlUrl}"`,
    `control_token = "${relay.controlToken}"`, 'probe_secs = 3600',
  ].join('\n')).join('\n');
  first = await startServer({ config });
  second = await startServer({ config, database: first.database });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await second?.stop();
  await first?.stop();
  for (const relay of relays) await relay.kill9();
});

/** Video frames and sound energy the page's peer connections decoded. */
function decoded(page) {
  return page.evaluate(async () => {
    let frames = 0;
    let energy = 0;
    for (const pc of window.peerConnections ?? []) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
        if (s.type === 'inbound-rtp' && s.kind === 'audio') energy += s.totalAudioEnergy ?? 0;
      });
    }
    return { frames, energy };
  });
}

test('a resident at a kiosk on one node and a lawyer on the other see and hear each other', { skip: !onPostgres && 'PostgreSQL only' }, async () => {
  const problems = [];
  const kioskContext = await newContext(browser, first, { hasTouch: true, timezoneId: 'Asia/Shanghai' });
  await recordPeerConnections(kioskContext);
  const kiosk = await kioskContext.newPage();
  problems.push(watch(kiosk));
  await kiosk.goto(first.url('/terminal'));
  await kiosk.getByTestId('enroll-code').fill('DEMO-TERMINAL-1');
  await kiosk.getByTestId('enroll-submit').click();
  await visible(kiosk.getByTestId('start-screen'));

  const lawyerContext = await newContext(browser, second);
  await recordPeerConnections(lawyerContext);
  const lawyer = await lawyerContext.newPage();
  problems.push(watch(lawyer));
  await lawyer.goto(second.url('/lawyer'));
  await login(lawyer, 'demo-lawyer', 'demo-pass');
  await lawyer.getByTestId('go-online').click();
  await visible(lawyer.getByTestId('go-offline'));

  await kiosk.getByTestId('lang-bo').tap();
  await kiosk.getByTestId('talk-now').tap();
  await kiosk.getByTestId('topic-land').tap();
  await visible(kiosk.getByTestId('check-screen'));
  await kiosk.getByTestId('consult-now').tap();
  await visible(lawyer.getByTestId('incoming-call'));
  await lawyer.getByTestId('accept-call').click();
  await visible(kiosk.getByTestId('call-screen'));

  for (const [who, page] of [['kiosk', kiosk], ['lawyer', lawyer]]) {
    await eventually(async () => {
      const now = await decoded(page);
      assert.ok(now.frames > 10 && now.energy > 0, `${who} sees and hears: ${JSON.stringify(now)}`);
    }, 30_000);
  }
  // One relay carries both sides, whichever node each is connected to.
  const health = await (await fetch(first.url('/healthz'))).json();
  const carrying = health.relays.filter((r) => r.rooms > 0);
  assert.equal(carrying.length, 1, JSON.stringify(health.relays));
  assert.equal(carrying[0].participants, 2, JSON.stringify(health.relays));
  await screenshot(kiosk, 'cluster-kiosk-call');

  await lawyer.getByTestId('hang-up').click();
  await visible(kiosk.getByTestId('rating-screen'));
  await kioskContext.close();
  await lawyerContext.close();
  assertClean(problems.flat());
});
