// Two standalone media-relay nodes behind one signaling server. A call goes to
// the relay of the kiosk's region; when that relay is killed (kill -9, no
// goodbye) in the middle of the call, signaling moves the call to the other
// relay and both apps rejoin by themselves: within 15 s each side decodes the
// other's video and sound again, through the other relay. Nobody touches
// anything.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startRelayNode, launchBrowser, assertClean, visible, eventually, screenshot, startKioskCall, decodedMedia,
} from './support.mjs';

let garze;
let spare;
let server;
let browser;

before(async () => {
  garze = await startRelayNode();
  spare = await startRelayNode();
  // The kiosk's region has its own relay; the spare serves anywhere. No
  // media-path probes here: their rooms would show in the counts this test
  // checks (tests/system/relay_node.rs tests the probe).
  const config = [
    '[[relay_nodes]]', 'name = "spare"', `control_url = "${spare.controlUrl}"`, `control_token = "${spare.controlToken}"`,
    'probe_secs = 3600',
    '[[relay_nodes]]', 'name = "garze"', 'region = "demo-garze"', `control_url = "${garze.controlUrl}"`,
    `control_token = "${garze.controlToken}"`, 'probe_secs = 3600',
  ].join('\n');
  server = await startServer({ config });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await garze?.kill9();
  await spare?.kill9();
});

async function relays() {
  const health = await (await fetch(server.url('/healthz'))).json();
  return Object.fromEntries(health.relays.map((r) => [r.name, r]));
}

test('kill -9 of the relay carrying a call: both apps see and hear each other again within 15 s, untouched', async () => {
  const { kiosk, lawyer, kioskContext, lawyerContext, problems } = await startKioskCall(browser, server);

  // The call runs through the kiosk region's relay, both ways.
  for (const page of [kiosk, lawyer]) {
    await eventually(async () => {
      const now = await decodedMedia(page, 0);
      assert.ok(now.frames > 10 && now.energy > 0, `media flows: ${JSON.stringify(now)}`);
    }, 30_000);
  }
  // (Signaling reads the relays' counters once a second: media can flow
  // before the join has been read.)
  await eventually(async () => {
    const before = await relays();
    assert.equal(before.garze.rooms, 1, JSON.stringify(before));
    assert.equal(before.garze.participants, 2, JSON.stringify(before));
    assert.equal(before.spare.rooms, 0, JSON.stringify(before));
  }, 10_000);

  const since = { kiosk: (await decodedMedia(kiosk, 0)).connections, lawyer: (await decodedMedia(lawyer, 0)).connections };
  const killedAt = Date.now();
  await garze.kill9();

  // Back, through the spare relay, on both sides, within 15 s of the kill.
  await Promise.all([['kiosk', kiosk], ['lawyer', lawyer]].map(([who, page]) => eventually(async () => {
    const now = await decodedMedia(page, since[who]);
    assert.ok(now.frames > 0 && now.energy > 0, `${who} receives again: ${JSON.stringify(now)}`);
  }, Math.max(0, 15_000 - (Date.now() - killedAt)))));
  const back = Date.now() - killedAt;
  console.log(`media again on both sides ${back} ms after kill -9 of the call's relay`);
  assert.ok(back <= 15_000, `${back} ms`);
  // (Signaling reads the relays' counters once a second.)
  await eventually(async () => {
    const after = await relays();
    assert.equal(after.garze.up, false, JSON.stringify(after));
    assert.equal(after.spare.rooms, 1, JSON.stringify(after));
    assert.equal(after.spare.participants, 2, JSON.stringify(after));
  });
  // Still the same call on both screens: nobody was sent back to the start.
  await visible(kiosk.getByTestId('call-screen'));
  await visible(lawyer.getByTestId('hang-up'));
  await screenshot(kiosk, 'relay-failover-kiosk-after');

  await lawyer.getByTestId('hang-up').click();
  await visible(kiosk.getByTestId('rating-screen'));
  await eventually(async () => assert.equal((await relays()).spare.rooms, 0, 'the room closed with the call'));
  await kioskContext.close();
  await lawyerContext.close();
  assertClean(problems.flat());
});
