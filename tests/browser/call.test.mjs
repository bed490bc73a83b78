// Media through the relay in real Chromium: two, then three participants with
// fake cameras and microphones join one room over the live connection; each
// decodes every other's video and receives their audio. Then one participant's
// network goes away for a few seconds (its Chromium runs in a network
// namespace whose link is taken down) and its media resumes in the same room.
// Room tokens come from `cloudlaw rooms token` (consultations will issue their
// own, issue #5).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtemp, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  serverAndBrowserForFile, startServer, launchBrowser, newContext, watch, assertClean, eventually, makeNamespace,
  accessToken,
} from './support.mjs';

let server;
let browser;

serverAndBrowserForFile((started) => ({ server, browser } = started));

/** Opens a page for `username` and joins `room` through the relay. */
/**
 * Opens the lawyer app and waits for its login form. In the network-blink
 * test's set-up (a server on a veth address) a page load has twice, in CI,
 * stalled before the app started, one of its requests never answered: the
 * requests still open are written out, and the page is loaded once more.
 */
async function openLawyerPage(page, server) {
  const open = new Set();
  const track = (request) => open.add(request.url());
  const done = (request) => open.delete(request.url());
  page.on('request', track);
  page.on('requestfinished', done);
  page.on('requestfailed', done);
  try {
    for (let attempt = 1; ; attempt += 1) {
      await page.goto(server.url('/lawyer'));
      try {
        await page.locator('#login-view').waitFor({ state: 'visible', timeout: attempt === 1 ? 10_000 : 15_000 });
        return;
      } catch (error) {
        if (attempt === 2) throw error;
        console.warn(`the lawyer app did not start in 10 s; requests still open: ${JSON.stringify([...open])}`);
        open.clear();
      }
    }
  } finally {
    page.off('request', track);
    page.off('requestfinished', done);
    page.off('requestfailed', done);
  }
}

async function participant(username, room, on = { browser, server }, { iceTransportPolicy = 'all' } = {}) {
  const roomToken = await on.server.cli(['rooms', 'token', '--room', room, '--participant', username]);
  const access = await accessToken(on.server, username);
  const context = await newContext(on.browser, on.server);
  const page = await context.newPage();
  const problems = watch(page);
  // Any page of the origin will do: a secure context that may load the modules.
  // Wait until the lawyer app has started (it shows its login form), so that
  // clearing the page below cannot race the app's own start-up.
  await openLawyerPage(page, on.server);
  await page.evaluate(async ({ access, roomToken, iceTransportPolicy }) => {
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
      iceTransportPolicy,
    });
    call.join();
    window.cloudlawCall = { call, events, live };
  }, { access, roomToken, iceTransportPolicy });
  return { page, context, problems, username };
}

/** What this page receives: per remote video, frames decoded; audio packets. */
function received(page) {
  return page.evaluate(async () => {
    const report = await window.cloudlawCall.call.pc.getStats();
    const video = [];
    const audio = {};
    let audioPackets = 0;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') video.push(s.framesDecoded ?? 0);
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        audioPackets += s.packetsReceived ?? 0;
        audio[s.ssrc] = s.packetsReceived ?? 0;
      }
    });
    return { video, audio, audioPackets, videos: document.querySelectorAll('[data-testid="remote-video"]').length };
  });
}

/** Waits until `p` shows a video for each of `others` participants, decoding, and hears audio. */
async function receivesEveryone(p, others) {
  await eventually(async () => {
    const got = await received(p.page);
    assert.ok(
      got.videos === others && got.video.filter((frames) => frames > 5).length === others && got.audioPackets > 50,
      `${p.username} does not receive all ${others}: ${JSON.stringify(got)}`,
    );
  }, 20_000);
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
  // Chromium's SRTP keys were the relay's to use: it encrypted what it forwarded itself.
  assert.match(metrics, /cloudlaw_relay_forwarding_fallbacks_total 0\n/);
  // And it decrypted what Chromium sent itself, around the rtc pipeline.
  const direct = Number(metrics.match(/cloudlaw_relay_packets_received_directly_total (\d+)/)?.[1] ?? 0);
  assert.ok(direct > 100, `received directly ${direct}`);

  // One leaves: the others keep receiving each other and drop its video.
  // (Counted per stream: the one that left stops being counted at all. Opus
  // sends few packets through the fake device's silences, a few a second.)
  await interpreter.page.evaluate(() => window.cloudlawCall.call.leave());
  for (const p of [lawyer, other]) {
    const before = await received(p.page);
    await eventually(async () => {
      const now = await received(p.page);
      const grew = Object.keys(now.audio).some((ssrc) => now.audio[ssrc] > (before.audio[ssrc] ?? Infinity) + 15);
      const moving = now.video.length === 1 && now.video[0] > Math.max(...before.video, 0) + 10;
      assert.ok(grew && moving, `${p.username}: media stopped: ${JSON.stringify({ before, now })}`);
    }, 10_000);
  }
  for (const p of [lawyer, other, interpreter]) {
    assertClean(p.problems.filter((problem) => !/ERR_CONNECTION|favicon/.test(problem)));
    await p.context.close();
  }
});

