// The coordinator's live queue: one kept live connection (GET /ws) subscribed
// to `live.view`, drawn as the regions' waiting counts, the waiting list, the
// consultations in progress and the people with their live states. Waits and
// durations count up every second between the server's pushes.

import { seg } from '/web/shared/api.js';
import { t, has, currentLanguage } from '/web/shared/i18n.js';
import { keepLive } from '/web/shared/live.js';
import { $, h } from '/web/shared/dom.js';
import { listOf } from '/web/shared/codes.js';

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

function connectionText(kind) {
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

function clockTime(unixSeconds, seconds = false) {
  const options = { hour: '2-digit', minute: '2-digit', ...(seconds ? { second: '2-digit' } : {}) };
  try {
    return new Intl.DateTimeFormat(currentLanguage(), options).format(new Date(unixSeconds * 1000));
  } catch {
    return new Intl.DateTimeFormat(undefined, options).format(new Date(unixSeconds * 1000));
  }
}

/** A view without its clock readings: two views with the same key draw the same rows. */
function structureOf(view) {
  return JSON.stringify({
    queue: view.queue.map(({ waited_secs: _w, ...rest }) => rest),
    people: view.people,
    consultations: view.consultations,
    regions: view.regions.map((r) => [r.region_id, r.waiting]),
  });
}

/**
 * @param {object} options
 * @param {ReturnType<import('/web/shared/api.js').createClient>} options.client
 * @param {() => object[]} options.regions the coordinator's regions ({id, name})
 * @param {() => string|null} options.selectedRegion the id chosen at the top of the page
 * @param {() => void} options.onPeopleChanged the live people changed (the on-duty list shows them)
 */
export function setupQueue({ client, regions, selectedRegion, onPeopleChanged }) {
  const els = {
    connection: $('live-connection'),
    summary: $('queue-summary'),
    updated: $('queue-updated'),
    regions: $('queue-regions'),
    queueHead: $('queue-head'),
    queueBody: $('queue-body'),
    consultationsHead: $('consultations-head'),
    consultationsBody: $('consultations-body'),
    peopleBody: $('people-body'),
  };

  const fresh = () => ({
    active: false,
    connection: 'connecting',
    view: null,
    structure: null,
    peopleKey: null,
    receivedAt: 0,
    terminals: new Map(),
    terminalsAsked: new Map(),
  });
  let state = fresh();
  let live = null;
  let ticker = null;

  const regionName = (id) => (regions() ?? []).find((r) => r.id === id)?.name ?? id;
  const manyRegions = () => new Set([...(regions() ?? []).map((r) => r.id), ...(state.view?.regions ?? []).map((r) => r.region_id)]).size > 1;

  // ------------------------------------------------------------ connection

  function start() {
    stop();
    state.connection = 'connecting';
    renderConnection();
    live = keepLive({
      client,
      onMessage: receive,
      onUp: () => {
        live?.send({ type: 'live.subscribe' });
        state.connection = 'connected';
        renderConnection();
      },
      onDown: () => {
        if (!state.active) return;
        state.connection = 'reconnecting';
        renderConnection();
      },
      onRevoked: async () => {
        state.connection = 'stopped';
        renderConnection();
        // The HTTP client finds out too, and logs out when the session is gone.
        try {
          await client.get('/api/me');
          if (state.active) start();
        } catch {
          // Logged out (the page shows the login) or offline: stays stopped.
        }
      },
    });
    ticker = setInterval(tick, 1000);
  }

  function stop() {
    live?.stop();
    live = null;
    clearInterval(ticker);
    ticker = null;
  }

  function receive(message) {
    if (message.type !== 'live.view') return;
    const view = {
      at: Number(message.at) || 0,
      regions: message.regions ?? [],
      queue: message.queue ?? [],
      people: message.people ?? [],
      consultations: message.consultations ?? [],
    };
    state.view = view;
    state.receivedAt = Date.now();
    if (state.connection !== 'connected') {
      state.connection = 'connected';
      renderConnection();
    }
    const structure = structureOf(view);
    if (structure !== state.structure) {
      state.structure = structure;
      render();
    }
    const peopleKey = JSON.stringify(view.people);
    if (peopleKey !== state.peopleKey) {
      state.peopleKey = peopleKey;
      onPeopleChanged();
    }
    els.updated.textContent = t('live.updated', { time: clockTime(view.at, true) });
    tick();
    learnTerminals(view);
  }

  // ------------------------------------------------------------ terminals' names

  /** Names of the terminals in the queue, from GET /api/regions/{id}/terminals (at most every 30 s per region). */
  async function learnTerminals(view) {
    const missing = new Set(view.queue.filter((q) => !state.terminals.has(q.terminal_id)).map((q) => q.region_id));
    for (const regionId of missing) {
      const asked = state.terminalsAsked.get(regionId) ?? 0;
      if (Date.now() - asked < 30_000) continue;
      state.terminalsAsked.set(regionId, Date.now());
      const session = state;
      try {
        const list = await client.get(`/api/regions/${seg(regionId)}/terminals`);
        if (session !== state) return;
        for (const terminal of list ?? []) session.terminals.set(terminal.id, terminal);
        render();
      } catch {
        // Only a name: the row shows without it.
      }
    }
  }

  // ------------------------------------------------------------ drawing

  function renderConnection() {
    const kind = state.active ? state.connection : '';
    els.connection.dataset.state = kind;
    const text = kind ? connectionText(kind) : '';
    if (els.connection.textContent !== text) els.connection.textContent = text;
  }

  /** The polite summary: counts only, so that it speaks when something changes, not every second. */
  function renderSummary() {
    const v = state.view;
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
    if (els.summary.textContent !== text) els.summary.textContent = text;
  }

  /** A ticking duration: its base (seconds at the last push) counts up with the clock. */
  const ticking = (key, props = {}) => h('span', { ...props, className: `tick ${props.className ?? ''}`.trim(), dataset: { ...(props.dataset ?? {}), tick: key } });

  /** A text with a {time} placeholder, around a ticking duration. */
  function withTick(text, key) {
    const [before, after = ''] = text.split('\u0001');
    return [before, ticking(key), after];
  }

  function tickBase(key) {
    const v = state.view;
    if (!v) return null;
    const [kind, id] = key.split(':');
    if (kind === 'wait') return v.queue.find((q) => q.request === id)?.waited_secs ?? null;
    if (kind === 'longest') return v.regions.find((r) => r.region_id === id)?.longest_wait_secs ?? null;
    if (kind === 'elapsed') {
      const c = v.consultations.find((x) => x.id === id);
      return c ? Math.max(0, v.at - c.started_at) : null;
    }
    return null;
  }

  function tick() {
    if (!state.view) return;
    const since = (Date.now() - state.receivedAt) / 1000;
    for (const el of document.querySelectorAll('[data-tick]')) {
      const base = tickBase(el.dataset.tick);
      const text = base === null ? '' : duration(base + since);
      if (el.textContent !== text) el.textContent = text;
    }
  }

  function regionOrder() {
    const selected = selectedRegion();
    const known = (regions() ?? []).map((r) => r.id);
    for (const r of state.view?.regions ?? []) if (!known.includes(r.region_id)) known.push(r.region_id);
    return [...known].sort((a, b) => (a === selected ? -1 : b === selected ? 1 : 0));
  }

  function renderRegions() {
    const v = state.view;
    const tiles = regionOrder().map((id) => {
      const r = v?.regions.find((x) => x.region_id === id);
      const waiting = r?.waiting ?? 0;
      return h('li', {
        className: `region-tile${waiting ? ' busy' : ''}${id === selectedRegion() ? ' selected' : ''}`,
        dataset: { testid: `queue-region-${id}`, waiting: String(waiting) },
      },
      h('span', { className: 'region-tile-name', textContent: regionName(id) }),
      h('span', { className: 'region-tile-count', textContent: v ? t('live.region.waiting', { count: waiting }) : t('live.region.unknown') }),
      waiting
        ? h('span', { className: 'region-tile-wait' }, ...withTick(t('live.region.longest', { time: '\u0001' }), `longest:${id}`))
        : null);
    });
    els.regions.replaceChildren(...tiles);
  }

  /** A phone caller (the hotline) is marked with a telephone and its name, a kiosk with nothing. */
  function channelMark(channel) {
    if (channel !== 'phone') return '';
    return h('span', { className: 'badge channel', dataset: { testid: 'channel-phone' }, title: t('live.channel.phone'), textContent: `☎ ${t('live.channel.phone')}` });
  }

  function terminalLabel(id) {
    const terminal = state.terminals.get(id);
    return terminal ? terminal.name : t('live.terminalUnknown');
  }

  function renderQueue() {
    const many = manyRegions();
    els.queueHead.replaceChildren(h('tr', {},
      h('th', { scope: 'col', textContent: t('live.col.position') }),
      many ? h('th', { scope: 'col', textContent: t('live.col.region') }) : null,
      h('th', { scope: 'col', textContent: t('live.col.terminal') }),
      h('th', { scope: 'col', textContent: t('live.col.language') }),
      h('th', { scope: 'col', textContent: t('live.col.topic') }),
      h('th', { scope: 'col', textContent: t('live.col.waited') }),
      h('th', { scope: 'col', textContent: t('live.col.status') })));
    const v = state.view;
    const columns = many ? 7 : 6;
    if (!v) {
      els.queueBody.replaceChildren(h('tr', {}, h('td', { className: 'empty', colSpan: columns, textContent: t('live.waitingForView') })));
      return;
    }
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
    els.queueBody.replaceChildren(...rows);
  }

  function renderConsultations() {
    const many = manyRegions();
    els.consultationsHead.replaceChildren(h('tr', {},
      many ? h('th', { scope: 'col', textContent: t('live.col.region') }) : null,
      h('th', { scope: 'col', textContent: t('live.col.language') }),
      h('th', { scope: 'col', textContent: t('live.col.topic') }),
      h('th', { scope: 'col', textContent: t('live.col.lawyer') }),
      h('th', { scope: 'col', textContent: t('live.col.interpreter') }),
      h('th', { scope: 'col', textContent: t('live.col.started') }),
      h('th', { scope: 'col', textContent: t('live.col.connection') })));
    const v = state.view;
    const columns = many ? 7 : 6;
    if (!v) {
      els.consultationsBody.replaceChildren(h('tr', {}, h('td', { className: 'empty', colSpan: columns, textContent: t('live.waitingForView') })));
      return;
    }
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
    els.consultationsBody.replaceChildren(...rows);
  }

  function renderPeople() {
    const v = state.view;
    if (!v) {
      els.peopleBody.replaceChildren(h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t('live.waitingForView') })));
      return;
    }
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
    els.peopleBody.replaceChildren(...rows);
  }

  function render() {
    if (!state.active) return;
    renderConnection();
    renderSummary();
    renderRegions();
    renderQueue();
    renderConsultations();
    renderPeople();
    if (state.view) els.updated.textContent = t('live.updated', { time: clockTime(state.view.at, true) });
    tick();
  }

  return {
    show() {
      state = fresh();
      state.active = true;
      render();
      start();
    },
    hide() {
      stop();
      state = fresh();
      renderConnection();
      for (const el of [els.regions, els.queueHead, els.queueBody, els.consultationsHead, els.consultationsBody, els.peopleBody]) {
        el.replaceChildren();
      }
      els.summary.textContent = '';
      els.updated.textContent = '';
    },
    /** The regions arrived, or the selected one changed (it goes first). */
    regionsChanged() {
      render();
    },
    render,
    /** A person's live state ({state, on_duty}), or null when they are not connected. */
    person(id) {
      return state.view?.people.find((p) => p.id === id) ?? null;
    },
    /** Whether the live view has arrived (before it, nobody's state is known). */
    known: () => Boolean(state.view),
  };
}
