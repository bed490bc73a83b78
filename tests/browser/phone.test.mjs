// The hotline with a real SIP phone: Debian's baresip dials the server's SIP
// gateway over loopback, playing a tone as its microphone and recording what
// it hears; the lawyer answers in Chromium. Each side's hearing is measured:
// the phone's from its recording, the lawyer's from the browser's own
// statistics of the phone participant's audio.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ROOT, startServer, launchBrowser, newContext, watch, assertClean, visible, eventually, login, accessToken,
  recordPeerConnections, inboundStreams, liveClient, screenshot, onlineVolunteer,
} from './support.mjs';
import { startPhone, toneWav, measure, toneStrength } from './baresip.mjs';

// Lawyers and interpreters outside the region's team are rung after a second or two.
const CONFIG = `
[live]
ring_after_secs = [1, 2, 3]

[phone]
enabled = true
sip_listen = "127.0.0.1:0"
peers = ["127.0.0.1"]
prompts_dir = "${path.join(ROOT, 'prompts')}"
media_timeout_secs = 20

[[phone.routes]]
number = "zh-land"
language = "zh"
topic = "land"
region = "demo-garze"

[[phone.routes]]
number = "bo-land"
language = "bo"
topic = "land"
region = "demo-garze"

[[phone.routes]]
number = "12348"
language = "ask"
topic = "ask"
region = "demo-garze"
`;

let server;
let browser;
let sipPort;
let scratch;
let tone;
const problems = [];

/** The server's SIP port, from its log (it starts listening for SIP just after HTTP). */
async function sipPortOf(someServer) {
  return eventually(async () => {
    const port = Number(someServer.log().match(/SIP gateway listening udp=127\.0\.0\.1:(\d+)/)?.[1]);
    assert.ok(port > 0, `no SIP port in the log:\n${someServer.log()}`);
    return port;
  });
}

before(async () => {
  server = await startServer({ config: CONFIG });
  sipPort = await sipPortOf(server);
  browser = await launchBrowser();
  scratch = await mkdtemp(path.join(tmpdir(), 'phone-test-'));
  tone = await toneWav(scratch, 1000);
});

