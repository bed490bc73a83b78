// The duty rosters of the selected region: the table (with delete), and the
// form that puts a team on duty on some weekdays, between two times, from one
// date to another (in the region's time zone).

import { seg } from '/web/shared/api.js';
import { t } from '/web/shared/i18n.js';
import { $, h, keepingFocus, timeChoices } from '/web/shared/dom.js';
import { WEEKDAYS, addDays } from '/web/coordinator/schedule-coverage.js';

/**
 * @typedef {{id: string, team_id: string, weekdays: string[], start: string, end: string,
 *   starts_on: string, ends_on: string}} Roster
 */

/**
 * @param {import('/web/coordinator/schedule.js').Schedule} schedule
 */
export function setupRosters(schedule) {
  const els = {
    body: $('rosters-body'),
    zone: $('rosters-zone'),
    form: $('roster-form', HTMLFormElement),
    team: $('roster-team', HTMLSelectElement),
    start: $('roster-start', HTMLSelectElement),
    end: $('roster-end', HTMLSelectElement),
    startsOn: $('roster-starts-on', HTMLInputElement),
    endsOn: $('roster-ends-on', HTMLInputElement),
    days: $('roster-days'),
  };

  /** @type {Roster[]} */
  let rosters = [];

  function renderForm() {
    const r = schedule.region();
    const teams = [...schedule.teams.list()].sort((a, b) => {
      const posted = (/** @type {{regions: string[]}} */ x) => (r && x.regions.includes(r.id) ? 0 : 1);
      return posted(a) - posted(b) || a.name.localeCompare(b.name);
    });
    const chosen = els.team.value;
    els.team.replaceChildren(...teams.map((team) => h('option', { value: team.id, textContent: team.name })));
    if (teams.some((team) => team.id === chosen)) els.team.value = chosen;
    if (!els.start.options.length) {
      for (const [select, value] of /** @type {[HTMLSelectElement, string][]} */ ([[els.start, '09:00'], [els.end, '17:00']])) {
        select.replaceChildren(...timeChoices(30).map((v) => h('option', { value: v, textContent: v })));
        select.value = value;
      }
    }
    if (!els.days.children.length) {
      els.days.replaceChildren(...WEEKDAYS.map((d) => h('label', { className: 'check', htmlFor: `roster-day-${d}` },
        h('input', { type: 'checkbox', id: `roster-day-${d}`, name: 'weekdays', value: d, dataset: { testid: `roster-day-${d}` } }),
        h('span', { dataset: { i18n: `weekday.${d}` }, textContent: t(`weekday.${d}`) }))));
    }
    const week = schedule.coverage.week();
    if (!els.startsOn.value && week) {
      els.startsOn.value = week;
      els.endsOn.value = addDays(week, 7 * 26 - 1);
    }
    /** @type {HTMLButtonElement} */ (els.form.querySelector('[data-testid="roster-create"]')).disabled = !r || !teams.length;
  }

  async function load() {
    const r = schedule.region();
    if (!r) {
      rosters = [];
      render();
      return;
    }
    try {
      const list = await schedule.client.get(`/api/regions/${seg(r.id)}/rosters`);
      if (schedule.region()?.id === r.id) rosters = list;
    } catch (error) {
      rosters = [];
      schedule.reportError(error);
    }
    render();
  }

  function render() {
    const teamName = schedule.teams.name;
    els.zone.textContent = schedule.region() ? t('rosters.zone', { zone: schedule.zone() }) : '';
    keepingFocus(() => {
      const rows = [...rosters]
        .sort((a, b) => teamName(a.team_id).localeCompare(teamName(b.team_id)) || a.start.localeCompare(b.start))
        .map((roster) => h('tr', { dataset: { rosterId: roster.id, testid: `roster-row-${roster.id}` } },
          h('th', { scope: 'row', textContent: teamName(roster.team_id) }),
          h('td', {
            textContent: WEEKDAYS.filter((d) => roster.weekdays.includes(d)).map((d) => t(`weekdayShort.${d}`)).join(t('list.separator')),
          }),
          h('td', { className: 'nowrap', textContent: t('rosters.hours', { start: roster.start, end: roster.end }) }),
          h('td', { className: 'nowrap', textContent: t('rosters.dates', { from: roster.starts_on, to: roster.ends_on }) }),
          h('td', {}, h('button', {
            type: 'button', className: 'danger', dataset: { testid: `roster-delete-${roster.id}` }, textContent: t('rosters.delete'),
            attrs: { 'aria-label': t('rosters.deleteLabel', { team: teamName(roster.team_id), start: roster.start, end: roster.end }) },
            onclick: (/** @type {MouseEvent} */ event) => deleteRoster(roster, /** @type {HTMLButtonElement} */ (event.currentTarget)),
          }))));
      if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t('rosters.empty') })));
      els.body.replaceChildren(...rows);
    });
  }

  /**
   * @param {Roster} roster
   * @param {HTMLButtonElement} button
   */
  async function deleteRoster(roster, button) {
    button.disabled = true;
    try {
      await schedule.client.request('DELETE', `/api/rosters/${seg(roster.id)}`);
      rosters = rosters.filter((x) => x.id !== roster.id);
      render();
      $('rosters-heading').focus();
      schedule.reportOk('rosters.deleted', { team: schedule.teams.name(roster.team_id) });
      schedule.loadDuty();
    } catch (error) {
      schedule.reportError(error);
      if (document.contains(button)) button.disabled = false;
    }
  }

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const r = schedule.region();
    const weekdays = [...els.days.querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value);
    if (!weekdays.length) {
      schedule.reportError({ code: 'no_weekday', serverMessage: '' });
      els.days.querySelector('input').focus();
      return;
    }
    if (!(els.end.value > els.start.value)) {
      schedule.reportError({ code: 'time_order', serverMessage: '' });
      els.end.focus();
      return;
    }
    const body = {
      team_id: els.team.value,
      region_id: r?.id,
      weekdays,
      start: els.start.value,
      end: els.end.value,
      starts_on: els.startsOn.value,
      ends_on: els.endsOn.value,
    };
    const button = /** @type {HTMLButtonElement} */ (event.submitter);
    button.disabled = true;
    try {
      /** @type {Roster} */
      const created = await schedule.client.post('/api/rosters', body);
      rosters = [...rosters, created];
      for (const input of els.days.querySelectorAll('input')) input.checked = false;
      render();
      schedule.reportOk('rosters.created', { team: schedule.teams.name(created.team_id) });
      schedule.loadDuty();
    } catch (error) {
      schedule.reportError(error);
    } finally {
      button.disabled = false;
    }
  });

  return {
    load,
    render,
    renderForm,
    /** Another region: its rosters are loaded next. */
    clear() {
      rosters = [];
    },
    /** Forgets the rosters (logged out). */
    reset() {
      rosters = [];
      els.body.replaceChildren();
      els.form.reset();
      els.startsOn.value = '';
      els.endsOn.value = '';
    },
  };
}
