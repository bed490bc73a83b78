// How long from a lawyer's accept to both sides seeing each other: a browser
// benchmark that prints figures (BENCHMARKS.md), not a timed test.
//
// A kiosk (the demo terminal) and a lawyer (demo-lawyer), each a headless
// Chromium page with a fake camera and microphone on its own live connection,
// go through the live path as the apps do (consult.request, consult.offer,
// consult.accept, consult.started, rtc.join with web/shared/call.js). Each
// round measures, on the pages' own clocks, the time from the moment the
// lawyer's page sends consult.accept to the first video frame each side
// decodes (the browser's framesDecoded), then hangs up and ends the wrap-up.
//
// Usage: node first-frame.mjs [ROUNDS]  (default 30; the server binary as for
// the browser tests: $CLOUDLAW_BIN or target/debug/cloudlaw).

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startServer, launchBrowser, newContext, accessToken } from './support.mjs';

/** In the page: one live connection, a RelayCall on consult.started, and first-frame times. */
async function openParty(browser, server, token) {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  await page.goto(server.url('/healthz'));
  await page.evaluate(async (bearer) => {
    const { RelayCall } = await import('/web/shared/call.js');
    window.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
    window.inbox = [];
    const ws = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(bearer)}`);
    window.send = (message) => ws.send(JSON.stringify(message));
    window.timeline = [];
    const mark = (what) => window.timeline.push([what, Date.now()]);
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      mark(message.type);
      if (window.call?.handle(message)) return;
      window.inbox.push(message);
      if (message.type === 'consult.started') {
        window.call?.close();
        window.firstFrameAt = null;
        window.call = new RelayCall({
          send: (m) => { window.send(m); return true; },
          token: message.token,
          stream: window.stream,
          onStream: () => {},
        });
        window.call.join();
        const call = window.call;
        call.pc.addEventListener('iceconnectionstatechange', () => mark(`ice ${call.pc.iceConnectionState}`));
        call.pc.addEventListener('connectionstatechange', () => mark(`pc ${call.pc.connectionState}`));
        call.pc.addEventListener('track', (e) => mark(`track ${e.track.kind}`));
        const poll = async () => {
          if (call !== window.call || call.pc.connectionState === 'closed') return;
          let frames = 0;
          (await call.pc.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
          });
          if (frames > 0) { window.firstFrameAt = Date.now(); mark('first frame'); }
          else setTimeout(poll, 5);
        };
        poll();
      }
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('websocket refused'));
    });
  }, token);
  const next = async (type, timeout = 30_000) => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const message = await page.evaluate((t) => {
        const i = window.inbox.findIndex((m) => m.type === t);
        return i === -1 ? null : window.inbox.splice(i, 1)[0];
      }, type);
      if (message) return message;
      assert.ok(Date.now() < deadline, `no ${type} within ${timeout} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return { page, context, next, send: (m) => page.evaluate((x) => window.send(x), m) };
}

const waitFor = async (page, expression, timeout = 30_000) => {
  await page.waitForFunction(expression, null, { timeout, polling: 5 });
  return page.evaluate(expression);
};

/** Runs `rounds` calls; resolves to the list of { kiosk, lawyer, both } in milliseconds. */
export async function measureFirstFrames(rounds) {
  // One lawyer takes every call: past the default daily cap of 20.
  const server = await startServer({ config: '[live]\ndefault_daily_cap = 100000\n' });
  const browser = await launchBrowser();
  try {
    const enrolled = await fetch(server.url('/api/terminals/enroll'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'DEMO-TERMINAL-1' }),
    });
    assert.equal(enrolled.status, 200);
    const kiosk = await openParty(browser, server, (await enrolled.json()).device_token);
    const lawyer = await openParty(browser, server, await accessToken(server, 'demo-lawyer'));
    await lawyer.send({ type: 'presence.set', state: 'available' });
    await lawyer.next('presence');
    const results = [];
    for (let round = 0; round < rounds; round++) {
      await kiosk.send({ type: 'consult.request', language: 'zh', topic: 'land' });
      const offer = await lawyer.next('consult.offer');
      const acceptedAt = await lawyer.page.evaluate((request) => {
        const at = Date.now();
        window.send({ type: 'consult.accept', request });
        return at;
      }, offer.request);
      const started = await kiosk.next('consult.started');
      await lawyer.next('consult.started');
      let k;
      let l;
      try {
        k = await waitFor(kiosk.page, () => window.firstFrameAt);
        l = await waitFor(lawyer.page, () => window.firstFrameAt);
      } catch (error) {
        for (const [name, party] of [['kiosk', kiosk], ['lawyer', lawyer]]) {
          const timeline = await party.page.evaluate(() => window.timeline);
          console.error(name, timeline.filter(([, at]) => at >= acceptedAt - 50).map(([what, at]) => `${at - acceptedAt}:${what}`).join(' '));
          console.error(name, await party.page.evaluate(async () => {
            const out = [];
            (await window.call.pc.getStats()).forEach((x) => {
              if (x.type === 'inbound-rtp') out.push(`${x.kind} packets=${x.packetsReceived} frames=${x.framesDecoded} keyframes=${x.keyFramesDecoded} plis=${x.pliCount}`);
            });
            const errors = window.inbox.filter((m) => m.type === 'error');
            return `${out.join('; ')}\n${JSON.stringify(errors)}\n${window.call.pc.remoteDescription?.sdp}`;
          }));
        }
        throw error;
      }
      results.push({ kiosk: k - acceptedAt, lawyer: l - acceptedAt, both: Math.max(k, l) - acceptedAt });
      if (process.env.FIRST_FRAME_TIMELINE) {
        for (const [name, party] of [['kiosk', kiosk], ['lawyer', lawyer]]) {
          const timeline = await party.page.evaluate(() => window.timeline.splice(0));
          console.log(name, timeline.filter(([, at]) => at >= acceptedAt - 50).map(([what, at]) => `${at - acceptedAt}:${what}`).join(' '));
        }
      }
      await lawyer.send({ type: 'consult.hangup', consultation: started.consultation });
      await kiosk.next('consult.ended');
      await lawyer.next('consult.ended');
      for (const party of [kiosk, lawyer]) await party.page.evaluate(() => window.call.leave());
      // `available` ends the wrap-up at once.
      await lawyer.send({ type: 'presence.set', state: 'available' });
      await lawyer.page.waitForFunction(() => window.inbox.some((m) => m.type === 'presence' && m.state === 'available'));
      await lawyer.page.evaluate(() => { window.inbox = []; });
      await kiosk.page.evaluate(() => { window.inbox = []; });
      // A call's worth of messages (ICE candidates above all) is a burst for
      // the server's per-connection rate limit (PROTOCOL.md): let it refill,
      // as it would between real calls.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
    return results;
  } finally {
    if (process.env.FIRST_FRAME_SERVER_LOG) (await import('node:fs')).writeFileSync(process.env.FIRST_FRAME_SERVER_LOG, server.log());
    await browser.close();
    await server.stop();
  }
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rounds = Number(process.argv[2] || 30);
  const results = await measureFirstFrames(rounds);
  for (const key of ['kiosk', 'lawyer', 'both']) {
    const values = results.map((r) => r[key]);
    console.log(`${key.padEnd(6)} first frame after accept: p50 ${percentile(values, 50)} ms, p95 ${percentile(values, 95)} ms, max ${Math.max(...values)} ms (${values.length} calls)`);
  }
}
