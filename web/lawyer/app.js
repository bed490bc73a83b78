// The lawyer and interpreter console: login, who is logged in, logout, and
// the schedule (schedule.js) in <main id="console"> (see index.html).

import { createClient } from '/web/shared/api.js';
import { onLanguageChange, showError } from '/web/shared/i18n.js';
import { startSignedInApp, reportStartFailure } from '/web/shared/session.js';
import { listOf } from '/web/shared/codes.js';
import { setupSchedule } from '/web/lawyer/schedule.js';

const client = createClient('lawyer');
const APP_ROLES = ['lawyer', 'interpreter'];

const $ = (id) => document.getElementById(id);
const els = {
  loginView: $('login-view'),
  loginForm: $('login-form'),
  loginError: document.querySelector('[data-testid="login-error"]'),
  console: $('console'),
  profile: $('profile'),
  name: $('profile-name'),
  languages: $('profile-languages'),
  topics: $('profile-topics'),
  logout: $('logout'),
  skip: $('skip-link'),
};

let me = null;
let login = null;
const schedule = setupSchedule(client);

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
  schedule.hide();
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
}

client.onLoggedOut(() => {
  showLogin();
  showError(els.loginError, { code: 'session_expired', serverMessage: '' });
});

els.logout.addEventListener('click', async () => {
  await client.logout();
  showLogin();
  document.querySelector('[data-testid="login-username"]').focus();
});

onLanguageChange(renderProfile);

startSignedInApp({ app: 'lawyer', client, roles: APP_ROLES, els, onLoggedIn: showConsole, showLogin })
  .then((form) => { login = form; })
  .catch(reportStartFailure);
