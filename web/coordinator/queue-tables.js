// What the coordinator's live queue draws from a `live.view`: the regions'
// tiles, the waiting list, the consultations in progress, the people with
// their live states, and the words for the server's codes. Waits and durations
// are `data-tick` spans that queue.js counts up every second.

import { t, has, currentLanguage } from '/web/shared/i18n.js';
import { h } from '/web/shared/dom.js';
import { listOf } from '/web/shared/codes.js';

/**
 * The live view as queue.js keeps it.
 * @typedef {{at: number, regions: any[], queue: any[], people: any[], consultations: any[]}} View
 */

/**
 * What the tables are drawn from besides the view.
 * @typedef {object} Context
 * @property {View | null} view null until the first arrives
 * @property {boolean} many more than one region: the tables have a region column
 * @property {(id: string) => string} regionName
 * @property {(id: string) => string} terminalLabel
 */

/** Presence states in the order the people table lists them. */
export const PRESENCE_STATES = ['available', 'ringing', 'in_consultation', 'wrap_up', 'break', 'offline'];

/** A presence state in words (every key literal, so the i18n test sees them). */
export function presenceText(state) {
  const texts = {
    available: t('live.state.available'),
    ringing: t('live.state.ringing'),
    in_consultation: t('live.state.in_consultation'),
    wrap_up: t('live.state.wrap_up'),
    break: t('live.state.break'),
    offline: t('live.state.offline'),
  };
  return texts[state] ?? state;
}

function waitingForText(role) {
  const texts = {
    resident: t('live.waitingFor.resident'),
    lawyer: t('live.waitingFor.lawyer'),
    interpreter: t('live.waitingFor.interpreter'),
  };
  return texts[role] ?? role;
}

export function connectionText(kind) {
  const texts = {
    connecting: t('live.connection.connecting'),
    connected: t('live.connection.connected'),
    reconnecting: t('live.connection.reconnecting'),
    stopped: t('live.connection.stopped'),
  };
  return texts[kind] ?? '';
}

/** A language or topic code in words; a code this page has no word for shows as it is. */
const codeText = (prefix, code) => (has(`${prefix}.${code}`) ? t(`${prefix}.${code}`) : code);

const two = (n) => String(n).padStart(2, '0');

/** Seconds as "m:ss", or "h:mm:ss" from an hour on. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours) return t('live.duration.hms', { h: hours, m: two(minutes), s: two(s % 60) });
  return t('live.duration.ms', { m: minutes, s: two(s % 60) });
}

/**
 * A time of day from unix seconds, in the page's language.
 * @param {number} unixSeconds
 * @param {boolean} [seconds] with the seconds
 */
export function clockTime(unixSeconds, seconds = false) {
  /** @type {Intl.DateTimeFormatOptions} */
  const options = { hour: '2-digit', minute: '2-digit', ...(seconds ? { second: '2-digit' } : {}) };
  try {
    return new Intl.DateTimeFormat(currentLanguage(), options).format(new Date(unixSeconds * 1000));
  } catch {
    return new Intl.DateTimeFormat(undefined, options).format(new Date(unixSeconds * 1000));
  }
}

/** A ticking duration: its base (seconds at the last push) counts up with the clock. */
export const ticking = (key, props = {}) => h('span', { ...props, className: `tick ${props.className ?? ''}`.trim(), dataset: { ...(props.dataset ?? {}), tick: key } });

/** A text with a {time} placeholder, around a ticking duration. */
export function withTick(text, key) {
  const [before, after = ''] = text.split('\u0001');
  return [before, ticking(key), after];
}

/** A phone caller (the hotline) is marked with a telephone and its name, a kiosk with nothing. */
function channelMark(channel) {
  if (channel !== 'phone') return '';
  return h('span', { className: 'badge channel', dataset: { testid: 'channel-phone' }, title: t('live.channel.phone'), textContent: `☎ ${t('live.channel.phone')}` });
}

/**
 * The polite summary: counts only, so that it speaks when something changes, not every second.
 * @param {View | null} v
 */
export function summaryText(v) {
  let text = '';
  if (v) {
    const waiting = v.queue.length;
    const ringing = v.queue.filter((q) => q.ringing).length;
    const available = v.people.filter((p) => p.state === 'available').length;
    text = [
      waiting
        ? (ringing ? t('live.summary.waitingRinging', { count: waiting, ringing }) : t('live.summary.waiting', { count: waiting }))
        : t('live.summary.nobodyWaiting'),
      t('live.summary.consultations', { count: v.consultations.length }),
      t('live.summary.available', { count: available }),
    ].join(t('live.summary.separator'));
  }
  return text;
}

/**
 * A tile per region (the selected one first): how many wait, and the longest wait.
 * @param {Context} context
 * @param {string[]} order the regions' ids, in order
 * @param {string | null} selected
 */
export function regionTiles({ view: v, regionName }, order, selected) {
  return order.map((id) => {
    const r = v?.regions.find((x) => x.region_id === id);
    const waiting = r?.waiting ?? 0;
    return h('li', {
      className: `region-tile${waiting ? ' busy' : ''}${id === selected ? ' selected' : ''}`,
      dataset: { testid: `queue-region-${id}`, waiting: String(waiting) },
    },
    h('span', { className: 'region-tile-name', textContent: regionName(id) }),
    h('span', { className: 'region-tile-count', textContent: v ? t('live.region.waiting', { count: waiting }) : t('live.region.unknown') }),
    waiting
      ? h('span', { className: 'region-tile-wait' }, ...withTick(t('live.region.longest', { time: '\u0001' }), `longest:${id}`))
      : null);
  });
}

