// The lawyer's console in Firefox ESR (Debian's firefox-esr, headless, driven
// over WebDriver BiDi by puppeteer-core) against a Chromium kiosk: sign in, go
// on duty, be rung, accept, both sides decode video and hear audio for a
// minute with no `disconnected` on either side and nothing withheld by the
// relay, hang up, write the record. Firefox negotiates otherwise than
// Chromium (its own header extensions, RTX, consent checks every ~5 s), so
// this is the relay tested against a second WebRTC stack.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  startServer, launchBrowser, newContext, recordPeerConnections, decodedMedia, watch, assertClean,
  eventually, visible, screenshot, makeNamespace, FIREFOX, launchFirefox,
} from './support.mjs';

const CALL_SECONDS = Number(process.env.FIREFOX_CALL_SECONDS || 60);

let link;
let server;
let chromium;
let firefox;

// Firefox gathers no loopback candidate (whatever `media.peerconnection.ice.loopback`
// says) and will not pair its other addresses with the relay's 127.0.0.1, so
// the server and its relay run in a network namespace of this test's own, as
// a relay on another machine would, and both browsers reach it over a veth link.
before(async () => {
  assert.ok(existsSync(FIREFOX), `no Firefox at ${FIREFOX} (tests/browser/run.sh installs firefox-esr)`);
  link = makeNamespace('ffox', '10.231.9');
  assert.ok(link, 'the Firefox test needs root, to make a network namespace');
  server = await startServer({ host: link.nsIp, netns: link.ns });
  chromium = await launchBrowser({ args: [`--unsafely-treat-insecure-origin-as-secure=${server.origin}`] });
  // getUserMedia needs a secure context; the server is plain HTTP on the link.
  firefox = await launchFirefox({ 'dom.securecontext.allowlist': new URL(server.origin).hostname });
});

after(async () => {
  await firefox?.close();
  await chromium?.close();
  await server?.stop();
  link?.remove();
});

/** Every RTCPeerConnection of the page, and every connection state each went through. */
const RECORD_PEER_CONNECTIONS = () => {
  const Original = window.RTCPeerConnection;
  window.peerConnections = [];
  window.connectionStates = [];
  window.RTCPeerConnection = function RTCPeerConnection(...args) {
    const pc = new Original(...args);
    window.peerConnections.push(pc);
    pc.addEventListener('connectionstatechange', () => window.connectionStates.push(pc.connectionState));
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
};

/** Frames decoded, audio received (energy where Firefox reports it, packets otherwise). */
const firefoxMedia = (page) => page.evaluate(async () => {
  let frames = 0;
  let energy = 0;
  let audioPackets = 0;
  for (const pc of window.peerConnections ?? []) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        energy += s.totalAudioEnergy ?? 0;
        audioPackets += s.packetsReceived ?? 0;
      }
    });
  }
  return { frames, energy, audioPackets, states: window.connectionStates };
});

/** What Firefox's ICE saw: candidates and pairs, and the last descriptions (for a failure message). */
const iceReport = (page) => page.evaluate(async () => {
  const lines = [];
  for (const pc of window.peerConnections ?? []) {
    lines.push(`pc ${pc.connectionState} ice=${pc.iceConnectionState} gathering=${pc.iceGatheringState}`);
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'candidate-pair') lines.push(`pair ${s.state} nominated=${s.nominated} ${s.localCandidateId} -> ${s.remoteCandidateId} sent=${s.requestsSent ?? ''} recv=${s.responsesReceived ?? ''}`);
      if (s.type === 'local-candidate' || s.type === 'remote-candidate') lines.push(`${s.type} ${s.id} ${s.protocol} ${s.address}:${s.port} ${s.candidateType}`);
    });
    lines.push(`remote sdp:\n${pc.remoteDescription?.sdp}`);
    lines.push(`local sdp:\n${pc.localDescription?.sdp}`);
  }
  return lines.join('\n');
});

const testid = (id) => `[data-testid="${id}"]`;

/** The relay's counter of packets not forwarded for `reason`, from /metrics. */
async function notForwarded(reason) {
  const text = await (await fetch(server.url('/metrics'))).text();
  const line = text.split('\n').find((l) => l.includes('relay_packets_not_forwarded') && l.includes(`reason="${reason}"`));
  assert.ok(line, `no relay_packets_not_forwarded{reason="${reason}"} in /metrics`);
  return Number(line.trim().split(/\s+/).pop());
}