after(async () => {
  // PHONE_TEST_LOG=file keeps the server's log (to read what the gateway said).
  if (process.env.PHONE_TEST_LOG && server) await import('node:fs/promises').then((fs) => fs.writeFile(process.env.PHONE_TEST_LOG, server.log()));
  await browser?.close();
  await server?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A lawyer signed in to /lawyer and online (in `inBrowser`, by default the shared one). */
const online = (username, inBrowser = browser) => onlineVolunteer(inBrowser, server, username, problems);

/** The phone dials `number` at `port`; the lawyer is rung, accepts and sees the call. */
async function callAndAnswer(phone, lawyer, number, port = sipPort) {
  phone.dial(`sip:${number}@127.0.0.1:${port}`);
  await phone.waitEvent('CALL_ESTABLISHED');
  await answer(lawyer);
}

/** The lawyer is rung, accepts and sees the call. */
async function answer(lawyer) {
  await visible(lawyer.getByTestId('incoming-call'));
  await lawyer.getByTestId('accept-call').click();
  await visible(lawyer.getByTestId('call-view'));
}

/** The lawyer writes the call's record, which ends their wrap-up (so the next test finds them free). */
async function writeRecord(lawyer, summary = 'Explained the caller\'s rights over their grazing land.') {
  await visible(lawyer.getByTestId('record-form'));
  await lawyer.getByTestId('record-summary').fill(summary);
  await lawyer.getByTestId('record-outcome').selectOption('advice_given');
  await lawyer.getByTestId('record-save').click();
  await visible(lawyer.getByTestId('go-offline'));
  await eventually(async () => assert.equal(await lawyer.getByTestId('record-form').isVisible(), false));
}

async function metric(name) {
  const text = await (await fetch(server.url('/metrics'))).text();
  return text.split('\n').filter((line) => line.startsWith(name)).join('\n');
}

/** The coordinator's live view: what waits, as "language topic". */
async function watchQueue() {
  const coordinator = await liveClient(browser, server, await accessToken(server, 'demo-coordinator'));
  await coordinator.send({ type: 'live.subscribe' });
  return {
    waiting: async () => {
      const views = await coordinator.unread('live.view');
      return (views.at(-1)?.queue ?? []).map((q) => `${q.language} ${q.topic}`);
    },
    close: () => coordinator.close(),
  };
}

test('a Chinese caller reaches a lawyer in Chromium, and each hears the other', async () => {
  const lawyer = await online('demo-lawyer');
  const phone = await startPhone({ user: '13812345678', mic: tone });
  try {
    await callAndAnswer(phone, lawyer, 'zh-land');
    // The lawyer's console names the caller by the masked number only.
    await eventually(async () => {
      const peers = await lawyer.getByTestId('call-peers').textContent();
      assert.match(peers, /138\*\*\*\*5678/);
      assert.doesNotMatch(await lawyer.content(), /13812345678/);
    });
    // The lawyer hears the phone: the caller's audio arrives and carries sound.
    let before;
    await eventually(async () => {
      before = (await inboundStreams(lawyer)).filter((s) => s.kind === 'audio' && s.energy > 0);
      assert.ok(before.length >= 1, JSON.stringify(await inboundStreams(lawyer)));
    }, 30_000);
    await eventually(async () => {
      const now = (await inboundStreams(lawyer)).filter((s) => s.kind === 'audio');
      assert.ok(now.some((s, i) => before[i] && s.energy > before[i].energy + 0.01), JSON.stringify({ before, now }));
    }, 15_000);
    await screenshot(lawyer, 'phone-call-lawyer');
    // Talk a little, then the caller hangs up.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    phone.hangup();
    await phone.waitEvent('CALL_CLOSED');
    await writeRecord(lawyer);
    // The phone heard the lawyer: the last seconds of its recording, when no
    // prompt and no hold audio play, carry the lawyer's (Chromium's fake) sound.
    const recording = await phone.recording();
    const { seconds } = measure(recording);
    const lastPart = measure(recording, Math.max(0, seconds - 3), 2.5);
    console.log(`# the phone heard the lawyer at RMS ${lastPart.rms} (of ${seconds} s recorded)`);
    assert.ok(lastPart.rms > 0.005, `the phone heard silence from the lawyer: ${JSON.stringify({ seconds, lastPart })}`);
    assert.match(await metric('cloudlaw_phone_calls_total'), /outcome="answered"\} [1-9]/);
    assert.match(await metric('cloudlaw_consultations_total'), /channel="phone"\} [1-9]/);
    // The coordinator's report counts it as the hotline's.
    const day = (offset) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const coordinator = await accessToken(server, 'demo-coordinator');
    const report = await (await fetch(server.url(`/api/reports/consultations?from=${day(-1)}&to=${day(2)}`),
      { headers: { authorization: `Bearer ${coordinator}` } })).json();
    const phoneLines = report.lines.filter((l) => l.channel === 'phone');
    assert.ok(phoneLines.some((l) => l.language === 'zh' && l.topic === 'land' && l.consultations >= 1), JSON.stringify(report.lines));
    assert.match(await metric('cloudlaw_phone_rtp_received_total'), / [1-9]\d*/);
  } finally {
    await phone.stop();
    await lawyer.context().close();
  }
  assertClean(problems.flat());
});

test('the keypad menu asks for the language and topic; hanging up while waiting withdraws the request', async () => {
  // A Chinese-speaking lawyer is online (so the caller is not told nobody
  // can take the call) but does not answer: the request waits, ringing.
  const lawyer = await online('demo-lawyer-2');
  const queue = await watchQueue();
  const phone = await startPhone({ user: '13900001111', mic: tone });
  try {
    phone.dial(`sip:12348@127.0.0.1:${sipPort}`);
    await phone.waitEvent('CALL_ESTABLISHED');
    // 2: the second of live.languages (zh); then 3: labour.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    phone.sendDigits('2');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    phone.sendDigits('3');
    await eventually(async () => assert.deepEqual(await queue.waiting(), ['zh labour']), 15_000);
    phone.hangup();
    await phone.waitEvent('CALL_CLOSED');
    await eventually(async () => assert.deepEqual(await queue.waiting(), []), 10_000);
    // The lawyer's ring stops with it.
    await eventually(async () => assert.equal(await lawyer.getByTestId('incoming-call').isVisible(), false), 10_000);
  } finally {
    await phone.stop();
    await queue.close();
    await lawyer.context().close();
  }
});

