// Two signaling nodes on one PostgreSQL database, with two relay nodes: one
// listed in the configuration, one that registers itself for the kiosk's
// region. The kiosk app is served by one signaling node and the lawyer app by
// the other. The lawyer is rung, accepts, and both see and hear each other
// through the registered relay: the live path runs on one node for both, and
// the room token tells the other node which relay the call is on. Then that
// relay is killed (kill -9) and the call moves to the other, untouched. Only on PostgreSQL (the second pass of
// scripts/test): on SQLite one machine serves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startRelayNode, launchBrowser, assertClean, visible, eventually, screenshot, startKioskCall, decodedMedia,
} from './support.mjs';

const onPostgres = Boolean(process.env.TEST_POSTGRES_URL);
let relays = [];
let first;
let second;
let browser;

before(async () => {
  if (!onPostgres) return;
  // One relay is listed in the configuration; the other, for the kiosk's
  // region, registers itself with the signaling nodes once they run.
  const registrationToken = `registration-${Date.now()}-for-the-test`;
  relays = [await startRelayNode()];
  const config = [
    '[[relay_nodes]]', 'name = "listed"', `control_url = "${relays[0].controlUrl}"`,
    `control_token = "${relays[0].controlToken}"`, 'probe_secs = 3600',
    '[relay_registration]', `token = "${registrationToken}"`, 'probe_secs = 3600',
  ].join('\n');
  first = await startServer({ config });
  second = await startServer({ config, database: first.database });
  relays.push(await startRelayNode({
    controlToken: registrationToken,
    register: { at: [first.origin, second.origin], name: 'garze-registered', region: 'demo-garze' },
  }));
  // Every signaling node uses it within seconds.
  for (const server of [first, second]) {
    await eventually(async () => {
      const health = await (await fetch(server.url('/healthz'))).json();
      assert.ok(health.relays.some((r) => r.name === 'garze-registered' && r.up), JSON.stringify(health.relays));
    }, 20_000);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await second?.stop();
  await first?.stop();
  for (const relay of relays) await relay.kill9();
});

test('a resident at a kiosk on one node and a lawyer on the other see and hear each other, also after their relay dies', { skip: !onPostgres && 'PostgreSQL only' }, async () => {
  const { kiosk, lawyer, kioskContext, lawyerContext, problems } = await startKioskCall(browser, first, second);

  for (const [who, page] of [['kiosk', kiosk], ['lawyer', lawyer]]) {
    await eventually(async () => {
      const now = await decodedMedia(page);
      assert.ok(now.frames > 10 && now.energy > 0, `${who} sees and hears: ${JSON.stringify(now)}`);
    }, 30_000);
  }
  // One relay carries both sides, whichever node each is connected to: the
  // one that registered for the kiosk's region.
  // (/healthz shows the relays' counters as last polled, once a second.)
  await eventually(async () => {
    const health = await (await fetch(first.url('/healthz'))).json();
    const carrying = health.relays.filter((r) => r.rooms > 0);
    assert.deepEqual(carrying.map((r) => [r.name, r.participants]), [['garze-registered', 2]], JSON.stringify(health.relays));
  }, 10_000);
  await screenshot(kiosk, 'cluster-kiosk-call');

  // kill -9 of the relay carrying the call: the node that runs the live path
  // moves it, and both sides (one through the other signaling node) see and
  // hear each other again through the listed relay within 15 s, untouched.
  const since = { kiosk: (await decodedMedia(kiosk)).connections, lawyer: (await decodedMedia(lawyer)).connections };
  const killedAt = Date.now();
  await relays[1].kill9();
  await Promise.all([['kiosk', kiosk], ['lawyer', lawyer]].map(([who, page]) => eventually(async () => {
    const now = await decodedMedia(page, since[who]);
    assert.ok(now.frames > 0 && now.energy > 0, `${who} receives again: ${JSON.stringify(now)}`);
  }, Math.max(0, 15_000 - (Date.now() - killedAt)))));
  const back = Date.now() - killedAt;
  console.log(`media again on both sides, across two signaling nodes, ${back} ms after kill -9 of the call's relay`);
  assert.ok(back <= 15_000, `${back} ms`);
  await eventually(async () => {
    const after = (await (await fetch(second.url('/healthz'))).json()).relays;
    const listed = after.find((r) => r.name === 'listed');
    assert.equal(listed.participants, 2, JSON.stringify(after));
  });
  await visible(kiosk.getByTestId('call-screen'));

  await lawyer.getByTestId('hang-up').click();
  await visible(kiosk.getByTestId('rating-screen'));
  await kioskContext.close();
  await lawyerContext.close();
  assertClean(problems.flat());
});
