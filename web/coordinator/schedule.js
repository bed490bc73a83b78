// The coordinator's scheduling sections: aid teams, the selected region's
// duty rosters, a week of coverage per language, and who is on duty now.

import { seg } from '/web/shared/api.js';
import { t, currentLanguage } from '/web/shared/i18n.js';
import { $, h, keepingFocus, timeChoices } from '/web/shared/dom.js';
import { listOf } from '/web/shared/codes.js';
import { presenceText } from '/web/coordinator/queue.js';

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const VOLUNTEER_ROLES = ['lawyer', 'interpreter'];

// ---------------------------------------------------------------- dates

/** "YYYY-MM-DD" plus n days (pure calendar arithmetic). */
function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

const zoneFormats = new Map();
/** Local date ("YYYY-MM-DD") and hour (0-23) of an instant in a time zone. */
function localParts(ms, zone) {
  if (!zoneFormats.has(zone)) {
    zoneFormats.set(zone, new Intl.DateTimeFormat('en-CA', {
      timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23',
    }));
  }
  const parts = Object.fromEntries(zoneFormats.get(zone).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, hour: Number(parts.hour) % 24 };
}

/** The Monday of the week that holds today in a time zone. */
function mondayOf(zone) {
  const today = localParts(Date.now(), zone).date;
  const weekday = (new Date(`${today}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday = 0
  return addDays(today, -weekday);
}

function formatDate(date, options) {
  try {
    return new Intl.DateTimeFormat(currentLanguage(), { timeZone: 'UTC', ...options }).format(new Date(`${date}T00:00:00Z`));
  } catch {
    return date;
  }
}

const STEP_MS = 5 * 60_000;

/**
 * Minutes covered and uncovered per local day and hour: a map from
 * "date|hour" to {covered, gap}. Spans are walked in 5-minute steps, each
 * placed by its local wall-clock time, so DST days come out right.
 */
function cellMinutes(coverage, zone) {
  const cells = new Map();
  const add = (spans, kind) => {
    for (const span of spans ?? []) {
      const end = Date.parse(span.end);
      for (let ms = Date.parse(span.start); ms < end; ms += STEP_MS) {
        const { date, hour } = localParts(ms, zone);
        const key = `${date}|${hour}`;
        const cell = cells.get(key) ?? { covered: 0, gap: 0 };
        cell[kind] += Math.min(STEP_MS, end - ms) / 60_000;
        cells.set(key, cell);
      }
    }
  };
  add(coverage.covered, 'covered');
  add(coverage.gaps, 'gap');
  return cells;
}

// ---------------------------------------------------------------- setup

/**
 * @param {object} options
 * @param {ReturnType<import('/web/shared/api.js').createClient>} options.client
 * @param {() => object[]} options.accounts the accounts the dashboard knows
 * @param {() => object|null} options.region the selected region ({id, name, time_zone})
 * @param {(id: string) => string} options.regionName a region's name, from its id
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: object) => void} options.reportError
 * @param {(id: string) => object|null} [options.livePerson] a person's live state ({state, on_duty}), null when not connected
 * @param {() => boolean} [options.liveKnown] whether the live view has arrived
 */
export function setupSchedule({
  client, accounts, region, regionName, reportOk, reportError, livePerson = () => null, liveKnown = () => false,
}) {
  const els = {
    teamsBody: $('teams-body'),
    teamForm: $('team-form'),
    teamMembers: $('team-members'),
    teamRegionHint: $('team-region-hint'),
    rostersBody: $('rosters-body'),
    rostersZone: $('rosters-zone'),
    rosterForm: $('roster-form'),
    rosterTeam: $('roster-team'),
    rosterStart: $('roster-start'),
    rosterEnd: $('roster-end'),
    rosterStartsOn: $('roster-starts-on'),
    rosterEndsOn: $('roster-ends-on'),
    rosterDays: $('roster-days'),
    coverageLanguage: $('coverage-language'),
    coveragePrev: $('coverage-prev'),
    coverageNext: $('coverage-next'),
    coverageWeek: $('coverage-week'),
    coverageSummary: $('coverage-summary'),
    coverageHead: $('coverage-head'),
    coverageBody: $('coverage-body'),
    onDutyList: $('on-duty-list'),
    onDutyRefresh: $('on-duty-refresh'),
  };

  const fresh = () => ({
    active: false,
    teams: [],
    editOpenFor: null,
    editDraft: null,
    rosters: [],
    coverage: null,
    week: null,
    language: 'bo',
    onDuty: [],
  });
  let state = fresh();

  const zone = () => region()?.time_zone || 'UTC';
  const accountById = (id) => accounts().find((a) => a.id === id);
  const volunteers = () => accounts()
    .filter((a) => a.active && a.roles.some((r) => VOLUNTEER_ROLES.includes(r)))
    .sort((a, b) => a.display_name.localeCompare(b.display_name));
  const teamName = (id) => state.teams.find((team) => team.id === id)?.name ?? id;

  // ------------------------------------------------------------ teams

  async function loadTeams() {
    try {
      state.teams = await client.get('/api/teams');
    } catch (error) {
      state.teams = [];
      reportError(error);
    }
    renderTeams();
    renderRosterForm();
    renderRosters();
    renderOnDuty();
  }

  function memberNames(ids) {
    if (!ids.length) return t('list.none');
    return ids.map((id) => accountById(id)?.display_name ?? id).join(t('list.separator'));
  }

  function renderTeams() {
    const draftForm = state.editOpenFor ? $(`team-edit-row-${state.editOpenFor}`)?.querySelector('form') : null;
    if (draftForm) state.editDraft = [...draftForm.querySelectorAll('input[name="members"]:checked')].map((i) => i.value);
    keepingFocus(() => {
      const teams = [...state.teams].sort((a, b) => a.name.localeCompare(b.name));
      const rows = [];
      for (const team of teams) {
        rows.push(h('tr', { dataset: { teamId: team.id, testid: `team-row-${team.id}` } },
          h('th', { scope: 'row', textContent: team.name }),
          h('td', { textContent: memberNames(team.members), dataset: { testid: `team-members-${team.id}` } }),
          h('td', { textContent: team.regions.length ? team.regions.map(regionName).join(t('list.separator')) : t('list.none') }),
          h('td', {}, h('button', {
            type: 'button', dataset: { testid: `team-edit-${team.id}` }, textContent: t('teams.editMembers'),
            attrs: {
              'aria-label': t('teams.editMembersLabel', { name: team.name }),
              'aria-expanded': String(state.editOpenFor === team.id),
              'aria-controls': `team-edit-row-${team.id}`,
            },
            onclick: () => openEdit(team),
          }))));
        if (state.editOpenFor === team.id) rows.push(editRow(team));
      }
      if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 4, textContent: t('teams.empty') })));
      els.teamsBody.replaceChildren(...rows);
      renderMemberChecks(els.teamMembers, 'team-member', 'new', null);
    });
    const r = region();
    els.teamRegionHint.textContent = r ? t('teams.regionHint', { region: r.name }) : t('teams.noRegion');
  }

  /** Checkboxes of volunteers; prefix makes ids and testids unique per form. */
  function renderMemberChecks(container, prefix, idPart, chosen) {
    const keep = chosen ?? [...container.querySelectorAll('input:checked')].map((i) => i.value);
    const people = volunteers();
    // Members the list does not show (another coordinator's volunteers) stay members.
    const unknown = (chosen ?? []).filter((id) => !people.some((p) => p.id === id));
    const boxes = [...people.map((p) => ({ id: p.id, label: `${p.display_name} (${p.username})`, username: p.username })),
      ...unknown.map((id) => ({ id, label: id, username: id }))];
    container.replaceChildren(...boxes.map((p) => {
      const id = `${prefix}-${idPart}-${p.id}`;
      return h('label', { className: 'check', htmlFor: id },
        h('input', {
          type: 'checkbox', id, name: 'members', value: p.id, checked: keep.includes(p.id),
          dataset: { testid: `${prefix}-${p.username}` },
        }),
        h('span', { textContent: p.label }));
    }));
    if (!boxes.length) container.append(h('p', { className: 'hint', textContent: t('teams.noVolunteers') }));
  }

  function editRow(team) {
    const checks = h('div', { className: 'checks' });
    renderMemberChecks(checks, 'team-edit-member', team.id, state.editDraft ?? team.members);
    const form = h('form', {
      className: 'edit-form',
      attrs: { 'aria-label': t('teams.editMembersLabel', { name: team.name }) },
      onsubmit: (event) => {
        event.preventDefault();
        saveMembers(team, event.currentTarget, event.submitter);
      },
    },
    h('fieldset', {}, h('legend', { textContent: t('teams.field.members') }), checks),
    h('div', { className: 'actions' },
      h('button', { type: 'submit', className: 'primary', dataset: { testid: `team-save-${team.id}` }, textContent: t('teams.save') }),
      h('button', {
        type: 'button', dataset: { testid: `team-edit-cancel-${team.id}` }, textContent: t('common.cancel'),
        onclick: () => closeEdit(team),
      })));
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closeEdit(team);
    });
    return h('tr', { className: 'inline-row', id: `team-edit-row-${team.id}` }, h('td', { colSpan: 4 }, form));
  }

  function openEdit(team) {
    state.editOpenFor = state.editOpenFor === team.id ? null : team.id;
    state.editDraft = null;
    renderTeams();
    $(`team-edit-row-${team.id}`)?.querySelector('input')?.focus();
  }

  function closeEdit(team) {
    state.editOpenFor = null;
    state.editDraft = null;
    renderTeams();
    document.querySelector(`[data-testid="team-edit-${CSS.escape(team.id)}"]`)?.focus();
  }

  async function saveMembers(team, form, button) {
    const members = [...form.querySelectorAll('input[name="members"]:checked')].map((i) => i.value);
    button.disabled = true;
    try {
      const updated = await client.patch(`/api/teams/${seg(team.id)}`, { members });
      state.teams = state.teams.map((x) => (x.id === team.id ? updated : x));
      state.editOpenFor = null;
      state.editDraft = null;
      renderTeams();
      document.querySelector(`[data-testid="team-edit-${CSS.escape(team.id)}"]`)?.focus();
      reportOk('teams.saved', { name: updated.name });
      loadDuty();
    } catch (error) {
      reportError(error);
      if (document.contains(button)) button.disabled = false;
    }
  }

  els.teamForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = els.teamForm;
    const r = region();
    const body = {
      name: form.elements.name.value.trim(),
      members: [...els.teamMembers.querySelectorAll('input:checked')].map((i) => i.value),
      regions: r ? [r.id] : [],
    };
    const button = event.submitter;
    button.disabled = true;
    try {
      const created = await client.post('/api/teams', body);
      state.teams = [...state.teams.filter((x) => x.id !== created.id), created];
      form.reset();
      renderTeams();
      renderRosterForm();
      reportOk('teams.created', { name: created.name });
      loadDuty();
    } catch (error) {
      reportError(error);
    } finally {
      button.disabled = false;
    }
  });

  // ------------------------------------------------------------ rosters

  function renderRosterForm() {
    const r = region();
    const teams = [...state.teams].sort((a, b) => {
      const posted = (x) => (r && x.regions.includes(r.id) ? 0 : 1);
      return posted(a) - posted(b) || a.name.localeCompare(b.name);
    });
    const chosen = els.rosterTeam.value;
    els.rosterTeam.replaceChildren(...teams.map((team) => h('option', { value: team.id, textContent: team.name })));
    if (teams.some((team) => team.id === chosen)) els.rosterTeam.value = chosen;
    if (!els.rosterStart.options.length) {
      for (const [select, value] of [[els.rosterStart, '09:00'], [els.rosterEnd, '17:00']]) {
        select.replaceChildren(...timeChoices(30).map((v) => h('option', { value: v, textContent: v })));
        select.value = value;
      }
    }
    if (!els.rosterDays.children.length) {
      els.rosterDays.replaceChildren(...WEEKDAYS.map((d) => h('label', { className: 'check', htmlFor: `roster-day-${d}` },
        h('input', { type: 'checkbox', id: `roster-day-${d}`, name: 'weekdays', value: d, dataset: { testid: `roster-day-${d}` } }),
        h('span', { dataset: { i18n: `weekday.${d}` }, textContent: t(`weekday.${d}`) }))));
    }
    if (!els.rosterStartsOn.value && state.week) {
      els.rosterStartsOn.value = state.week;
      els.rosterEndsOn.value = addDays(state.week, 7 * 26 - 1);
    }
    els.rosterForm.querySelector('[data-testid="roster-create"]').disabled = !r || !teams.length;
  }

  async function loadRosters() {
    const r = region();
    if (!r) {
      state.rosters = [];
      renderRosters();
      return;
    }
    try {
      const rosters = await client.get(`/api/regions/${seg(r.id)}/rosters`);
      if (region()?.id === r.id) state.rosters = rosters;
    } catch (error) {
      state.rosters = [];
      reportError(error);
    }
    renderRosters();
  }

  function renderRosters() {
    els.rostersZone.textContent = region() ? t('rosters.zone', { zone: zone() }) : '';
    keepingFocus(() => {
      const rows = [...state.rosters]
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
            onclick: (event) => deleteRoster(roster, event.currentTarget),
          }))));
      if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 5, textContent: t('rosters.empty') })));
      els.rostersBody.replaceChildren(...rows);
    });
  }

  async function deleteRoster(roster, button) {
    button.disabled = true;
    try {
      await client.request('DELETE', `/api/rosters/${seg(roster.id)}`);
      state.rosters = state.rosters.filter((x) => x.id !== roster.id);
      renderRosters();
      $('rosters-heading').focus();
      reportOk('rosters.deleted', { team: teamName(roster.team_id) });
      loadDuty();
    } catch (error) {
      reportError(error);
      if (document.contains(button)) button.disabled = false;
    }
  }

  els.rosterForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const r = region();
    const weekdays = [...els.rosterDays.querySelectorAll('input:checked')].map((i) => i.value);
    if (!weekdays.length) {
      reportError({ code: 'no_weekday', serverMessage: '' });
      els.rosterDays.querySelector('input').focus();
      return;
    }
    if (!(els.rosterEnd.value > els.rosterStart.value)) {
      reportError({ code: 'time_order', serverMessage: '' });
      els.rosterEnd.focus();
      return;
    }
    const body = {
      team_id: els.rosterTeam.value,
      region_id: r?.id,
      weekdays,
      start: els.rosterStart.value,
      end: els.rosterEnd.value,
      starts_on: els.rosterStartsOn.value,
      ends_on: els.rosterEndsOn.value,
    };
    const button = event.submitter;
    button.disabled = true;
    try {
      const created = await client.post('/api/rosters', body);
      state.rosters = [...state.rosters, created];
      for (const input of els.rosterDays.querySelectorAll('input')) input.checked = false;
      renderRosters();
      reportOk('rosters.created', { team: teamName(created.team_id) });
      loadDuty();
    } catch (error) {
      reportError(error);
    } finally {
      button.disabled = false;
    }
  });

  // ------------------------------------------------------------ coverage

  async function loadCoverage() {
    const r = region();
    if (!r) {
      state.coverage = null;
      renderCoverage();
      return;
    }
    const week = state.week;
    const language = state.language;
    try {
      const coverage = await client.get(
        `/api/regions/${seg(r.id)}/coverage?from=${week}&to=${addDays(week, 7)}&language=${encodeURIComponent(language)}`);
      if (region()?.id === r.id && state.week === week && state.language === language) state.coverage = coverage;
    } catch (error) {
      state.coverage = null;
      reportError(error);
    }
    renderCoverage();
  }

  function renderCoverage() {
    const week = state.week;
    els.coverageLanguage.value = state.language;
    if (!week) {
      els.coverageHead.replaceChildren();
      els.coverageBody.replaceChildren();
      return;
    }
    const z = state.coverage?.time_zone || zone();
    const days = WEEKDAYS.map((d, i) => ({ weekday: d, date: addDays(week, i) }));
    els.coverageWeek.textContent = t('coverage.week', {
      from: formatDate(week, { year: 'numeric', month: 'short', day: 'numeric' }),
      to: formatDate(addDays(week, 6), { year: 'numeric', month: 'short', day: 'numeric' }),
      zone: z,
    });
    const c = state.coverage;
    els.coverageSummary.textContent = c
      ? t('coverage.summary', {
        language: t(`language.${c.language}`),
        percent: c.total_minutes ? Math.round((100 * c.covered_minutes) / c.total_minutes) : 0,
        hours: Math.round(((c.total_minutes - c.covered_minutes) / 60) * 10) / 10,
      })
      : '';
    els.coverageHead.replaceChildren(h('tr', {},
      h('th', { scope: 'col', className: 'hour-col', textContent: t('coverage.hour') }),
      ...days.map((d) => h('th', { scope: 'col', dataset: { date: d.date } },
        h('span', { className: 'day-name', textContent: t(`weekdayShort.${d.weekday}`) }),
        h('span', { className: 'day-date', textContent: formatDate(d.date, { month: 'numeric', day: 'numeric' }) })))));
    const cells = c ? cellMinutes(c, z) : new Map();
    const rows = [];
    for (let hour = 0; hour < 24; hour += 1) {
      const label = `${String(hour).padStart(2, '0')}:00`;
      rows.push(h('tr', {},
        h('th', { scope: 'row', className: 'hour-col', textContent: label }),
        ...days.map((d) => {
          const cell = cells.get(`${d.date}|${hour}`);
          let kind = 'unknown';
          if (cell) kind = cell.gap === 0 ? 'covered' : cell.covered === 0 ? 'gap' : 'partial';
          const mark = kind === 'unknown' ? '' : t(`coverage.${kind}Mark`);
          return h('td', {
            className: `cov ${kind}`,
            dataset: { state: kind, testid: `coverage-cell-${d.date}-${String(hour).padStart(2, '0')}` },
            title: kind === 'unknown' ? undefined : t(`coverage.cell.${kind}`, { day: t(`weekday.${d.weekday}`), hour: label }),
          }, h('span', { attrs: { 'aria-hidden': 'true' }, textContent: mark }),
          kind === 'unknown' ? null : h('span', { className: 'visually-hidden', textContent: t(`coverage.legend${kind[0].toUpperCase()}${kind.slice(1)}`) }));
        })));
    }
    els.coverageBody.replaceChildren(...rows);
  }

  function moveWeek(days) {
    state.week = addDays(state.week, days);
    renderCoverage();
    loadCoverage();
  }

  els.coveragePrev.addEventListener('click', () => moveWeek(-7));
  els.coverageNext.addEventListener('click', () => moveWeek(7));
  els.coverageLanguage.addEventListener('change', () => {
    state.language = els.coverageLanguage.value;
    state.coverage = null;
    renderCoverage();
    loadCoverage();
  });

  // ------------------------------------------------------------ on duty

  async function loadOnDuty() {
    const r = region();
    if (!r) {
      state.onDuty = [];
      renderOnDuty();
      return;
    }
    try {
      const list = await client.get(`/api/regions/${seg(r.id)}/on-duty`);
      if (region()?.id === r.id) state.onDuty = list;
    } catch (error) {
      state.onDuty = [];
      reportError(error);
    }
    renderOnDuty();
  }

  function renderOnDuty() {
    const items = [...state.onDuty].sort((a, b) => a.display_name.localeCompare(b.display_name)).map((p) => {
      const via = p.duty?.via === 'roster'
        ? t('onDuty.viaRoster', { team: teamName(p.duty.team_id) })
        : t('onDuty.viaAvailability');
      // What they are doing now, from the live view: on duty is not the same as there.
      const live = livePerson(p.account_id);
      const now = live ? live.state : 'not_connected';
      return h('li', { dataset: { testid: `on-duty-${p.account_id}`, via: p.duty?.via ?? '', live: liveKnown() ? now : '' } },
        h('span', { className: 'on-duty-name', textContent: p.display_name }),
        h('span', { className: 'on-duty-meta', textContent: `${listOf('role', p.roles)} · ${listOf('language', p.languages)}` }),
        h('span', { className: `badge ${p.duty?.via === 'roster' ? 'wait' : 'ok'}`, textContent: via }),
        liveKnown() ? h('span', {
          className: `badge state-${now}`,
          dataset: { testid: `on-duty-state-${p.account_id}` },
          textContent: t('onDuty.now', { state: live ? presenceText(live.state) : t('onDuty.notConnected') }),
        }) : null);
    });
    if (!items.length) items.push(h('li', { className: 'empty', textContent: t('onDuty.empty') }));
    els.onDutyList.replaceChildren(...items);
  }

  els.onDutyRefresh.addEventListener('click', async () => {
    els.onDutyRefresh.disabled = true;
    await loadOnDuty();
    els.onDutyRefresh.disabled = false;
  });

  /** Rosters and teams change who is on duty: reload coverage and the list. */
  function loadDuty() {
    loadCoverage();
    loadOnDuty();
  }

  // ------------------------------------------------------------ lifecycle

  return {
    show() {
      state = fresh();
      state.active = true;
      loadTeams();
    },
    /** The region changed (or the regions arrived). */
    regionChanged() {
      if (!state.active) return;
      state.week = region() ? mondayOf(zone()) : null;
      state.coverage = null;
      state.rosters = [];
      state.onDuty = [];
      renderTeams();
      renderRosterForm();
      renderRosters();
      renderCoverage();
      renderOnDuty();
      loadRosters();
      loadDuty();
    },
    accountsChanged() {
      if (!state.active) return;
      renderTeams();
    },
    /** The live view's people changed: what the people on duty are doing now. */
    liveChanged() {
      if (!state.active) return;
      renderOnDuty();
    },
    render() {
      if (!state.active) return;
      renderTeams();
      renderRosterForm();
      renderRosters();
      renderCoverage();
      renderOnDuty();
    },
    hide() {
      state = fresh();
      for (const el of [els.teamsBody, els.teamMembers, els.rostersBody, els.coverageHead, els.coverageBody, els.onDutyList]) {
        el.replaceChildren();
      }
      els.teamForm.reset();
      els.rosterForm.reset();
      els.rosterStartsOn.value = '';
      els.rosterEndsOn.value = '';
      els.coverageWeek.textContent = '';
      els.coverageSummary.textContent = '';
    },
  };
}