test('an unknown number is refused, and so is a peer that is not configured', async () => {
  const phone = await startPhone({ user: '13900002222', mic: tone });
  try {
    phone.dial(`sip:no-such-number@127.0.0.1:${sipPort}`);
    const closed = await phone.waitEvent('CALL_CLOSED');
    assert.match(closed.param, /404/);
    assert.match(await metric('cloudlaw_phone_calls_total'), /outcome="unknown_number"\} 1/);
  } finally {
    await phone.stop();
  }
  // A second server that takes calls only from 127.0.0.9.
  const other = await startServer({ config: CONFIG.replace('peers = ["127.0.0.1"]', 'peers = ["127.0.0.9"]') });
  const otherPort = await sipPortOf(other);
  const stranger = await startPhone({ user: '13900003333', mic: tone });
  try {
    stranger.dial(`sip:zh-land@127.0.0.1:${otherPort}`);
    const closed = await stranger.waitEvent('CALL_CLOSED');
    assert.match(closed.param, /403/);
    const text = await (await fetch(other.url('/metrics'))).text();
    assert.match(text, /cloudlaw_phone_calls_total\{outcome="refused_peer"\} [1-9]/);
  } finally {
    await stranger.stop();
    await other.stop();
  }
});

test('a Tibetan caller gets a Chinese-only lawyer with an interpreter, and hears both', async () => {
  // Each volunteer's browser has a microphone of its own pitch, so the
  // caller's recording tells whom it heard.
  const lawyerTone = await toneWav(scratch, 600, 120, 48000);
  const interpreterTone = await toneWav(scratch, 1500, 120, 48000);
  const lawyerBrowser = await launchBrowser({ args: [`--use-file-for-fake-audio-capture=${lawyerTone}`] });
  const interpreterBrowser = await launchBrowser({ args: [`--use-file-for-fake-audio-capture=${interpreterTone}`] });
  const lawyer = await online('demo-lawyer-2', lawyerBrowser);
  const interpreter = await online('demo-interpreter', interpreterBrowser);
  const phone = await startPhone({ user: '13700004444', mic: tone });
  try {
    phone.dial(`sip:bo-land@127.0.0.1:${sipPort}`);
    await phone.waitEvent('CALL_ESTABLISHED');
    await visible(lawyer.getByTestId('incoming-call'));
    assert.equal(await lawyer.getByTestId('incoming-three-way').isVisible(), true);
    await lawyer.getByTestId('accept-call').click();
    await visible(interpreter.getByTestId('incoming-call'));
    await interpreter.getByTestId('accept-call').click();
    await visible(lawyer.getByTestId('call-view'));
    await visible(interpreter.getByTestId('call-view'));
    // Both volunteers hear the caller (and each other).
    for (const page of [lawyer, interpreter]) {
      await eventually(async () => {
        const audio = (await inboundStreams(page)).filter((s) => s.kind === 'audio' && s.energy > 0);
        assert.ok(audio.length >= 2, JSON.stringify(await inboundStreams(page)));
      }, 30_000);
    }
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    phone.hangup();
    await phone.waitEvent('CALL_CLOSED');
    await writeRecord(lawyer);
    const recording = await phone.recording();
    const { seconds } = measure(recording);
    const [lawyerHeard, interpreterHeard, ownHeard] = [600, 1500, 1000]
      .map((hz) => toneStrength(recording, hz, Math.max(0, seconds - 3), 2.5));
    console.log(`# the caller heard the lawyer ${lawyerHeard.toFixed(0)}x, the interpreter ${interpreterHeard.toFixed(0)}x, itself ${ownHeard.toFixed(0)}x the median`);
    assert.ok(lawyerHeard > 100, `the caller did not hear the lawyer (${lawyerHeard})`);
    assert.ok(interpreterHeard > 100, `the caller did not hear the interpreter (${interpreterHeard})`);
    assert.ok(ownHeard < lawyerHeard / 10, `the caller hears itself (${ownHeard}): its own voice is not mixed back`);
  } finally {
    await phone.stop();
    await lawyerBrowser.close();
    await interpreterBrowser.close();
  }
  assertClean(problems.flat());
});

test('the lawyer hangs up, and the caller rates the call on the keypad', async () => {
  const lawyer = await online('demo-lawyer');
  const phone = await startPhone({ user: '13600005555', mic: tone });
  try {
    await callAndAnswer(phone, lawyer, 'zh-land');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await lawyer.getByTestId('hang-up').click();
    await visible(lawyer.getByTestId('record-form'));
    // The caller is still on the line, asked for a rating: 4.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    phone.sendDigits('4');
    // Thanked, then hung up on.
    await phone.waitEvent('CALL_CLOSED', 20_000);
    await writeRecord(lawyer);
    const token = await accessToken(server, 'demo-lawyer');
    await eventually(async () => {
      const list = await (await fetch(server.url('/api/consultations'), { headers: { authorization: `Bearer ${token}` } })).json();
      const latest = list.sort((a, b) => b.started_at - a.started_at)[0];
      assert.equal(latest.rating, 4, JSON.stringify(latest));
      // The record names the caller by the masked number only.
      assert.doesNotMatch(JSON.stringify(list), /13600005555/);
    });
  } finally {
    await phone.stop();
    await lawyer.context().close();
  }
  assertClean(problems.flat());
});

