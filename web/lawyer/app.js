// The lawyer and interpreter console: login, who is logged in, logout, the
// live panel (live.js: duty, calls, records, past consultations), my service
// record (service-record.js) and the schedule (schedule.js) in
// <main id="console"> (see index.html).

import { createClient } from '/web/shared/api.js';
import { onLanguageChange, showError } from '/web/shared/i18n.js';
import { $, byTestId } from '/web/shared/dom.js';
import { startSignedInApp, reportStartFailure } from '/web/shared/session.js';
import { listOf } from '/web/shared/codes.js';
import { setupSchedule } from '/web/lawyer/schedule.js';
import { setupLive } from '/web/lawyer/live.js';
import { setupServiceRecord } from '/web/lawyer/service-record.js';

const client = createClient('lawyer');
const APP_ROLES = ['lawyer', 'interpreter'];

const els = {
  loginView: $('login-view'),
  loginForm: $('login-form', HTMLFormElement),
  loginError: byTestId('login-error'),
  console: $('console'),
  profile: $('profile'),
  name: $('profile-name'),
  languages: $('profile-languages'),
  topics: $('profile-topics'),
  logout: $('logout', HTMLButtonElement),
  skip: $('skip-link', HTMLAnchorElement),
};

let me = null;
let login = null;
const schedule = setupSchedule(client);
const serviceRecord = setupServiceRecord(client);
const live = setupLive(client, {
  // The session was revoked (logged out elsewhere, password reset, deactivated).
  onRevoked: () => {
    client.forget();
    showLogin();
    showError(els.loginError, { code: 'session_expired', serverMessage: '' });
  },
  // A follow-up booked under the record: it is in My appointments too.
  onAppointmentBooked: () => schedule.appointmentsChanged(),
});

function renderProfile() {
  if (!me) return;
  els.name.textContent = me.display_name;
  els.languages.textContent = listOf('language', me.languages);
  els.topics.textContent = listOf('topic', me.topics);
}

function showLogin() {
  me = null;
  els.console.hidden = true;
  els.profile.hidden = true;
  els.logout.hidden = true;
  for (const el of [els.name, els.languages, els.topics]) el.textContent = '';
  login?.reset();
  live.stop();
  schedule.hide();
  serviceRecord.hide();
  els.loginView.hidden = false;
  els.skip.href = '#login-view';
}

function showConsole(account) {
  me = account;
  renderProfile();
  els.loginView.hidden = true;
  els.profile.hidden = false;
  els.logout.hidden = false;
  els.console.hidden = false;
  els.skip.href = '#console';
  els.console.focus();
  schedule.show(account);
  serviceRecord.show(account);
  live.start(account);
}

client.onLoggedOut(() => {
  showLogin();
  showError(els.loginError, { code: 'session_expired', serverMessage: '' });
});

els.logout.addEventListener('click', async () => {
  // Drafts and the duty choice stay with the person, not the browser tab.
  live.stop({ forget: true });
  await client.logout();
  showLogin();
  byTestId('login-username').focus();
});

onLanguageChange(renderProfile);

startSignedInApp({ app: 'lawyer', client, roles: APP_ROLES, els, onLoggedIn: showConsole, showLogin })
  .then((form) => { login = form; })
  .catch(reportStartFailure);
