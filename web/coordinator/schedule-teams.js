// The coordinator's aid teams: the table (with an inline edit of the
// members), and the form that makes a team for the selected region.

import { seg } from '/web/shared/api.js';
import { t } from '/web/shared/i18n.js';
import { $, h, keepingFocus, byTestId } from '/web/shared/dom.js';

const VOLUNTEER_ROLES = ['lawyer', 'interpreter'];

/** @typedef {{id: string, name: string, members: string[], regions: string[]}} Team */

/**
 * @param {import('/web/coordinator/schedule.js').Schedule} schedule
 */
export function setupTeams(schedule) {
  const els = {
    body: $('teams-body'),
    form: $('team-form', HTMLFormElement),
    members: $('team-members'),
    regionHint: $('team-region-hint'),
  };

  const fresh = () => ({
    /** @type {Team[]} */
    teams: [],
    /** @type {string | null} the team whose members are being edited */
    editOpenFor: null,
    /** @type {string[] | null} the members ticked in the open edit, kept over a re-render */
    editDraft: null,
  });
  let state = fresh();

  /** @param {string} id */
  const accountById = (id) => schedule.accounts().find((a) => a.id === id);
  const volunteers = () => schedule.accounts()
    .filter((a) => a.active && a.roles.some((r) => VOLUNTEER_ROLES.includes(r)))
    .sort((a, b) => a.display_name.localeCompare(b.display_name));

  async function load() {
    try {
      state.teams = await schedule.client.get('/api/teams');
    } catch (error) {
      state.teams = [];
      schedule.reportError(error);
    }
    render();
    schedule.rosters.renderForm();
    schedule.rosters.render();
    schedule.onDuty.render();
  }

  /** @param {string[]} ids */
  function memberNames(ids) {
    if (!ids.length) return t('list.none');
    return ids.map((id) => accountById(id)?.display_name ?? id).join(t('list.separator'));
  }

  /** @param {HTMLElement} container */
  const checkedIn = (container) => [...container.querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value);

  function render() {
    const draftForm = state.editOpenFor ? $(`team-edit-row-${state.editOpenFor}`)?.querySelector('form') : null;
    if (draftForm) state.editDraft = [...draftForm.querySelectorAll('input[name="members"]:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value);
    keepingFocus(() => {
      const teams = [...state.teams].sort((a, b) => a.name.localeCompare(b.name));
      const rows = [];
      for (const team of teams) {
        rows.push(h('tr', { dataset: { teamId: team.id, testid: `team-row-${team.id}` } },
          h('th', { scope: 'row', textContent: team.name }),
          h('td', { textContent: memberNames(team.members), dataset: { testid: `team-members-${team.id}` } }),
          h('td', { textContent: team.regions.length ? team.regions.map(schedule.regionName).join(t('list.separator')) : t('list.none') }),
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
      els.body.replaceChildren(...rows);
      renderMemberChecks(els.members, 'team-member', 'new', null);
    });
    const r = schedule.region();
    els.regionHint.textContent = r ? t('teams.regionHint', { region: r.name }) : t('teams.noRegion');
  }

  /**
   * Checkboxes of volunteers; prefix makes ids and testids unique per form.
   * @param {HTMLElement} container
   * @param {string} prefix
   * @param {string} idPart
   * @param {string[] | null} chosen null: keep what is ticked now
   */
  function renderMemberChecks(container, prefix, idPart, chosen) {
    const keep = chosen ?? checkedIn(container);
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

  /** @param {Team} team */
  function editRow(team) {
    const checks = h('div', { className: 'checks' });
    renderMemberChecks(checks, 'team-edit-member', team.id, state.editDraft ?? team.members);
    const form = h('form', {
      className: 'edit-form',
      attrs: { 'aria-label': t('teams.editMembersLabel', { name: team.name }) },
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        saveMembers(team, /** @type {HTMLFormElement} */ (event.currentTarget), /** @type {HTMLButtonElement} */ (event.submitter));
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

  /** @param {Team} team */
  function openEdit(team) {
    state.editOpenFor = state.editOpenFor === team.id ? null : team.id;
    state.editDraft = null;
    render();
    $(`team-edit-row-${team.id}`)?.querySelector('input')?.focus();
  }

  /** @param {Team} team */
  function closeEdit(team) {
    state.editOpenFor = null;
    state.editDraft = null;
    render();
    focusEditButton(team.id);
  }

  /** @param {string} id */
  function focusEditButton(id) {
    byTestId(`team-edit-${id}`)?.focus();
  }

  /**
   * @param {Team} team
   * @param {HTMLFormElement} form
   * @param {HTMLButtonElement} button
   */
  async function saveMembers(team, form, button) {
    const members = [...form.querySelectorAll('input[name="members"]:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value);
    button.disabled = true;
    try {
      /** @type {Team} */
      const updated = await schedule.client.patch(`/api/teams/${seg(team.id)}`, { members });
      state.teams = state.teams.map((x) => (x.id === team.id ? updated : x));
      state.editOpenFor = null;
      state.editDraft = null;
      render();
      focusEditButton(team.id);
      schedule.reportOk('teams.saved', { name: updated.name });
      schedule.loadDuty();
    } catch (error) {
      schedule.reportError(error);
      if (document.contains(button)) button.disabled = false;
    }
  }

  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = els.form;
    const r = schedule.region();
    const body = {
      name: /** @type {HTMLInputElement} */ (form.elements.namedItem('name')).value.trim(),
      members: checkedIn(els.members),
      regions: r ? [r.id] : [],
    };
    const button = /** @type {HTMLButtonElement} */ (event.submitter);
    button.disabled = true;
    try {
      /** @type {Team} */
      const created = await schedule.client.post('/api/teams', body);
      state.teams = [...state.teams.filter((x) => x.id !== created.id), created];
      form.reset();
      render();
      schedule.rosters.renderForm();
      schedule.reportOk('teams.created', { name: created.name });
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
    /** The teams the dashboard knows. */
    list: () => state.teams,
    /**
     * A team's name, from its id.
     * @param {string} id
     */
    name: (id) => state.teams.find((team) => team.id === id)?.name ?? id,
    /** Forgets the teams (logged out). */
    reset() {
      state = fresh();
      els.body.replaceChildren();
      els.members.replaceChildren();
      els.form.reset();
    },
  };
}