test('a caller whom nobody on duty can serve hears so and is passed to the hotline\'s fallback', async () => {
  // The hotline's own queue: another phone that answers by itself.
  const operator = await startPhone({ user: 'operator', mic: tone, answer: 'auto' });
  const fallback = `sip:operator@127.0.0.1:${operator.sipPort}`;
  const other = await startServer({ config: CONFIG.replace('[phone]\n', `[phone]\nfallback = "${fallback}"\n`) });
  const otherPort = await sipPortOf(other);
  // Nobody is online on this server: no one can take the call.
  const phone = await startPhone({ user: '13500006666', mic: tone });
  try {
    phone.dial(`sip:zh-land@127.0.0.1:${otherPort}`);
    await phone.waitEvent('CALL_ESTABLISHED');
    const answered = Date.now();
    // The apology plays (about 3 s), then the transfer: the operator's phone rings and answers.
    await operator.waitEvent('CALL_ESTABLISHED', 30_000);
    assert.ok(Date.now() - answered >= 2_000, 'the caller heard the apology before the transfer');
    await phone.waitEvent('CALL_CLOSED', 10_000);
    const text = await (await fetch(other.url('/metrics'))).text();
    assert.match(text, /cloudlaw_phone_calls_total\{outcome="transferred"\} 1/);
  } finally {
    await phone.stop();
    await operator.stop();
    await other.stop();
  }
});

