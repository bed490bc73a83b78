// The coordinator dashboard: the live queue (queue.js), accounts
// (accounts.js), regions (regions.js, with their receiving offices in
// offices.js), the region chosen at the top, its terminals (terminals.js),
// scheduling (schedule.js), appointments by phone (phone-booking.js), reports
// (reports.js), service records (service-records.js) and referrals (referrals.js). Caseworkers of the receiving
// offices sign in here too and see only the referrals. This module has the
// login, the status line and the region picker, and tells every section what changed.

import { createClient } from '/web/shared/api.js';
import { t, onLanguageChange, showError, clearError } from '/web/shared/i18n.js';
import { startSignedInApp, reportStartFailure } from '/web/shared/session.js';
import { $, h, byTestId } from '/web/shared/dom.js';
import { setupAccounts } from '/web/coordinator/accounts.js';
import { setupTerminals } from '/web/coordinator/terminals.js';
import { setupSchedule } from '/web/coordinator/schedule.js';
import { setupQueue } from '/web/coordinator/queue.js';
import { setupReports } from '/web/coordinator/reports.js';
import { setupServiceRecords } from '/web/coordinator/service-records.js';
import { setupRegions, regionTree } from '/web/coordinator/regions.js';
import { setupPhoneBooking } from '/web/coordinator/phone-booking.js';
import { setupReferrals } from '/web/coordinator/referrals.js';
import { setupOffices } from '/web/coordinator/offices.js';

const client = createClient('coordinator');
const APP_ROLES = ['coordinator', 'admin', 'caseworker'];

const els = {
  loginView: $('login-view'),
  loginForm: $('login-form', HTMLFormElement),
  loginError: byTestId('login-error'),
  dashboard: $('dashboard'),
  whoami: byTestId('whoami'),
  logout: $('logout', HTMLButtonElement),
  status: $('status'),
  regionSelect: $('region-select', HTMLSelectElement),
  managerSections: $('manager-sections'),
  title: $('app-title'),
};

/**
 * @typedef {import('/web/coordinator/regions.js').Region} Region
 * @typedef {{kind: 'ok', key: string, vars?: object} | {kind: 'error', error: unknown}} Status
 */

/** Everything shown after login; emptied at logout so nothing stays behind. */
const empty = () => ({
  /** @type {{id: string, username: string, display_name: string, roles: string[]} | null} */
  me: null,
  /** @type {Region[] | null} null until they load */
  regions: null,
  /** @type {string | null} */
  regionId: null,
  /** @type {Status | null} */
  status: null,
});
let state = empty();

// ---------------------------------------------------------------- status

/** @param {Status | null} status */
function setStatus(status) {
  state.status = status;
  renderStatus();
}
/**
 * @param {string} key
 * @param {object} [vars]
 */
const reportOk = (key, vars) => setStatus({ kind: 'ok', key, vars });
/** @param {unknown} error */
const reportError = (error) => setStatus({ kind: 'error', error });

function renderStatus() {
  const s = state.status;
  els.status.dataset.kind = s ? s.kind : '';
  if (!s) {
    clearError(els.status);
    els.status.hidden = false;
  } else if (s.kind === 'error') {
    showError(els.status, s.error);
  } else {
    delete els.status.dataset.errorCode;
    els.status.textContent = t(s.key, s.vars);
  }
}

/**
 * Runs an action with its button disabled; errors go to the status area.
 * @param {HTMLButtonElement | null} button
 * @param {() => Promise<void>} action
 */
async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (error) {
    reportError(error);
  } finally {
    if (button && document.contains(button)) button.disabled = false;
  }
}

// ---------------------------------------------------------------- sections

const selectedRegion = () => (state.regions ?? []).find((r) => r.id === state.regionId) ?? null;
const isAdmin = () => Boolean(state.me?.roles?.includes('admin'));
/** Coordinators and admins manage; a caseworker alone sees only the referrals. */
const isManager = () => Boolean(state.me?.roles?.some((role) => role === 'coordinator' || role === 'admin'));
const isCaseworker = () => Boolean(state.me?.roles?.includes('caseworker'));

const accounts = setupAccounts({
  client,
  me: () => state.me,
  isAdmin,
  busy,
  reportOk,
  reportError,
  onChanged: () => {
    schedule.accountsChanged();
    offices.accountsChanged();
  },
});
const terminals = setupTerminals({
  client,
  regionId: () => state.regionId,
  busy,
  reportOk,
  reportError,
});
const schedule = setupSchedule({
  client,
  accounts: () => accounts.list(),
  region: selectedRegion,
  regionName: (id) => (state.regions ?? []).find((r) => r.id === id)?.name ?? id,
  reportOk,
  reportError,
  livePerson: (id) => queue.person(id),
  liveKnown: () => queue.known(),
});
const queue = setupQueue({
  client,
  regions: () => state.regions ?? [],
  selectedRegion: () => state.regionId,
  onPeopleChanged: () => schedule.liveChanged(),
});
const reports = setupReports({
  client,
  regions: () => state.regions ?? [],
  region: selectedRegion,
});
const serviceRecords = setupServiceRecords({
  client,
  regions: () => state.regions ?? [],
  region: selectedRegion,
});
const phoneBooking = setupPhoneBooking({
  client,
  region: selectedRegion,
  reportOk,
  reportError,
});
const offices = setupOffices({
  client,
  region: selectedRegion,
  accounts: () => accounts.list(),
  isAdmin,
  busy,
  reportOk,
  reportError,
});
const referrals = setupReferrals({
  client,
  me: () => state.me,
  isCaseworker,
  busy,
  reportOk,
  reportError,
});
const regionsCard = setupRegions({
  client,
  regions: () => state.regions,
  isAdmin,
  reload: () => loadRegions(),
  reportOk,
});

