// Media through the relay in real Chromium: two, then three participants with
// fake cameras and microphones join one room over the live connection; each
// decodes every other's video and receives their audio. Room tokens come from
// `cloudlaw rooms token` (consultations will issue their own, issue #5).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newContext, watch, assertClean, eventually } from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function accessToken(username) {
  const response = await fetch(server.url('/api/auth/login'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'demo-pass' }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).access_token;
}

/** Opens a page for `username` and joins `room` through the relay. */
async function participant(username, room) {
  const roomToken = await server.cli(['rooms', 'token', '--room', room, '--participant', username]);
  const access = await accessToken(username);
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  // Any page of the origin will do: a secure context that may load the modules.
  await page.goto(server.url('/lawyer'));
  await page.evaluate(async ({ access, roomToken }) => {
    const { connectLive } = await import('/web/shared/live.js');
    const { RelayCall } = await import('/web/shared/call.js');
    document.body.replaceChildren();
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
    const events = [];
    let call;
    const live = connectLive(access, (message) => {
      if (!call?.handle(message)) events.push(message);
    });
    await live.opened;
    call = new RelayCall({
      send: (m) => live.send(m),
      token: roomToken,
      stream,
      onStream: (remote, who) => {
        const video = document.createElement('video');
        Object.assign(video, { autoplay: true, playsInline: true, muted: true, srcObject: remote });
        video.dataset.testid = 'remote-video';
        video.dataset.participant = who;
        video.style.width = '200px';
        document.body.append(video);
      },
      onEvent: (event) => events.push(event),
    });
    call.join();
    window.cloudlawCall = { call, events, live };
  }, { access, roomToken });
  return { page, context, problems, username };
}

/** What this page receives: per remote video, frames decoded; audio packets. */
function received(page) {
  return page.evaluate(async () => {
    const report = await window.cloudlawCall.call.pc.getStats();
    const video = [];
    let audioPackets = 0;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') video.push(s.framesDecoded ?? 0);
      if (s.type === 'inbound-rtp' && s.kind === 'audio') audioPackets += s.packetsReceived ?? 0;
    });
    return { video, audioPackets, videos: document.querySelectorAll('[data-testid="remote-video"]').length };
  });
}

async function receivesEveryone(p, others) {
  await eventually(async () => {
    const got = await received(p.page);
    return got.videos === others && got.video.filter((frames) => frames > 5).length === others && got.audioPackets > 50;
  }, 20_000).catch(async (error) => {
    throw new Error(`${p.username} did not receive all ${others}: ${JSON.stringify(await received(p.page))} ${error}`);
  });
}

test('two, then three participants see and hear each other through the relay', async () => {
  const room = `check-${Date.now()}`;
  const lawyer = await participant('demo-lawyer', room);
  const other = await participant('demo-lawyer-2', room);
  await receivesEveryone(lawyer, 1);
  await receivesEveryone(other, 1);

  const interpreter = await participant('demo-interpreter', room);
  for (const p of [lawyer, other, interpreter]) await receivesEveryone(p, 2);

  // The relay saw it all: one room, three participants, packets forwarded.
  const health = await (await fetch(server.url('/healthz'))).json();
  assert.equal(health.relay.participants, 3, JSON.stringify(health));
  const metrics = await (await fetch(server.url('/metrics'))).text();
  const forwarded = Number(metrics.match(/cloudlaw_relay_packets_forwarded_total (\d+)/)?.[1] ?? 0);
  assert.ok(forwarded > 100, `forwarded ${forwarded}`);

  // One leaves: the others keep receiving each other and drop its video.
  await interpreter.page.evaluate(() => window.cloudlawCall.call.leave());
  for (const p of [lawyer, other]) {
    const before = await received(p.page);
    await eventually(async () => {
      const now = await received(p.page);
      return now.audioPackets > before.audioPackets + 50;
    }, 10_000);
  }
  for (const p of [lawyer, other, interpreter]) {
    assertClean(p.problems.filter((problem) => !/ERR_CONNECTION|favicon/.test(problem)));
    await p.context.close();
  }
});
