// The kiosk's referral screens in Firefox ESR (headless, over WebDriver BiDi
// by puppeteer-core): during a call, the lawyer (a bare live client in
// Chromium, without media) proposes legal aid through the API; the kiosk shows
// the consent panel in Tibetan, the resident agrees, and the reference code
// with its QR code follows; the slip prints as one A4 page; back at the start
// screen, the code is looked up. kiosk-referral.test.mjs tests all of it in
// Chromium; this is the same kiosk in a second engine, kept short.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  startServerAndBrowser, stopServerAndBrowser, launchFirefox, firefoxPage, pdfPages, FIREFOX, ARTIFACTS,
  assertClean, eventually, liveClient, accessToken, callApi, leaveLive,
} from './support.mjs';

/** A reference code as the kiosk shows it. */
const CODE = /^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$/;

let server;
let browser;
let firefox;

before(async () => {
  assert.ok(existsSync(FIREFOX), `no Firefox at ${FIREFOX} (tests/browser/run.sh installs firefox-esr)`);
  ({ server, browser } = await startServerAndBrowser());
  firefox = await launchFirefox();
});

after(async () => {
  await firefox?.close();
  await stopServerAndBrowser(server, browser);
});

const testid = (id) => `[data-testid="${id}"]`;

test('the kiosk in Firefox: the consent panel and the reference code in Tibetan, a one-page slip, the code looked up', async () => {
  const { context, page: kiosk, problems } = await firefoxPage(firefox, server);
  /** The text of an element once it matches a pattern. */
  const textOf = (id, pattern) => eventually(async () => {
    const text = await kiosk.$eval(testid(id), (el) => el.textContent);
    assert.match(text, pattern);
    return text;
  });
  const shown = (id) => kiosk.waitForSelector(testid(id), { visible: true });
  const gone = (id) => kiosk.waitForSelector(testid(id), { hidden: true });
  const shot = async (name) => {
    await mkdir(ARTIFACTS, { recursive: true });
    await kiosk.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  };

  await kiosk.goto(server.url('/terminal'));
  await kiosk.locator(testid('enroll-code')).fill('DEMO-TERMINAL-1');
  await kiosk.locator(testid('enroll-submit')).click();
  await shown('start-screen');

  // The lawyer, available: only the live connection (the call's media is firefox.test.mjs's).
  const token = await accessToken(server, 'demo-lawyer');
  const lawyer = await liveClient(browser, server, token);
  try {
    await lawyer.send({ type: 'presence.set', state: 'available' });
    await lawyer.next('presence', (m) => m.state === 'available');

    // A resident asks in Tibetan about land; the lawyer accepts.
    await kiosk.locator(testid('lang-bo')).click();
    await kiosk.locator(testid('talk-now')).click();
    await kiosk.locator(testid('topic-land')).click();
    await shown('check-screen');
    await kiosk.locator(testid('consult-now')).click();
    const offer = await lawyer.next('consult.offer');
    await lawyer.send({ type: 'consult.accept', request: offer.request });
    const { consultation } = await lawyer.next('consult.started');
    await shown('call-screen');

    // Legal aid proposed: the consent panel beside the call, in Tibetan.
    const api = (method, url, body) => callApi(server, method, url, token, body);
    const office = (await api('GET', `/api/consultations/${consultation}/referrals`)).body.offices.find((o) => o.service === 'legal_aid');
    const proposed = await api('POST', `/api/consultations/${consultation}/referrals`, {
      office: office.id, matter: 'A boundary dispute over the family field; the resident cannot pay a lawyer.',
    });
    assert.equal(proposed.status, 201, JSON.stringify(proposed.body));
    await shown('referral-agree');
    assert.equal(await kiosk.$eval(testid('referral-screen'), (el) => el.classList.contains('over')), true, 'a panel over the call');
    assert.equal(await kiosk.evaluate(() => document.documentElement.lang), 'bo');
    await textOf('referral-suggests', /ཁྲིམས་ལུགས་རོགས་རམ/);
    // The office by its name in Tibetan (the demo's), in Chinese by its own.
    assert.ok(!(await textOf('referral-receives', /དཀར་མཛེས་ཁུལ་ཁྲིམས་ཐོག་རོགས་རམ་ལྟེ་གནས།/)).includes('Garzê'));
    await textOf('referral-shares', /ས་ཞིང་།/);
    await shot('firefox-kiosk-referral-consent-bo');
    await kiosk.locator(testid('referral-lang-zh')).click();
    await textOf('referral-suggests', /法律援助/);
    assert.ok((await textOf('referral-receives', /./)).includes(office.name));
    await kiosk.locator(testid('referral-lang-bo')).click();
    await textOf('referral-receives', /དཀར་མཛེས་/);

    // Agreed: the code large, its QR code drawn, the slip's office and date.
    await kiosk.locator(testid('referral-agree')).click();
    const answered = await lawyer.next('referral.answered');
    assert.deepEqual([answered.referral, answered.agreed], [proposed.body.id, true]);
    await shown('referral-reference');
    const code = await textOf('referral-code', CODE);
    const qr = await kiosk.$eval(testid('referral-qr'), async (img) => {
      await img.decode();
      return { src: img.src.slice(0, 30), width: img.naturalWidth, shown: img.getBoundingClientRect().width };
    });
    assert.ok(/^data:image\/svg\+xml/.test(qr.src) && qr.width > 0 && qr.shown >= 120, JSON.stringify(qr));
    await textOf('referral-slip-office', /^ཁྲིམས་ལུགས་རོགས་རམ། · དཀར་མཛེས་ཁུལ་ཁྲིམས་ཐོག་རོགས་རམ་ལྟེ་གནས།/);
    await textOf('referral-slip-date', /^སྤྱི་ལོ་\d{4} ཟླ་\d{1,2} ཚེས་\d{1,2}$/);
    await shot('firefox-kiosk-referral-code-bo');

    // Printed: the slip alone, on one A4 page.
    const pdfFile = path.join(ARTIFACTS, 'firefox-kiosk-referral-slip-bo.pdf');
    await writeFile(pdfFile, await kiosk.pdf({ format: 'A4', printBackground: true }));
    assert.equal(pdfPages(pdfFile), 1, 'the slip is one page');

    // Done: back to the call; the lawyer hangs up, the resident skips the rating.
    await kiosk.locator(testid('referral-done')).click();
    await gone('referral-screen');
    await lawyer.send({ type: 'consult.hangup', consultation });
    await shown('rating-screen');
    await kiosk.locator(testid('rating-done')).click();
    await shown('start-screen');

    // The code looked up at the start screen, typed without its dash.
    await kiosk.locator(testid('check-referral')).click();
    await shown('referral-status-screen');
    await kiosk.locator(testid('referral-code-input')).fill(code.replace('-', ''));
    await kiosk.locator(testid('referral-status-submit')).click();
    await shown('referral-status-result');
    await textOf('referral-status-code', new RegExp(`^${code}$`));
    await textOf('referral-status-text', /ཞུ་གཏུག་འབྱོར་ཟིན།.*དཀར་མཛེས་ཁུལ་ཁྲིམས་ཐོག་རོགས་རམ་ལྟེ་གནས།/);
    await shot('firefox-kiosk-referral-status-bo');
    await kiosk.locator(testid('referral-status-done')).click();
    await shown('start-screen');
  } finally {
    await leaveLive(lawyer);
  }
  assertClean(problems);
  assertClean(lawyer.problems);
  await context.close();
});