test('a lawyer in Firefox takes a call from a Chromium kiosk: media both ways for a minute, then the record', async () => {
  // The kiosk (Chromium), enrolled and on its start screen.
  const kioskContext = await newContext(chromium, server, { hasTouch: true, timezoneId: 'Asia/Shanghai' });
  await recordPeerConnections(kioskContext);
  await kioskContext.addInitScript(() => {
    window.connectionStates = [];
    const Original = window.RTCPeerConnection;
    window.RTCPeerConnection = function RTCPeerConnection(...args) {
      const pc = new Original(...args);
      pc.addEventListener('connectionstatechange', () => window.connectionStates.push(pc.connectionState));
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
  });
  const kiosk = await kioskContext.newPage();
  const kioskProblems = watch(kiosk);
  await kiosk.goto(server.url('/terminal'));
  await kiosk.getByTestId('enroll-code').fill('DEMO-TERMINAL-1');
  await kiosk.getByTestId('enroll-submit').click();
  await visible(kiosk.getByTestId('start-screen'));

  // The lawyer (Firefox) signs in and goes on duty.
  const lawyer = await firefox.newPage();
  const lawyerProblems = [];
  lawyer.on('pageerror', (error) => lawyerProblems.push(`pageerror: ${error.message}`));
  lawyer.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy|\[i18n\] missing/.test(message.text())) {
      lawyerProblems.push(`${message.type()}: ${message.text()}`);
    }
  });
  lawyer.setDefaultTimeout(20_000);
  await lawyer.evaluateOnNewDocument(RECORD_PEER_CONNECTIONS);
  await lawyer.setViewport({ width: 1280, height: 800 });
  await lawyer.goto(server.url('/lawyer'));
  await lawyer.locator(testid('login-username')).fill('demo-lawyer');
  await lawyer.locator(testid('login-password')).fill('demo-pass');
  await lawyer.locator(testid('login-submit')).click();
  await lawyer.locator(testid('go-online')).click();
  await lawyer.waitForSelector(testid('go-offline'), { visible: true });

  // The resident asks; the Firefox console rings; the lawyer accepts.
  await kiosk.getByTestId('lang-bo').tap();
  await kiosk.getByTestId('talk-now').tap();
  await kiosk.getByTestId('topic-land').tap();
  await visible(kiosk.getByTestId('check-screen'));
  await kiosk.getByTestId('consult-now').tap();
  await lawyer.waitForSelector(testid('incoming-call'), { visible: true });
  await lawyer.locator(testid('accept-call')).click();
  await lawyer.waitForSelector(testid('call-view'), { visible: true });
  await visible(kiosk.getByTestId('call-screen'));

  // Both sides decode the other's video and receive sound.
  await eventually(async () => {
    const [k, l] = [await decodedMedia(kiosk), await firefoxMedia(lawyer)];
    assert.ok(k.frames > 10 && k.energy > 0, `kiosk: ${JSON.stringify(k)}\nFirefox: ${await iceReport(lawyer)}`);
    assert.ok(l.frames > 10 && l.audioPackets > 50, `lawyer: ${JSON.stringify(l)}\nFirefox: ${await iceReport(lawyer)}`);
  }, 20_000);
  await screenshot(kiosk, 'firefox-call-kiosk');
  await screenshot(lawyer, 'firefox-call-lawyer');

  // A minute of call: media keeps coming both ways, nobody is ever
  // disconnected, and the relay withholds nothing from either side.
  const withheldBefore = await notForwarded('not_connected');
  const start = [await decodedMedia(kiosk), await firefoxMedia(lawyer)];
  for (let second = 10; second <= CALL_SECONDS; second += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const [k, l] = [await decodedMedia(kiosk), await firefoxMedia(lawyer)];
    assert.ok(k.frames > start[0].frames + second * 5, `kiosk at ${second} s: ${JSON.stringify(k)}`);
    assert.ok(l.frames > start[1].frames + second * 5, `lawyer at ${second} s: ${JSON.stringify(l)}`);
    assert.ok(l.audioPackets > start[1].audioPackets + second * 25, `lawyer audio at ${second} s`);
    assert.ok(k.energy > start[0].energy, `kiosk audio at ${second} s`);
  }
  const lawyerStates = (await firefoxMedia(lawyer)).states;
  const kioskStates = await kiosk.evaluate(() => window.connectionStates);
  assert.ok(!lawyerStates.includes('disconnected') && !lawyerStates.includes('failed'), `Firefox: ${lawyerStates}`);
  assert.ok(!kioskStates.includes('disconnected') && !kioskStates.includes('failed'), `Chromium: ${kioskStates}`);
  assert.equal(await notForwarded('not_connected'), withheldBefore, 'the relay withheld nothing during the call');
  // Firefox's SRTP keys, like Chromium's, were the relay's to use: it encrypted
  // what it forwarded (and answered NACKs, and sent sender reports) itself.
  const metrics = await (await fetch(server.url('/metrics'))).text();
  assert.match(metrics, /cloudlaw_relay_forwarding_fallbacks_total 0\n/);
  // And it decrypted the media of both itself: most of what both sent (the
  // rest is ICE, DTLS, RTCP and each stream's first packet), not only half.
  const total = (name) => Number(metrics.match(new RegExp(`cloudlaw_relay_${name}_total (\\d+)`))?.[1] ?? 0);
  const direct = total('packets_received_directly');
  const datagrams = total('datagrams_received');
  assert.ok(direct > 0.6 * datagrams, `received directly ${direct} of ${datagrams} datagrams`);

  // The lawyer hangs up and writes the record.
  await lawyer.locator(testid('hang-up')).click();
  await lawyer.waitForSelector(testid('record-form'), { visible: true });
  await lawyer.locator(testid('record-summary')).fill('Land contract dispute: explained the county mediation route.');
  await lawyer.select(testid('record-outcome'), 'advice_given');
  await lawyer.locator(testid('record-save')).click();
  await eventually(async () => {
    const state = await lawyer.$eval(testid('presence'), (el) => el.getAttribute('data-state'));
    assert.equal(state, 'available');
  }, 20_000);
  await lawyer.locator(testid('go-offline')).click();

  // A healthy join, call and leave leaves no warning in the server's log.
  const warnings = server.log().split('\n').filter((line) => /\s(WARN|ERROR)\s/.test(line));
  assert.deepEqual(warnings, [], 'the server warned during a healthy call');

  assertClean(kioskProblems);
  assert.deepEqual(lawyerProblems, [], `the Firefox page reported problems:\n${lawyerProblems.join('\n')}`);
  await lawyer.close();
  await kioskContext.close();
});
