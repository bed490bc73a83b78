// Who is on duty now in the selected region (GET /api/regions/{id}/on-duty):
// by roster (with the team) or by their own availability, and, from the live
// view, what each is doing now.

import { seg } from '/web/shared/api.js';
import { t } from '/web/shared/i18n.js';
import { $, h } from '/web/shared/dom.js';
import { listOf } from '/web/shared/codes.js';
import { presenceText } from '/web/coordinator/queue-tables.js';

/**
 * @typedef {{account_id: string, display_name: string, roles: string[], languages: string[],
 *   duty?: {via: string, team_id?: string}}} OnDuty
 */

/**
 * @param {import('/web/coordinator/schedule.js').Schedule} schedule
 */
export function setupOnDuty(schedule) {
  const els = {
    list: $('on-duty-list'),
    refresh: $('on-duty-refresh', HTMLButtonElement),
  };

  /** @type {OnDuty[]} */
  let onDuty = [];

  async function load() {
    const r = schedule.region();
    if (!r) {
      onDuty = [];
      render();
      return;
    }
    try {
      const list = await schedule.client.get(`/api/regions/${seg(r.id)}/on-duty`);
      if (schedule.region()?.id === r.id) onDuty = list;
    } catch (error) {
      onDuty = [];
      schedule.reportError(error);
    }
    render();
  }

  function render() {
    const known = schedule.liveKnown();
    const items = [...onDuty].sort((a, b) => a.display_name.localeCompare(b.display_name)).map((p) => {
      const via = p.duty?.via === 'roster'
        ? t('onDuty.viaRoster', { team: schedule.teams.name(p.duty.team_id) })
        : t('onDuty.viaAvailability');
      // What they are doing now, from the live view: on duty is not the same as there.
      const live = schedule.livePerson(p.account_id);
      const now = live ? live.state : 'not_connected';
      return h('li', { dataset: { testid: `on-duty-${p.account_id}`, via: p.duty?.via ?? '', live: known ? now : '' } },
        h('span', { className: 'on-duty-name', textContent: p.display_name }),
        h('span', { className: 'on-duty-meta', textContent: `${listOf('role', p.roles)} · ${listOf('language', p.languages)}` }),
        h('span', { className: `badge ${p.duty?.via === 'roster' ? 'wait' : 'ok'}`, textContent: via }),
        known ? h('span', {
          className: `badge state-${now}`,
          dataset: { testid: `on-duty-state-${p.account_id}` },
          textContent: t('onDuty.now', { state: live ? presenceText(live.state) : t('onDuty.notConnected') }),
        }) : null);
    });
    if (!items.length) items.push(h('li', { className: 'empty', textContent: t('onDuty.empty') }));
    els.list.replaceChildren(...items);
  }

  els.refresh.addEventListener('click', async () => {
    els.refresh.disabled = true;
    await load();
    els.refresh.disabled = false;
  });

  return {
    load,
    render,
    /** Another region: its list is loaded next. */
    clear() {
      onDuty = [];
    },
    /** Forgets the list (logged out). */
    reset() {
      onDuty = [];
      els.list.replaceChildren();
    },
  };
}