test('a phone that offers Opus (or only A-law) is answered in it, and both sides still hear each other', async () => {
  for (const [codecs, username] of [['opus/48000/2', 'demo-lawyer'], ['PCMA/8000/1', 'demo-lawyer-2']]) {
    const lawyer = await online(username);
    const phone = await startPhone({ user: '13400007777', mic: tone, codecs });
    try {
      await callAndAnswer(phone, lawyer, 'zh-land');
      let first;
      await eventually(async () => {
        first = (await inboundStreams(lawyer)).filter((s) => s.kind === 'audio' && s.energy > 0);
        assert.ok(first.length >= 1, codecs);
      }, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      phone.hangup();
      await phone.waitEvent('CALL_CLOSED');
      await writeRecord(lawyer);
      const recording = await phone.recording();
      const { seconds } = measure(recording);
      const heard = measure(recording, Math.max(0, seconds - 3), 2.5);
      assert.ok(heard.rms > 0.005, `${codecs}: the phone heard silence (${JSON.stringify(heard)})`);
      assert.match(phone.log(), new RegExp(`Set audio decoder: ${codecs.split('/')[0]}`, 'i'));
    } finally {
      await phone.stop();
      await lawyer.context().close();
    }
  }
  assertClean(problems.flat());
});

test('the lawyer calls a caller back: the phone rings, answers, and the lawyer is rung for it', async () => {
  // The caller's phone answers by itself; the "trunk" is the phone itself.
  const phone = await startPhone({ user: '13812340000', mic: tone, answer: 'auto' });
  const config = CONFIG.replace('[phone]\n', `[phone]\noutbound_trunk = "127.0.0.1:${phone.sipPort}"\noutbound_prefixes = ["138"]\n`);
  const other = await startServer({ config });
  const otherPort = await sipPortOf(other);
  const context = await newContext(browser, other);
  await recordPeerConnections(context);
  const lawyer = await context.newPage();
  problems.push(watch(lawyer));
  await lawyer.goto(other.url('/lawyer'));
  await login(lawyer, 'demo-lawyer', 'demo-pass');
  await lawyer.getByTestId('go-online').click();
  await visible(lawyer.getByTestId('go-offline'));
  try {
    // The first call: in, answered, over.
    await callAndAnswer(phone, lawyer, 'zh-land', otherPort);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    phone.hangup();
    await phone.waitEvent('CALL_CLOSED');
    await writeRecord(lawyer);
    // Later: the lawyer calls back from the list of past consultations.
    const button = lawyer.locator('[data-testid^="past-callback-"]');
    await eventually(async () => {
      await lawyer.getByTestId('past-refresh').click();
      assert.equal(await button.count(), 1);
    });
    await button.click();
    await eventually(async () => assert.match(await lawyer.getByTestId('past-status').textContent(), /138\*\*\*\*0000/));
    await phone.waitEvent('CALL_ESTABLISHED', 20_000);
    await answer(lawyer);
    await eventually(async () => {
      const audio = (await inboundStreams(lawyer)).filter((s) => s.kind === 'audio' && s.energy > 0);
      assert.ok(audio.length >= 1);
    }, 30_000);
    await lawyer.getByTestId('hang-up').click();
    await phone.waitEvent('CALL_CLOSED', 30_000);
    // Audited, with the number masked; the whole number is in no answer the lawyer gets.
    const admin = await accessToken(other, 'demo-admin');
    const audit = await (await fetch(other.url('/api/audit?limit=200'), { headers: { authorization: `Bearer ${admin}` } })).text();
    assert.match(audit, /phone\.callback/);
    assert.doesNotMatch(audit, /13812340000/);
    const token = await accessToken(other, 'demo-lawyer');
    const list = await (await fetch(other.url('/api/consultations'), { headers: { authorization: `Bearer ${token}` } })).text();
    assert.doesNotMatch(list, /13812340000/);
    assert.match(await (await fetch(other.url('/metrics'))).text(), /cloudlaw_phone_calls_total\{outcome="callback_answered"\} 1/);
  } finally {
    await phone.stop();
    await context.close();
    await other.stop();
  }
  assertClean(problems.flat());
});

test('a coordinator books an appointment by phone; its lawyer sees the number masked and may call only near its time', async () => {
  // A trunk nothing answers on: this is about booking and who may dial when
  // (tests/system/phone.rs dials an appointment's resident through a SIP peer).
  const config = CONFIG.replace('[phone]\n', '[phone]\noutbound_trunk = "127.0.0.1:9"\noutbound_prefixes = ["138"]\n');
  const other = await startServer({ config });
  const context = await newContext(browser, other);
  const coordinator = await context.newPage();
  problems.push(watch(coordinator));
  try {
    await coordinator.goto(other.url('/coordinator'));
    await login(coordinator, 'demo-coordinator', 'demo-pass');
    const card = coordinator.getByTestId('phone-booking');
    await visible(card);
    await coordinator.getByTestId('phone-booking-language').selectOption('zh');
    await coordinator.getByTestId('phone-booking-topic').selectOption('land');
    const slot = coordinator.getByTestId('phone-booking-slot');
    await eventually(async () => assert.ok(await slot.inputValue(), 'a free time is offered'));
    // A number the operator does not allow is refused by the server, and nothing is booked.
    await coordinator.getByTestId('phone-booking-number').fill('110');
    await coordinator.getByTestId('phone-booking-submit').click();
    await eventually(async () => assert.equal(await coordinator.getByTestId('status').getAttribute('data-error-code'), 'invalid_field'));
    await coordinator.getByTestId('phone-booking-number').fill('138 1234 5678');
    await coordinator.getByTestId('phone-booking-submit').click();
    await eventually(async () => assert.match(await coordinator.getByTestId('status').textContent(), /138\*\*\*\*5678/));
    const booked = coordinator.locator('[data-testid^="phone-booked-"]');
    await eventually(async () => assert.equal(await booked.count(), 1));
    assert.match(await booked.textContent(), /138\*\*\*\*5678/);
    assert.doesNotMatch(await card.textContent(), /13812345678/);
    await screenshot(card, 'coordinator-phone-booking');

    // Its lawyer (whoever round robin chose) sees it by phone, masked, with a Call button.
    const token = await accessToken(other, 'demo-coordinator');
    const headers = { authorization: `Bearer ${token}` };
    const [appointment] = await (await fetch(other.url('/api/appointments?region_id=demo-garze'), { headers })).json();
    const account = await (await fetch(other.url(`/api/accounts/${appointment.lawyer_id}`), { headers })).json();
    const lawyer = await context.newPage();
    problems.push(watch(lawyer));
    await lawyer.goto(other.url('/lawyer'));
    await login(lawyer, account.username, 'demo-pass');
    const phoneCell = lawyer.getByTestId(`appointment-phone-${appointment.id}`);
    await visible(phoneCell);
    assert.match(await phoneCell.textContent(), /☎ 138\*\*\*\*5678/);
    // It starts an hour or more from now: too early to call.
    await lawyer.getByTestId(`appointment-call-${appointment.id}`).click();
    await eventually(async () => assert.equal(await lawyer.getByTestId('appointments-status').getAttribute('data-error-code'), 'not_now'));
    await screenshot(lawyer.getByTestId('appointments'), 'lawyer-phone-appointment');
    const admin = await accessToken(other, 'demo-admin');
    const audit = await (await fetch(other.url('/api/audit?limit=200'), { headers: { authorization: `Bearer ${admin}` } })).text();
    assert.match(audit, /appointment\.booked/);
    assert.doesNotMatch(audit, /13812345678/);
  } finally {
    await context.close();
    await other.stop();
  }
  assertClean(problems.flat());
});