// ---------------------------------------------------------------- session

function showLogin() {
  state = empty();
  els.dashboard.hidden = true;
  els.logout.hidden = true;
  els.whoami.hidden = true;
  els.whoami.textContent = '';
  els.regionSelect.replaceChildren();
  accounts.reset();
  terminals.reset();
  schedule.hide();
  queue.hide();
  reports.hide();
  serviceRecords.hide();
  phoneBooking.hide();
  regionsCard.hide();
  offices.hide();
  referrals.hide();
  els.managerSections.hidden = true;
  $('region-zone').textContent = '';
  renderStatus();
  renderTitle();
  els.loginView.hidden = false;
}

/** @param {{id: string, username: string, display_name: string, roles: string[]}} account */
function showDashboard(account) {
  state.me = account;
  els.loginView.hidden = true;
  clearError(els.loginError);
  els.dashboard.hidden = false;
  els.logout.hidden = false;
  els.whoami.hidden = false;
  renderWhoami();
  renderTitle();
  $('main').focus();
  const manager = isManager();
  els.managerSections.hidden = !manager;
  for (const link of document.querySelectorAll('.section-nav .manager-only')) /** @type {HTMLElement} */ (link).hidden = !manager;
  referrals.show();
  if (!manager) return;
  schedule.show();
  queue.show();
  reports.show();
  serviceRecords.show();
  phoneBooking.show();
  regionsCard.show();
  offices.show();
  accounts.load();
  loadRegions();
}

/** The page's title and heading: the coordinators' dashboard, or a caseworker's referral desk. */
function renderTitle() {
  const desk = Boolean(state.me) && !isManager();
  els.title.dataset.i18n = desk ? 'app.titleCaseworker' : 'app.title';
  els.title.textContent = desk ? t('app.titleCaseworker') : t('app.title');
  document.title = desk ? t('page.titleCaseworker') : t('page.title');
}

function renderWhoami() {
  if (!state.me) return;
  els.whoami.textContent = t('auth.loggedInAs', {
    name: state.me.display_name,
    username: state.me.username,
  });
}

client.onLoggedOut(() => {
  showLogin();
  showError(els.loginError, { code: 'session_expired', serverMessage: '' });
});

els.logout.addEventListener('click', async () => {
  await client.logout();
  showLogin();
  byTestId('login-username').focus();
});

// ---------------------------------------------------------------- the region

async function loadRegions() {
  try {
    state.regions = await client.get('/api/regions');
  } catch (error) {
    state.regions = [];
    reportError(error);
  }
  const ids = state.regions.map((r) => r.id);
  if (!ids.includes(state.regionId)) state.regionId = ids[0] ?? null;
  renderRegions();
  regionsCard.regionsChanged();
  offices.regionChanged();
  schedule.regionChanged();
  queue.regionsChanged();
  reports.regionsChanged();
  serviceRecords.regionsChanged();
  phoneBooking.regionChanged();
  await terminals.load();
}

function renderRegions() {
  const regions = state.regions ?? [];
  const select = els.regionSelect;
  if (!regions.length) {
    select.replaceChildren(h('option', { value: '', textContent: t('terminals.noRegions') }));
    select.disabled = true;
  } else {
    select.replaceChildren(...regionTree(regions).map(({ region, depth }) =>
      h('option', { value: region.id, textContent: `${'\u2003'.repeat(depth)}${region.name}` })));
    select.disabled = false;
    select.value = state.regionId;
  }
  terminals.renderRegister();
  const region = selectedRegion();
  $('region-zone').textContent = region ? t('region.zone', { zone: region.time_zone || 'UTC' }) : '';
}

els.regionSelect.addEventListener('change', () => {
  state.regionId = els.regionSelect.value || null;
  terminals.regionChanged();
  renderRegions();
  offices.regionChanged();
  schedule.regionChanged();
  queue.regionsChanged();
  phoneBooking.regionChanged();
  serviceRecords.regionChanged();
  terminals.load();
});

// ---------------------------------------------------------------- start

onLanguageChange(() => {
  renderTitle();
  renderWhoami();
  if (state.me) {
    renderStatus();
    referrals.render();
  }
  if (state.me && isManager()) {
    accounts.render();
    renderRegions();
    regionsCard.render();
    terminals.render();
    terminals.renderCode();
    offices.render();
    schedule.render();
    queue.render();
    reports.render();
    serviceRecords.render();
    phoneBooking.render();
  }
});

startSignedInApp({ app: 'coordinator', client, roles: APP_ROLES, els, onLoggedIn: showDashboard, showLogin })
  .catch(reportStartFailure);
