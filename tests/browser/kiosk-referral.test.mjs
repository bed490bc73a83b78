// Referrals at the kiosk, in a real Chromium against the real server: the
// lawyer proposes legal aid during the call (POST /api/consultations/{id}/referrals);
// the resident reads the consent panel beside the lawyer's picture in Tibetan,
// Chinese and English, agrees with a phone number typed on the keypad, and
// gets the reference code, its QR code and a slip that prints alone; a second
// proposal refused leaves nothing. After a call, on the rating screen: the
// proposal as a screen of its own, the network gone, a proposal answered
// already, the rating's thanks that must not end the visit, and nothing
// shown after the kiosk went back to the start screen. A proposal made while
// the kiosk's live connection was down, asked for when it comes back. The code looked up at
// the start screen as the office receives, handles and closes the referral;
// an unknown code; the idle reset. The lawyer's side is a bare live client
// and the API.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  startServerAndBrowser, stopServerAndBrowser, newContext, watch, assertClean, visible, hidden, textMatches,
  eventually, checkScreen, screenshot, accessToken, ARTIFACTS, callApi, enrollKiosk, availableLawyer as liveLawyer,
  leaveLive as leave,
} from './support.mjs';

/** A reference code as the kiosk shows it. */
const CODE = /^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$/;
const LANGS = ['bo', 'zh', 'en'];
/** Words each language's consent must show (the service, the topic "land"). */
const LEGAL_AID = { bo: /ཁྲིམས་ལུགས་རོགས་རམ/, zh: /法律援助/, en: /legal aid/i };
const MEDIATION = { bo: /མི་དམངས་བར་འདུམ/, zh: /人民调解/, en: /people's mediation/i };
const LAND = { bo: /ས་ཞིང་།/, zh: /土地/, en: /Land/ };
/** The demo legal-aid office by the name a resident reads: its Tibetan name in Tibetan, else its own. */
const LEGAL_AID_OFFICE = { bo: /དཀར་མཛེས་ཁུལ་ཁྲིམས་ཐོག་རོགས་རམ་ལྟེ་གནས།/, zh: /甘孜州法律援助中心 Garzê Legal Aid Centre/, en: /甘孜州法律援助中心 Garzê Legal Aid Centre/ };

let server;
let browser;
let kiosk;
let page;
let problems;
/** The code the resident agreed to in the first test, for the lookups. */
let agreedCode = null;
let agreedReferral = null;

before(async () => {
  ({ server, browser } = await startServerAndBrowser());
  kiosk = await newContext(browser, server, { hasTouch: true, timezoneId: 'Asia/Shanghai' });
  page = await kiosk.newPage();
  problems = watch(page);
  await enrollKiosk(page, server);
});

after(async () => {
  await kiosk?.close();
  await stopServerAndBrowser(server, browser);
});

/** Calls the API with a bearer token; resolves to { status, body }. */
const api = (token, method, url, body) => callApi(server, method, url, token, body);

/** Text as a regular expression matching it literally. */
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const deviceToken = () => page.evaluate(() => JSON.parse(localStorage.getItem('cloudlaw.terminal')).access_token);
const lang = () => page.evaluate(() => document.documentElement.lang);

/** The demo lawyer, available, played by a bare live client with camera and microphone. */
const availableLawyer = () => liveLawyer(browser, server);

/** From the start screen, in a language, to a call with the lawyer; the consultation's id. */
async function call(lawyer, language, topic) {
  await visible(page.getByTestId('start-screen'));
  await page.getByTestId(`lang-${language}`).tap();
  await page.getByTestId('talk-now').tap();
  await page.getByTestId(`topic-${topic}`).tap();
  await visible(page.getByTestId('check-screen'));
  await page.getByTestId('consult-now').tap();
  const offer = await lawyer.next('consult.offer');
  await lawyer.send({ type: 'consult.accept', request: offer.request });
  const started = await lawyer.next('consult.started');
  await visible(page.getByTestId('call-screen'));
  return started.consultation;
}

/** The lawyer proposes the region's office of a service; the proposal. */
async function propose(token, consultation, service, matter) {
  const listed = await api(token, 'GET', `/api/consultations/${consultation}/referrals`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  const office = listed.body.offices.find((o) => o.service === service);
  assert.ok(office, `an office for ${service}: ${JSON.stringify(listed.body.offices)}`);
  const proposed = await api(token, 'POST', `/api/consultations/${consultation}/referrals`, { office: office.id, matter });
  assert.equal(proposed.status, 201, JSON.stringify(proposed.body));
  assert.equal(proposed.body.status, 'proposed');
  return { ...proposed.body, officeName: office.name };
}

/** A third office of the kiosk's region, for a service other than legal aid and mediation (made once). */
let third = null;
async function otherOffice() {
  if (third) return third;
  const me = await api(await deviceToken(), 'GET', '/api/me');
  const admin = await accessToken(server, 'demo-admin');
  const made = await api(admin, 'POST', `/api/regions/${me.body.terminal.region_id}/offices`, {
    service: 'labour_arbitration', name: '康定市劳动人事争议仲裁院 Kangding Labour Arbitration (demo)', decision_days: 10,
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  third = made.body;
  return third;
}

/** The request the kiosk sends when the resident answers, and its answer. */
async function answering(tap) {
  const request = page.waitForRequest((r) => r.method() === 'POST' && /\/api\/referrals\/[^/]+\/consent$/.test(new URL(r.url()).pathname));
  const response = page.waitForResponse((r) => r.request().method() === 'POST' && /\/consent$/.test(new URL(r.url()).pathname));
  await tap();
  const sent = await request;
  const answer = await response;
  return { body: JSON.parse(sent.postData()), status: answer.status(), answer: await answer.json().catch(() => null) };
}

/** Runs a check with the kiosk's screen turned upright. */
async function portrait(check) {
  await page.setViewportSize({ width: 800, height: 1280 });
  try {
    await check();
  } finally {
    await page.setViewportSize({ width: 1280, height: 800 });
  }
}

/** Whether an element is drawn (checkVisibility: not display:none anywhere up). */
const drawn = (testid) => page.getByTestId(testid).evaluate((el) => el.checkVisibility()).catch(() => false);

test('during the call: legal aid proposed, read in three languages beside the video, agreed with a phone number; the code, its QR code and a printed slip', async () => {
  const lawyer = await availableLawyer();
  try {
    const consultation = await call(lawyer, 'bo', 'land');
    const video = page.getByTestId('remote-video');
    const playing = () => video.evaluate((v) => (v.videoWidth > 0 ? v.currentTime : 0));
    await eventually(async () => assert.ok((await playing()) > 0.5, 'the lawyer is seen'), 30_000);

    const token = await accessToken(server, 'demo-lawyer');
    const before = await api(token, 'GET', `/api/consultations/${consultation}/referrals`);
    assert.deepEqual(before.body.referrals, []);
    const proposal = await propose(token, consultation, 'legal_aid', 'A boundary dispute over the family field with the neighbour; the resident cannot pay a lawyer.');

    // A panel beside the call: the lawyer's picture stays, uncovered, and keeps moving.
    const panel = page.getByTestId('referral-screen');
    await visible(panel);
    assert.ok(await panel.evaluate((el) => el.classList.contains('over')), 'a panel over the call');
    await visible(page.getByTestId('call-screen'));
    await visible(page.getByTestId('hang-up'));
    const videoBox = await video.boundingBox();
    const panelBox = await panel.boundingBox();
    assert.ok(videoBox.x + videoBox.width <= panelBox.x + 1, `the video (${JSON.stringify(videoBox)}) is beside the panel (${JSON.stringify(panelBox)})`);
    const shown = await playing();
    await eventually(async () => assert.ok((await playing()) > shown + 1, 'the video plays on'), 15_000);

    // In each language: the service, the office (by its Tibetan name in Tibetan), what is shared, nothing untranslated.
    const region = (await api(await deviceToken(), 'GET', '/api/me')).body.terminal.region_id;
    const regionOffices = await api(await accessToken(server, 'demo-admin'), 'GET', `/api/regions/${region}/offices`);
    const tibetan = regionOffices.body.find((o) => o.service === 'legal_aid').names.bo;
    assert.match(tibetan, /^དཀར་མཛེས་/);
    for (const language of LANGS) {
      await page.getByTestId(`referral-lang-${language}`).tap();
      await eventually(async () => assert.equal(await lang(), language));
      await textMatches(page.getByTestId('referral-suggests'), LEGAL_AID[language]);
      const receives = await textMatches(page.getByTestId('referral-receives'), LEGAL_AID_OFFICE[language]);
      assert.ok(receives.includes(language === 'bo' ? tibetan : proposal.officeName), receives);
      if (language === 'bo') assert.ok(!receives.includes('Garzê'), receives);
      await textMatches(page.getByTestId('referral-shares'), LAND[language]);
      await checkScreen(page, `kiosk-referral-consent-${language}`, { minTarget: 64 });
    }
    await page.getByTestId('referral-lang-bo').tap();
    await portrait(() => checkScreen(page, 'kiosk-referral-consent-bo-portrait', { minTarget: 64 }));

    // The phone number on the keypad (a wrong digit taken back).
    assert.equal(await drawn('referral-phone-keypad'), false, 'the keypad comes when the field is touched');
    await page.getByTestId('referral-phone').tap();
    await visible(page.getByTestId('referral-phone-keypad'));
    for (const digit of '138001380009') await page.getByTestId(`phone-key-${digit}`).tap();
    await page.getByTestId('phone-key-delete').tap();
    assert.equal(await page.getByTestId('referral-phone').inputValue(), '13800138000');
    await checkScreen(page, 'kiosk-referral-consent-keypad-bo', { minTarget: 64 });
    await visible(page.getByTestId('referral-agree'));

    const agreed = await answering(() => page.getByTestId('referral-agree').tap());
    assert.deepEqual(agreed.body, { agree: true, contact: '13800138000' });
    assert.equal(agreed.status, 200);
    assert.match(agreed.answer.qr_svg, /<svg[\s>]/);
    const answered = await lawyer.next('referral.answered');
    assert.equal(answered.referral, proposal.id);
    assert.equal(answered.agreed, true);

    // The reference: the code large, its QR code (an image the browser drew), the office, the date.
    await visible(page.getByTestId('referral-reference'));
    const code = await textMatches(page.getByTestId('referral-code'), CODE);
    const size = await page.getByTestId('referral-code').evaluate((el) => Number.parseFloat(getComputedStyle(el).fontSize));
    assert.ok(size >= 40, `the code is large (${size}px)`);
    const qr = page.getByTestId('referral-qr');
    await visible(qr);
    const image = await qr.evaluate(async (img) => {
      await img.decode();
      const box = img.getBoundingClientRect();
      return { src: img.src.slice(0, 30), complete: img.complete, width: box.width, height: box.height, alt: img.alt };
    });
    assert.match(image.src, /^data:image\/svg\+xml/);
    assert.ok(image.complete && image.width >= 120 && Math.abs(image.width - image.height) < 1, JSON.stringify(image));
    assert.ok(image.alt.includes(code), image.alt);
    // The slip goes to the office too: its own name follows the Tibetan one.
    await textMatches(page.getByTestId('referral-slip-office'), new RegExp(`^ཁྲིམས་ལུགས་རོགས་རམ། · ${escape(tibetan)} \\(甘孜州法律援助中心 Garzê Legal Aid Centre \\(demo\\)\\)$`));
    await textMatches(page.getByTestId('referral-sent'), LEGAL_AID_OFFICE.bo);
    await textMatches(page.getByTestId('referral-slip-date'), /^སྤྱི་ལོ་\d{4} ཟླ་\d{1,2} ཚེས་\d{1,2}$/);
    for (const language of LANGS) {
      await page.getByTestId(`referral-lang-${language}`).tap();
      await textMatches(page.getByTestId('referral-slip-office'), LEGAL_AID[language]);
      await textMatches(page.getByTestId('referral-slip-office'), LEGAL_AID_OFFICE[language]);
      await textMatches(page.getByTestId('referral-sent'), LEGAL_AID_OFFICE[language]);
      await checkScreen(page, `kiosk-referral-code-${language}`, { minTarget: 64 });
    }
    await page.getByTestId('referral-lang-bo').tap();
    await portrait(() => checkScreen(page, 'kiosk-referral-code-bo-portrait', { minTarget: 64 }));

    // The office has it, with the phone number; the lawyer sees it agreed.
    const listed = await api(token, 'GET', `/api/consultations/${consultation}/referrals`);
    assert.equal(listed.body.referrals.length, 1);
    assert.equal(listed.body.referrals[0].status, 'new');
    assert.equal(listed.body.referrals[0].code, code);
    const caseworker = await accessToken(server, 'demo-caseworker');
    const held = await api(caseworker, 'GET', `/api/referrals/${proposal.id}`);
    assert.equal(held.status, 200);
    assert.equal(held.body.contact, '13800138000');
    assert.equal(held.body.topic, 'land');
    assert.equal(held.body.language, 'bo');

    // Print: the button prints; the page printed is the slip alone, black on white.
    await page.evaluate(() => {
      window.printed = 0;
      window.print = () => { window.printed += 1; };
    });
    await page.getByTestId('referral-print').tap();
    assert.equal(await page.evaluate(() => window.printed), 1);
    await mkdir(ARTIFACTS, { recursive: true });
    const pdf = await page.pdf({ format: 'A4', printBackground: true });
    await writeFile(path.join(ARTIFACTS, 'kiosk-referral-slip-bo.pdf'), pdf);
    assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
    const pages = pdf.toString('latin1').match(/\/Type\s*\/Page\b(?!s)/g) ?? [];
    assert.equal(pages.length, 1, 'the slip is one page');
    await page.emulateMedia({ media: 'print' });
    try {
      for (const id of ['referral-slip', 'referral-code', 'referral-qr', 'referral-slip-office', 'referral-slip-date']) {
        assert.equal(await drawn(id), true, `${id} is printed`);
      }
      for (const id of ['referral-print', 'referral-done', 'referral-sent', 'referral-lang-bo', 'call-screen', 'hang-up', 'remote-video', 'offline']) {
        assert.equal(await drawn(id), false, `${id} is not printed`);
      }
      const colours = await page.getByTestId('referral-code').evaluate((el) => ({
        ink: getComputedStyle(el).color,
        paper: getComputedStyle(document.body).backgroundColor,
      }));
      assert.deepEqual(colours, { ink: 'rgb(0, 0, 0)', paper: 'rgb(255, 255, 255)' });
      await screenshot(page, 'kiosk-referral-print-bo');
    } finally {
      await page.emulateMedia({ media: null });
    }

    // Done: back to the call, which went on all along.
    await page.getByTestId('referral-done').tap();
    await hidden(panel);
    await visible(page.getByTestId('call-screen'));
    assert.equal(await page.evaluate(() => document.body.classList.contains('referral-over')), false);

    // A second proposal, refused: nothing of it stays, no number carried over.
    const second = await propose(token, consultation, 'mediation', 'The neighbour would talk it over at the township.');
    await visible(panel);
    await textMatches(page.getByTestId('referral-suggests'), MEDIATION.bo);
    assert.equal(await page.getByTestId('referral-phone').inputValue(), '');
    const refused = await answering(() => page.getByTestId('referral-refuse').tap());
    assert.deepEqual(refused.body, { agree: false, contact: null });
    assert.equal(refused.answer.status, 'declined');
    await hidden(panel);
    const declined = await lawyer.next('referral.answered');
    assert.deepEqual([declined.referral, declined.agreed], [second.id, false]);
    const after = await api(token, 'GET', `/api/consultations/${consultation}/referrals`);
    assert.deepEqual(after.body.referrals.map((r) => [r.id, r.status, r.service]), [[proposal.id, 'new', 'legal_aid']]);

    agreedCode = code;
    agreedReferral = proposal.id;
    await page.getByTestId('hang-up').tap();
    await visible(page.getByTestId('rating-screen'));
    await page.getByTestId('rating-done').tap();
    await visible(page.getByTestId('start-screen'));
  } finally {
    await leave(lawyer);
  }
  assertClean(problems);
});

test('after the call: the proposal is a screen before the rating; no network, an answer given already, the thanks that must wait; nothing after the kiosk is back at the start', async () => {
  const lawyer = await availableLawyer();
  try {
    const consultation = await call(lawyer, 'zh', 'family');
    // Hung up once the media flows (a call closed while it is still being set up is another story).
    await eventually(async () => {
      assert.ok(await page.getByTestId('remote-video').evaluate((v) => v.videoWidth > 0 && v.currentTime > 0.3));
    }, 30_000);
    await lawyer.send({ type: 'consult.hangup', consultation });
    await visible(page.getByTestId('rating-screen'));
    const token = await accessToken(server, 'demo-lawyer');

    // Proposed after the call: a screen of its own, the rating behind it.
    const first = await propose(token, consultation, 'legal_aid', 'Maintenance for the children after the divorce.');
    const screen = page.getByTestId('referral-screen');
    await visible(screen);
    assert.equal(await screen.evaluate((el) => el.classList.contains('over')), false);
    await hidden(page.getByTestId('rating-screen'));
    await textMatches(page.getByTestId('referral-suggests'), LEGAL_AID.zh);
    await textMatches(page.getByTestId('referral-shares'), /婚姻家庭/);
    await checkScreen(page, 'kiosk-referral-consent-screen-zh', { minTarget: 64 });

    // No network: told so, and the resident stays where they were, the number kept.
    await page.getByTestId('referral-phone').tap();
    for (const digit of '0836123456') await page.getByTestId(`phone-key-${digit}`).tap();
    await kiosk.setOffline(true);
    await page.getByTestId('referral-agree').tap();
    await textMatches(page.getByTestId('referral-error'), /网络未连接/);
    await visible(page.getByTestId('offline'));
    await visible(page.getByTestId('referral-consent'));
    assert.equal(await page.getByTestId('referral-phone').inputValue(), '0836123456');
    await checkScreen(page, 'kiosk-referral-offline-zh', { minTarget: 64 });
    await kiosk.setOffline(false);
    await hidden(page.getByTestId('offline'));

    // Answered already (from this kiosk, a moment before): the server says 409, the kiosk says so plainly.
    const answeredBefore = await api(await deviceToken(), 'POST', `/api/referrals/${first.id}/consent`, { agree: true, contact: null });
    assert.equal(answeredBefore.status, 200);
    const late = await answering(() => page.getByTestId('referral-agree').tap());
    assert.equal(late.status, 409);
    await visible(page.getByTestId('referral-gone'));
    await textMatches(page.getByTestId('referral-gone'), /请问律师/);
    await checkScreen(page, 'kiosk-referral-gone-zh', { minTarget: 64 });
    // Back where they were: the faces, not rated yet.
    await page.getByTestId('referral-gone-back').tap();
    await visible(page.getByTestId('rating-screen'));
    await visible(page.getByTestId('rate-4'));

    // Rated: the thanks would end the visit after 6 s; a proposal then keeps the resident here.
    // An office of another service: named by its own name.
    await page.getByTestId('rate-4').tap();
    await visible(page.getByTestId('rating-thanks'));
    const other = await otherOffice();
    await propose(token, consultation, other.service, 'The employer has not paid the last three months.');
    await visible(screen);
    await textMatches(page.getByTestId('referral-suggests'), new RegExp(`^律师建议您找${escape(other.name)}$`));
    assert.equal(await drawn('referral-consent'), true);
    assert.deepEqual(await page.locator('[data-service-icon]').evaluateAll((icons) => icons.filter((i) => i.checkVisibility()).map((i) => i.dataset.serviceIcon)), ['other']);
    await checkScreen(page, 'kiosk-referral-consent-other-zh', { minTarget: 64 });
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    await visible(screen);
    const agreed = await answering(() => page.getByTestId('referral-agree').tap());
    assert.deepEqual(agreed.body, { agree: true, contact: null });
    await textMatches(page.getByTestId('referral-code'), CODE);
    await textMatches(page.getByTestId('referral-slip-office'), new RegExp(`^${escape(other.name)}$`));
    await checkScreen(page, 'kiosk-referral-code-screen-zh', { minTarget: 64 });
    // Done after rating: the visit ends, in Tibetan for the next person.
    await page.getByTestId('referral-done').tap();
    await visible(page.getByTestId('start-screen'));
    await eventually(async () => assert.equal(await lang(), 'bo'));
    await hidden(screen);

    // A proposal for the resident who has left: the start screen stays as it is.
    await propose(token, consultation, 'mediation', 'Asked after the resident left.');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal(await drawn('referral-screen'), false);
    await visible(page.getByTestId('start-screen'));
  } finally {
    await leave(lawyer);
  }
  assertClean(problems);
});

test('proposed while the kiosk\'s live connection is down: asked for when it comes back, shown once', async () => {
  const lawyer = await availableLawyer();
  try {
    const consultation = await call(lawyer, 'zh', 'labour');
    await eventually(async () => {
      assert.ok(await page.getByTestId('remote-video').evaluate((v) => v.videoWidth > 0 && v.currentTime > 0.3));
    }, 30_000);
    const token = await accessToken(server, 'demo-lawyer');
    const panel = page.getByTestId('referral-screen');
    /** The next answer to GET /api/referrals/proposed, and what it listed. */
    const nextCatchUp = () => page.waitForResponse((r) => new URL(r.url()).pathname === '/api/referrals/proposed' && r.ok(), { timeout: 30_000 })
      .then((r) => r.json());

    // The network goes, and the live connection with it: the push reaches nobody.
    await kiosk.setOffline(true);
    await visible(page.getByTestId('offline'));
    const proposal = await propose(token, consultation, 'legal_aid', 'Three months of wages unpaid by the building contractor.');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(await drawn('referral-screen'), false, 'nothing came while the kiosk was away');

    // Back: the kiosk asks what it missed and shows it as a push is shown (the list has the
    // last test's proposal to a resident who left too: not shown).
    let caughtUp = nextCatchUp();
    await kiosk.setOffline(false);
    const listed = await caughtUp;
    assert.ok(listed.some((p) => p.consultation !== consultation), JSON.stringify(listed));
    assert.deepEqual(listed.filter((p) => p.consultation === consultation).map((p) => [p.referral, p.service]), [[proposal.id, 'legal_aid']]);
    await hidden(page.getByTestId('offline'));
    await visible(panel);
    await textMatches(page.getByTestId('referral-suggests'), LEGAL_AID.zh);
    const receives = await page.getByTestId('referral-receives').textContent();
    assert.ok(receives.includes(proposal.officeName), receives);
    await checkScreen(page, 'kiosk-referral-after-reconnect-zh', { minTarget: 64 });

    // Another blink while it is on screen: asked again, still the one proposal.
    caughtUp = nextCatchUp();
    await kiosk.setOffline(true);
    await visible(page.getByTestId('offline'));
    await kiosk.setOffline(false);
    assert.equal((await caughtUp).filter((p) => p.consultation === consultation).length, 1);
    await visible(panel);
    // Refused: gone, and not shown a second time.
    const refused = await answering(() => page.getByTestId('referral-refuse').tap());
    assert.equal(refused.answer.status, 'declined');
    await hidden(panel);
    const declined = await lawyer.next('referral.answered');
    assert.deepEqual([declined.referral, declined.agreed], [proposal.id, false]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(await drawn('referral-screen'), false, 'the refused proposal stays away');

    // The resident goes: the call (or, had it dropped meanwhile, the rating) ends the visit.
    if (await page.getByTestId('hang-up').isVisible()) await page.getByTestId('hang-up').tap();
    await visible(page.getByTestId('rating-screen'));
    await page.getByTestId('rating-done').tap();
    await visible(page.getByTestId('start-screen'));
  } finally {
    await kiosk.setOffline(false);
    await leave(lawyer);
  }
  assertClean(problems);
});

test('the code is looked up at the start screen as the office receives, handles and closes the referral; an unknown code is not found', async () => {
  assert.ok(agreedCode, 'the first test agreed to a referral');
  const height = page.viewportSize().height;
  for (const language of LANGS) {
    await page.getByTestId(`lang-${language}`).tap();
    const box = await page.getByTestId('check-referral').boundingBox();
    assert.ok(box && box.y + box.height <= height, `check-referral ends at ${box && box.y + box.height} (${language})`);
  }

  /** Looks a code up, typed as given (on the keypad when `keys`); the sentence shown. */
  const lookUp = async (language, typed, { keys = false } = {}) => {
    await visible(page.getByTestId('start-screen'));
    await page.getByTestId(`lang-${language}`).tap();
    await page.getByTestId('check-referral').tap();
    await visible(page.getByTestId('referral-status-screen'));
    assert.equal(await page.getByTestId('referral-code-input').inputValue(), '');
    if (keys) {
      for (const key of typed) await page.getByTestId(`code-key-${key}`).tap();
    } else {
      await page.getByTestId('referral-code-input').fill(typed);
    }
    await page.getByTestId('referral-status-submit').tap();
    await visible(page.getByTestId('referral-status-result'));
    return page.getByTestId('referral-status-text').textContent();
  };
  // Received: on the keypad, in Tibetan (the office by its Tibetan name); typed in lower case without the dash,
  // in Chinese; with spaces, in English (the office by its own name).
  let text = await lookUp('bo', agreedCode.replace('-', ''), { keys: true });
  assert.equal(await page.getByTestId('referral-code-input').inputValue(), agreedCode);
  assert.match(text, /ཞུ་གཏུག་འབྱོར་ཟིན།/);
  assert.match(text, LEGAL_AID_OFFICE.bo);
  assert.ok(!text.includes('Garzê'), text);
  await textMatches(page.getByTestId('referral-status-code'), new RegExp(`^${agreedCode}$`));
  await checkScreen(page, 'kiosk-referral-status-new-bo', { minTarget: 64 });
  await portrait(() => checkScreen(page, 'kiosk-referral-status-new-bo-portrait', { minTarget: 64 }));
  await page.getByTestId('referral-status-done').tap();
  text = await lookUp('zh', agreedCode.replace('-', '').toLowerCase());
  assert.equal(await page.getByTestId('referral-code-input').inputValue(), agreedCode);
  assert.match(text, /已收到，正在等待.*受理/);
  assert.match(text, LEGAL_AID_OFFICE.zh);
  await checkScreen(page, 'kiosk-referral-status-new-zh', { minTarget: 64 });
  await page.getByTestId('referral-status-back').tap();
  text = await lookUp('en', ` ${agreedCode.slice(0, 4)} ${agreedCode.slice(5)} `);
  assert.match(text, /^Received; waiting for .*Garzê Legal Aid Centre/);
  await checkScreen(page, 'kiosk-referral-status-new-en', { minTarget: 64 });
  await page.getByTestId('referral-status-done').tap();

  // The office takes it, then closes it: each in its own words.
  const caseworker = await accessToken(server, 'demo-caseworker');
  assert.equal((await api(caseworker, 'POST', `/api/referrals/${agreedReferral}/accept`)).status, 200);
  text = await lookUp('bo', agreedCode);
  assert.match(text, /ཁྱེད་ཀྱི་ཞུ་གཏུག་སྒྲུབ་བཞིན་ཡོད།/);
  await page.getByTestId('referral-status-done').tap();
  text = await lookUp('en', agreedCode);
  assert.match(text, /is handling it\.$/);
  await page.getByTestId('referral-status-done').tap();
  assert.equal((await api(caseworker, 'POST', `/api/referrals/${agreedReferral}/close`, { outcome: 'legal_aid_granted' })).status, 200);
  for (const [language, closed] of [['bo', /ཁྲིམས་ལུགས་རོགས་རམ་སྤྲོད་རྒྱུའི་ཐག་བཅད་ཟིན།/], ['zh', /已批准给您法律援助/], ['en', /^Closed: legal aid was granted\.$/]]) {
    text = await lookUp(language, agreedCode);
    assert.match(text, closed);
    await checkScreen(page, `kiosk-referral-status-closed-${language}`, { minTarget: 64 });
    await page.getByTestId('referral-status-done').tap();
  }

  // Unknown: not found, and nothing else. Too short: said at once, nothing asked.
  const unknown = agreedCode === 'ZZZZ-ZZZZ' ? 'YYYY-YYYY' : 'ZZZZ-ZZZZ';
  for (const [language, notFound] of [['bo', /ཨང་རྟགས་འདིའི་ཞུ་གཏུག་མི་འདུག/], ['zh', /没有这个查询码/], ['en', /^No referral with this code\./]]) {
    text = await lookUp(language, unknown);
    assert.match(text, notFound);
    assert.equal(await page.getByTestId('referral-status-result').getAttribute('data-state'), 'not_found');
    await checkScreen(page, `kiosk-referral-status-unknown-${language}`, { minTarget: 64 });
    await page.getByTestId('referral-status-back').tap();
  }
  let asked = 0;
  const count = (request) => {
    if (request.url().includes('/api/referral-status/')) asked += 1;
  };
  page.on('request', count);
  text = await lookUp('en', 'ABC');
  page.off('request', count);
  assert.match(text, /8 letters and numbers/);
  assert.equal(asked, 0);
  await page.getByTestId('referral-status-back').tap();
  await page.getByTestId('lang-bo').tap();
  assertClean(problems);
});

test('the idle reset leaves the lookup and forgets the code', async () => {
  await page.clock.install();
  await page.reload();
  await visible(page.getByTestId('start-screen'));
  await page.getByTestId('lang-zh').tap();
  await page.getByTestId('check-referral').tap();
  await page.getByTestId('referral-code-input').fill(agreedCode ?? 'ABCD-EFGH');
  await page.getByTestId('referral-status-submit').tap();
  await visible(page.getByTestId('referral-status-result'));
  await page.clock.fastForward(91_000);
  await visible(page.getByTestId('start-screen'));
  await eventually(async () => assert.equal(await lang(), 'bo'));
  await page.getByTestId('check-referral').tap();
  await visible(page.getByTestId('referral-status-screen'));
  assert.equal(await page.getByTestId('referral-code-input').inputValue(), '');
  assert.equal(await page.getByTestId('referral-status-result').isHidden(), true);
  assert.equal(await page.getByTestId('referral-status-text').textContent(), '');
  await page.getByTestId('referral-status-back').tap();
  assertClean(problems);
});
