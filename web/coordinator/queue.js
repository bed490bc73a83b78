// The coordinator's live queue: one kept live connection (GET /ws) subscribed
// to `live.view`, drawn as the regions' waiting counts, the waiting list, the
// consultations in progress and the people with their live states. Waits and
// durations count up every second between the server's pushes.

import { seg } from '/web/shared/api.js';
import { t } from '/web/shared/i18n.js';
import { keepLive } from '/web/shared/live.js';
import { $ } from '/web/shared/dom.js';
import {
  clockTime, connectionText, consultationsTable, duration, peopleRows, queueTable, regionTiles, summaryText,
} from '/web/coordinator/queue-tables.js';

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
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => import('/web/coordinator/regions.js').Region[]} options.regions the coordinator's regions
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
      if (!(el instanceof HTMLElement)) continue;
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

  function terminalLabel(id) {
    const terminal = state.terminals.get(id);
    return terminal ? terminal.name : t('live.terminalUnknown');
  }

  function render() {
    if (!state.active) return;
    renderConnection();
    const summary = summaryText(state.view);
    if (els.summary.textContent !== summary) els.summary.textContent = summary;
    /** @type {import('/web/coordinator/queue-tables.js').Context} */
    const context = { view: state.view, many: manyRegions(), regionName, terminalLabel };
    els.regions.replaceChildren(...regionTiles(context, regionOrder(), selectedRegion()));
    const queue = queueTable(context);
    els.queueHead.replaceChildren(queue.head);
    els.queueBody.replaceChildren(...queue.rows);
    const consultations = consultationsTable(context);
    els.consultationsHead.replaceChildren(consultations.head);
    els.consultationsBody.replaceChildren(...consultations.rows);
    els.peopleBody.replaceChildren(...peopleRows(state.view));
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