/**
 * The waiting list: its head and its rows.
 * @param {Context} context
 */
export function queueTable({ view: v, many, regionName, terminalLabel }) {
  const head = h('tr', {},
    h('th', { scope: 'col', textContent: t('live.col.position') }),
    many ? h('th', { scope: 'col', textContent: t('live.col.region') }) : null,
    h('th', { scope: 'col', textContent: t('live.col.terminal') }),
    h('th', { scope: 'col', textContent: t('live.col.language') }),
    h('th', { scope: 'col', textContent: t('live.col.topic') }),
    h('th', { scope: 'col', textContent: t('live.col.waited') }),
    h('th', { scope: 'col', textContent: t('live.col.status') }));
  const columns = many ? 7 : 6;
  if (!v) return { head, rows: [h('tr', {}, h('td', { className: 'empty', colSpan: columns, textContent: t('live.waitingForView') }))] };
  const rows = v.queue.map((q) => {
    let status;
    if (q.ringing) status = h('span', { className: 'badge ringing', textContent: t('live.queue.ringing') });
    else if (q.position == null) status = h('span', { className: 'badge off', textContent: t('live.queue.away') });
    else status = h('span', { className: 'badge wait', textContent: t('live.queue.waiting') });
    return h('tr', {
      dataset: { testid: `queue-row-${q.request}`, request: q.request, ringing: String(Boolean(q.ringing)), regionId: q.region_id },
      className: q.ringing ? 'is-ringing' : '',
    },
    h('th', { scope: 'row', className: 'num', textContent: q.position == null ? t('list.none') : t('live.queue.position', { position: q.position }) }),
    many ? h('td', { textContent: regionName(q.region_id) }) : null,
    h('td', {}, channelMark(q.channel), terminalLabel(q.terminal_id)),
    h('td', { dataset: { testid: 'queue-language' }, textContent: codeText('language', q.language) }),
    h('td', { dataset: { testid: 'queue-topic' }, textContent: codeText('topic', q.topic) }),
    h('td', { className: 'num nowrap' }, ticking(`wait:${q.request}`)),
    h('td', { dataset: { testid: 'queue-status' } }, status));
  });
  if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: columns, textContent: t('live.queue.empty') })));
  return { head, rows };
}

/**
 * The consultations in progress: the head and the rows.
 * @param {Context} context
 */
export function consultationsTable({ view: v, many, regionName }) {
  const head = h('tr', {},
    many ? h('th', { scope: 'col', textContent: t('live.col.region') }) : null,
    h('th', { scope: 'col', textContent: t('live.col.language') }),
    h('th', { scope: 'col', textContent: t('live.col.topic') }),
    h('th', { scope: 'col', textContent: t('live.col.lawyer') }),
    h('th', { scope: 'col', textContent: t('live.col.interpreter') }),
    h('th', { scope: 'col', textContent: t('live.col.started') }),
    h('th', { scope: 'col', textContent: t('live.col.connection') }));
  const columns = many ? 7 : 6;
  if (!v) return { head, rows: [h('tr', {}, h('td', { className: 'empty', colSpan: columns, textContent: t('live.waitingForView') }))] };
  const rows = v.consultations.map((c) => {
    const waiting = c.waiting_for ?? [];
    return h('tr', { dataset: { testid: `consultation-row-${c.id}`, consultation: c.id, waitingFor: waiting.join(' ') } },
      many ? h('td', { textContent: regionName(c.region_id) }) : null,
      h('td', {}, channelMark(c.channel), codeText('language', c.language)),
      h('td', { textContent: codeText('topic', c.topic) }),
      h('th', { scope: 'row', dataset: { testid: 'consultation-lawyer' }, textContent: c.lawyer }),
      h('td', { textContent: c.interpreter || t('list.none') }),
      h('td', { className: 'nowrap' },
        h('span', { className: 'block-line', textContent: t('live.consultation.startedAt', { time: clockTime(c.started_at) }) }),
        h('span', { className: 'hint block-line' }, ...withTick(t('live.consultation.elapsed', { time: '\u0001' }), `elapsed:${c.id}`))),
      h('td', { dataset: { testid: 'consultation-connection' } }, waiting.length
        ? h('span', { className: 'badge wait', textContent: waiting.map(waitingForText).join(t('list.separator')) })
        : h('span', { className: 'badge ok', textContent: t('live.consultation.allPresent') })));
  });
  if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: columns, textContent: t('live.consultations.empty') })));
  return { head, rows };
}

/**
 * The people on the live path, by their state.
 * @param {View | null} v
 */
export function peopleRows(v) {
  if (!v) return [h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t('live.waitingForView') }))];
  const rank = (s) => (PRESENCE_STATES.includes(s) ? PRESENCE_STATES.indexOf(s) : PRESENCE_STATES.length);
  const people = [...v.people].sort((a, b) => rank(a.state) - rank(b.state) || a.name.localeCompare(b.name));
  const rows = people.map((p) => {
    const roles = [p.lawyer && 'lawyer', p.interpreter && 'interpreter'].filter(Boolean);
    return h('tr', { dataset: { testid: `person-row-${p.id}`, person: p.id, state: p.state, onDuty: String(Boolean(p.on_duty)) } },
      h('th', { scope: 'row', textContent: p.name }),
      h('td', { textContent: listOf('role', roles) }),
      h('td', { textContent: listOf('language', p.languages) }),
      h('td', {}, h('span', { className: `badge state-${p.state}`, dataset: { testid: 'person-state' }, textContent: presenceText(p.state) })),
      h('td', { textContent: p.on_duty ? t('live.person.onDuty') : t('live.person.offDuty') }));
  });
  if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t('live.people.empty') })));
  return rows;
}