// ---------------------------------------------------------------- hang-up mid-offer

test('hanging up while the relay\'s offer is being applied is quiet, and sends no answer', async () => {
  // A lawyer may hang up the moment the call starts, while the relay's first
  // offer is still being applied; every step after that fails on a closed
  // connection. Close it right after each step in turn, deterministically.
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/lawyer'));
  await page.locator('#login-view').waitFor({ state: 'visible' });
  const outcomes = await page.evaluate(async () => {
    const { RelayCall } = await import('/web/shared/call.js');
    const offerer = new RTCPeerConnection();
    offerer.addTransceiver('audio', { direction: 'recvonly' });
    offerer.addTransceiver('video', { direction: 'recvonly' });
    const { sdp } = await offerer.createOffer();
    offerer.close();
    const token = `x.${btoa(JSON.stringify({ room: { room: 'mid-offer' } }))}.y`;
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 160, height: 120 } });
    const steps = [
      [RTCPeerConnection.prototype, 'setRemoteDescription'],
      [RTCRtpSender.prototype, 'replaceTrack'],
      [RTCPeerConnection.prototype, 'createAnswer'],
      [RTCPeerConnection.prototype, 'setLocalDescription'],
    ];
    const outcomes = {};
    for (const [proto, name] of steps) {
      const sent = [];
      const call = new RelayCall({ send: (m) => m.type === 'rtc.answer' && sent.push(m.type), token, stream, onStream: () => {} });
      const original = proto[name];
      proto[name] = async function patched(...args) {
        const result = await original.apply(this, args);
        call.close();
        return result;
      };
      try {
        call.handle({ type: 'rtc.offer', room: 'mid-offer', sdp });
        await call.queue;
      } finally {
        proto[name] = original;
      }
      outcomes[name] = { state: call.pc.signalingState, sent };
    }
    // And one that is not closed answers, so the patching above proved something.
    const sent = [];
    const call = new RelayCall({ send: (m) => m.type === 'rtc.answer' && sent.push(m.type), token, stream, onStream: () => {} });
    call.handle({ type: 'rtc.offer', room: 'mid-offer', sdp });
    await call.queue;
    call.close();
    outcomes.untouched = { sent };
    return outcomes;
  });
  for (const name of ['setRemoteDescription', 'replaceTrack', 'createAnswer', 'setLocalDescription']) {
    assert.deepEqual(outcomes[name], { state: 'closed', sent: [] }, name);
  }
  assert.deepEqual(outcomes.untouched.sent, ['rtc.answer']);
  assertClean(problems);
  await context.close();
});

// ---------------------------------------------------------------- network blink

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Chromium in the namespace, once it has opened a page. One started there has
 * once (in CI) never opened its page, and Playwright's newContext and newPage
 * wait for ever: one that opens none within 30 s is ended and started again, once.
 */
async function browserInNamespace(link, options) {
  for (let attempt = 1; ; attempt += 1) {
    const browser = await launchBrowser(options);
    const probe = (async () => {
      const context = await browser.newContext();
      await context.newPage();
      await context.close();
      return true;
    })();
    probe.catch(() => {});
    if (await Promise.race([probe, sleep(30_000).then(() => false)])) return browser;
    link.killAll();
    await Promise.race([browser.close().catch(() => {}), sleep(5_000)]);
    if (attempt === 2) throw new Error('Chromium in the network namespace opened no page in 30 s, twice');
  }
}

