// The string tables, checked without a browser: every language of an app has
// the same keys, and every key the pages and scripts name exists.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { WEB_DIR } from './support.mjs';

const TOPICS = ['land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other'];
const LANGS = ['bo', 'zh', 'en'];
const REFERRAL_OUTCOMES = ['legal_aid_granted', 'legal_aid_refused', 'mediated', 'mediation_failed', 'withdrawn', 'unreachable', 'other'];
const APPS = {
  coordinator: {
    languages: ['zh', 'en'],
    dynamic: [
      ...['lawyer', 'interpreter', 'coordinator', 'admin', 'caseworker'].map((r) => `role.${r}`),
      ...LANGS.map((l) => `language.${l}`),
      ...TOPICS.map((c) => `topic.${c}`),
      ...['pending', 'enrolled', 'revoked'].map((s) => `terminals.status.${s}`),
      'error.invalid_credentials', 'error.rate_limited', 'error.session_expired', 'error.wrong_role',
      'error.forbidden', 'error.conflict', 'error.network', 'error.no_language', 'error.no_weekday', 'error.time_order',
      ...['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].flatMap((d) => [`weekday.${d}`, `weekdayShort.${d}`]),
      ...['covered', 'partial', 'gap'].flatMap((k) => [`coverage.${k}Mark`, `coverage.cell.${k}`]),
      // Referrals (referral-text.js): services, statuses, outcomes.
      ...['legal_aid', 'mediation'].map((s) => `referrals.service.${s}`),
      ...['proposed', 'new', 'accepted', 'closed'].map((s) => `referrals.status.${s}`),
      ...REFERRAL_OUTCOMES.map((o) => `referrals.outcome.${o}`),
      'error.wrong_status', 'error.office_exists', 'error.office_service', 'error.office_name', 'error.office_days',
      // Service records (service-records.js): the groupings.
      ...['volunteer', 'team', 'region'].flatMap((b) => [`serviceRecords.col.${b}`, `serviceRecords.caption.${b}`]),
      'error.fonts_missing',
    ],
  },
  lawyer: {
    languages: ['zh', 'en'],
    dynamic: [
      ...LANGS.map((l) => `language.${l}`),
      ...TOPICS.map((c) => `topic.${c}`),
      'error.invalid_credentials', 'error.rate_limited', 'error.session_expired', 'error.wrong_role', 'error.network',
      'error.time_order', 'error.not_booked',
      ...['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => `weekday.${d}`),
      ...['extra', 'off'].map((k) => `availability.kind.${k}`),
      ...['booked', 'cancelled', 'completed', 'no_show'].map((s) => `appointments.status.${s}`),
      // The live panel (live.js).
      ...['offline', 'available', 'ringing', 'in_consultation', 'wrap_up', 'break'].flatMap((s) => [`live.state.${s}`, `live.hint.${s}`]),
      ...['advice_given', 'referred_legal_aid', 'referred_mediation', 'follow_up_appointment'].map((o) => `outcome.${o}`),
      // A referral as the outcome (live-record.js), and an agreed one that became it (live-referrals.js).
      ...['legal_aid', 'mediation'].flatMap((s) => [`record.noOffice.${s}`, `refer.agreedOutcome.${s}`]),
      ...['resident', 'lawyer', 'interpreter'].flatMap((r) => [`role.${r}`, `call.peerLost.${r}`]),
      ...['connecting', 'good', 'audioOnly', 'lost'].map((n) => `call.net.${n}`),
      // Referrals (live-referrals.js): services and what became of a proposal.
      ...['legal_aid', 'mediation'].map((s) => `refer.service.${s}`),
      ...['proposed', 'new', 'accepted', 'closed', 'declined'].map((s) => `refer.state.${s}`),
      'error.too_late', 'error.no_kiosk', 'error.referral_exists', 'error.refer_no_office', 'error.refer_no_matter',
      // My service record (service-record.js).
      'error.service_range', 'error.service_too_long', 'error.fonts_missing',
      // A follow-up appointment (live-follow-up.js): each refusal in its words.
      ...['no_time', 'in_the_past', 'too_soon', 'too_far', 'off_grid', 'invalid_field', 'slot_taken', 'terminal_busy',
        'not_available', 'no_number', 'callback_off', 'not_found'].map((c) => `error.follow_up_${c}`),
    ],
  },
  terminal: {
    languages: ['bo', 'zh', 'en'],
    dynamic: [
      'error.invalid_code', 'error.rate_limited', 'error.network', 'error.empty_code',
      ...['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => `weekday.${d}`),
      ...TOPICS.map((c) => `topic.${c}`),
      ...LANGS.map((l) => `language.${l}`),
      ...['slot_taken', 'terminal_busy', 'no_lawyer_available', 'not_available', 'too_soon', 'in_the_past', 'network', 'other']
        .map((c) => `booking.error.${c}`),
      // Talking now (consult.js).
      ...['lawyer', 'interpreter'].flatMap((r) => [`call.role.${r}`, `call.away.${r}`]),
      ...['connecting', 'good', 'fair', 'poor', 'lost', 'audioOnly'].map((n) => `call.network.${n}`),
      ...[1, 2, 3, 4, 5].map((n) => `rating.${n}`),
      // Referrals (referral.js): the services the apps know.
      ...['legal_aid', 'mediation'].map((s) => `referral.service.${s}`),
    ],
  },
};

const read = (...parts) => readFile(path.join(WEB_DIR, ...parts), 'utf8');

/** Keys named literally in data-i18n* attributes and t('...') calls. */
function keysIn(text) {
  const keys = new Set();
  for (const m of text.matchAll(/data-i18n(?:-placeholder|-aria-label|-title)?="([^"]+)"/g)) keys.add(m[1]);
  for (const m of text.matchAll(/\bt\(\s*'([^'$]+)'/g)) keys.add(m[1]);
  // Every key has a dot ("area.name"); anything else is documentation ("key").
  return new Set([...keys].filter((key) => key.includes('.')));
}

for (const [app, spec] of Object.entries(APPS)) {
  test(`${app}: every language has the same keys, and every key used exists`, async () => {
    const tables = {};
    for (const lang of spec.languages) tables[lang] = JSON.parse(await read(app, 'i18n', `${lang}.json`));
    const [first, ...rest] = spec.languages;
    for (const lang of rest) {
      assert.deepEqual(Object.keys(tables[lang]).sort(), Object.keys(tables[first]).sort(), `${app}: ${lang} vs ${first}`);
    }
    // Every script of the app (app.js and its modules), and the shared ones it imports.
    const scripts = await Promise.all((await readdir(path.join(WEB_DIR, app))).filter((f) => f.endsWith('.js')).map((f) => read(app, f)));
    const script = scripts.join('\n');
    const sources = [await read(app, 'index.html'), ...scripts, await read('shared', 'i18n.js')];
    for (const shared of ['session.js', 'codes.js']) {
      if (script.includes(`/web/shared/${shared}`)) sources.push(await read('shared', shared));
    }
    const used = new Set([...sources.flatMap((s) => [...keysIn(s)]), ...spec.dynamic, 'error.unknown', 'page.title']);
    for (const lang of spec.languages) {
      const missing = [...used].filter((key) => !Object.hasOwn(tables[lang], key));
      assert.deepEqual(missing, [], `${app}/${lang}.json lacks keys`);
      const empty = Object.entries(tables[lang]).filter(([, v]) => typeof v !== 'string' || !v.trim()).map(([k]) => k);
      assert.deepEqual(empty, [], `${app}/${lang}.json has empty texts`);
    }
  });
}
