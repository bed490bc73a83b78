// The coordinator's scheduling sections, for the region chosen at the top:
// aid teams (schedule-teams.js), the region's duty rosters
// (schedule-rosters.js), a week of coverage per language
// (schedule-coverage.js), and who is on duty now (schedule-on-duty.js).

import { setupTeams } from '/web/coordinator/schedule-teams.js';
import { setupRosters } from '/web/coordinator/schedule-rosters.js';
import { setupCoverage } from '/web/coordinator/schedule-coverage.js';
import { setupOnDuty } from '/web/coordinator/schedule-on-duty.js';

/**
 * An account as the dashboard knows it.
 * @typedef {{id: string, username: string, display_name: string, active: boolean, roles: string[]}} Account
 */

/**
 * What the scheduling sections share. Each section is set on it once made,
 * and uses the others only when something happens.
 * @typedef {object} Schedule
 * @property {import('/web/shared/api.js').Client} client
 * @property {() => Account[]} accounts
 * @property {() => import('/web/coordinator/regions.js').Region | null} region
 * @property {() => string} zone the selected region's time zone
 * @property {(id: string) => string} regionName
 * @property {(key: string, vars?: object) => void} reportOk
 * @property {(error: unknown) => void} reportError
 * @property {(id: string) => {state: string} | null} livePerson
 * @property {() => boolean} liveKnown
 * @property {() => void} loadDuty rosters and teams change who is on duty: reload coverage and the list
 * @property {ReturnType<typeof setupTeams>} teams
 * @property {ReturnType<typeof setupRosters>} rosters
 * @property {ReturnType<typeof setupCoverage>} coverage
 * @property {ReturnType<typeof setupOnDuty>} onDuty
 */

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => Account[]} options.accounts the accounts the dashboard knows
 * @param {() => import('/web/coordinator/regions.js').Region | null} options.region the selected region
 * @param {(id: string) => string} options.regionName a region's name, from its id
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: unknown) => void} options.reportError
 * @param {(id: string) => {state: string} | null} [options.livePerson] a person's live state ({state, on_duty}), null when not connected
 * @param {() => boolean} [options.liveKnown] whether the live view has arrived
 */
export function setupSchedule({
  client, accounts, region, regionName, reportOk, reportError, livePerson = () => null, liveKnown = () => false,
}) {
  let active = false;
  const schedule = /** @type {Schedule} */ ({
    client,
    accounts,
    region,
    zone: () => region()?.time_zone || 'UTC',
    regionName,
    reportOk,
    reportError,
    livePerson,
    liveKnown,
    loadDuty: () => {
      schedule.coverage.load();
      schedule.onDuty.load();
    },
  });
  schedule.teams = setupTeams(schedule);
  schedule.rosters = setupRosters(schedule);
  schedule.coverage = setupCoverage(schedule);
  schedule.onDuty = setupOnDuty(schedule);
  const { teams, rosters, coverage, onDuty } = schedule;

  function render() {
    teams.render();
    rosters.renderForm();
    rosters.render();
    coverage.render();
    onDuty.render();
  }

  /** Forgets everything shown (logged out, or logged in afresh). */
  function reset() {
    teams.reset();
    rosters.reset();
    coverage.reset();
    onDuty.reset();
  }

  return {
    show() {
      reset();
      active = true;
      teams.load();
    },
    /** The region changed (or the regions arrived). */
    regionChanged() {
      if (!active) return;
      coverage.regionChanged();
      rosters.clear();
      onDuty.clear();
      render();
      rosters.load();
      schedule.loadDuty();
    },
    accountsChanged() {
      if (active) teams.render();
    },
    /** The live view's people changed: what the people on duty are doing now. */
    liveChanged() {
      if (active) onDuty.render();
    },
    render() {
      if (active) render();
    },
    hide() {
      active = false;
      reset();
    },
  };
}