test('a participant whose network goes away for a few seconds comes back in the same room', async (t) => {
  const link = makeNamespace('blnk', '10.231.7');
  if (!link) {
    t.skip('needs root to create a network namespace');
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'cloudlaw-netns-'));
  let blinkServer;
  const browsers = [];
  try {
    // The server and its relay listen on the host end of the link, so the
    // namespaced Chromium reaches them only through it.
    blinkServer = await startServer({ host: link.hostIp });
    const secure = [`--unsafely-treat-insecure-origin-as-secure=${blinkServer.origin}`];
    const wrapper = path.join(dir, 'chromium-in-netns');
    await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${link.ns} ${process.env.CHROMIUM_BIN || '/usr/bin/chromium'} "$@"\n`);
    await chmod(wrapper, 0o755);
    const outside = await launchBrowser({ args: secure });
    browsers.push(outside);
    const inside = await browserInNamespace(link, { args: secure, executablePath: wrapper });
    browsers.push(inside);

    const room = `blink-${Date.now()}`;
    const lawyer = await participant('demo-lawyer', room, { browser: outside, server: blinkServer });
    const kiosk = await participant('demo-lawyer-2', room, { browser: inside, server: blinkServer });
    await receivesEveryone(lawyer, 1);
    await receivesEveryone(kiosk, 1);

    // The namespace's end of the link goes down for five seconds.
    link.link(false);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const during = await received(lawyer.page);
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const stalled = await received(lawyer.page);
    assert.ok(stalled.video[0] - during.video[0] < 10, `video kept flowing without a network: ${JSON.stringify({ during, stalled })}`);
    link.link(true);

    // Media resumes both ways without a new room or a new join.
    await eventually(async () => {
      const [l, k] = [await received(lawyer.page), await received(kiosk.page)];
      assert.ok(
        l.video[0] > stalled.video[0] + 30 && k.videos === 1 && k.video[0] > stalled.video[0] + 30,
        `media did not resume: ${JSON.stringify({ lawyer: l, kiosk: k, stalled })}`,
      );
    }, 20_000);
    const events = await kiosk.page.evaluate(() => window.cloudlawCall.events);
    assert.ok(!events.some((e) => e.type === 'closed'), JSON.stringify(events));
    const health = await (await fetch(blinkServer.url('/healthz'))).json();
    assert.equal(health.relay.participants, 2, 'still the same two participants');
    for (const p of [lawyer, kiosk]) await p.context.close();
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    await blinkServer?.stop();
    link.remove();
    await rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- TURN

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** The candidate types of the pair a page's call uses. */
function selectedPair(page) {
  return page.evaluate(async () => {
    const report = await window.cloudlawCall.call.pc.getStats();
    let pair;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    const local = pair && report.get(pair.localCandidateId);
    return local ? { type: local.candidateType, relayProtocol: local.relayProtocol ?? null } : null;
  });
}

test('participants whose UDP is blocked reach the relay through TURN over TCP', async () => {
  const port = await freePort();
  const secret = 'turn-shared-secret-for-the-test';
  const turn = spawn('turnserver', [
    '--listening-ip', '127.0.0.1', '--listening-port', String(port), '--relay-ip', '127.0.0.1',
    '--min-port', '49400', '--max-port', '49600', '--use-auth-secret', '--static-auth-secret', secret,
    '--realm', 'cloudlaw.test', '--allow-loopback-peers', '--no-cli', '--no-tls', '--no-dtls',
    '--fingerprint', '--log-file', 'stdout', '--simple-log', '--no-stdout-log',
  ], { stdio: 'ignore' });
  const turnExited = new Promise((resolve) => turn.on('exit', resolve));
  let turnServer;
  let turnBrowser;
  try {
    // Wait until coturn accepts TCP.
    await eventually(() => new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(); });
      socket.on('error', reject);
    }), 10_000);
    turnServer = await startServer({
      config: `[turn]\nurls = ["turn:127.0.0.1:${port}?transport=tcp"]\nsecret = "${secret}"\n`,
    });
    turnBrowser = await launchBrowser();
    const on = { browser: turnBrowser, server: turnServer };
    const room = `turn-${Date.now()}`;
    // 'relay': only TURN candidates, as on a network where UDP to the relay is blocked.
    const lawyer = await participant('demo-lawyer', room, on, { iceTransportPolicy: 'relay' });
    const kiosk = await participant('demo-lawyer-2', room, on, { iceTransportPolicy: 'relay' });
    await receivesEveryone(lawyer, 1);
    await receivesEveryone(kiosk, 1);
    for (const p of [lawyer, kiosk]) {
      assert.deepEqual(await selectedPair(p.page), { type: 'relay', relayProtocol: 'tcp' });
      assertClean(p.problems.filter((problem) => !/favicon/.test(problem)));
      await p.context.close();
    }
  } finally {
    await turnBrowser?.close();
    await turnServer?.stop();
    turn.kill('SIGTERM');
    await turnExited;
  }
});
