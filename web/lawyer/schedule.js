// The lawyer's schedule: weekly availability and date overrides, appointments,
// and the private calendar feed. Shown in <main id="console"> under the
// live-call area.

import { seg } from '/web/shared/api.js';
import { t, currentLanguage, onLanguageChange, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus, timeSelect } from '/web/shared/dom.js';

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const KINDS = ['extra', 'off'];
const STATUS_BADGE = { booked: 'ok', cancelled: 'off', completed: '', no_show: 'wait' };

/** The zone the browser shows times in, e.g. "Asia/Shanghai". */
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/** An instant (RFC 3339) as local date and time, in the current language, with the zone's short name. */
export function formatInstant(iso, lang) {
  const options = {
    weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    hourCycle: 'h23', timeZoneName: 'short',
  };
  try {
    return new Intl.DateTimeFormat(lang, options).format(new Date(iso));
  } catch {
    return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
  }
}

/** Status texts: ok (a key) or an error (from the API). */
function setStatus(el, status) {
  el._status = status;
  renderStatusEl(el);
}

function renderStatusEl(el) {
  const s = el._status;
  el.dataset.kind = s ? s.kind : '';
  if (!s) {
    clearError(el);
    el.hidden = false;
  } else if (s.kind === 'error') {
    showError(el, s.error);
  } else {
    delete el.dataset.errorCode;
    el.hidden = false;
    el.textContent = t(s.key, s.vars);
  }
}

export function setupSchedule(client) {
  const els = {
    weekly: $('availability-weekly'),
    overrides: $('availability-overrides'),
    addWeekly: $('availability-add-weekly'),
    addOverride: $('availability-add-override'),
    form: $('availability-form'),
    zone: $('availability-zone'),
    availabilityStatus: $('availability-status'),
    reload: $('availability-reload'),
    appointmentsBody: $('appointments-body'),
    appointmentsZone: $('appointments-zone'),
    appointmentsStatus: $('appointments-status'),
    appointmentsRefresh: $('appointments-refresh'),
    calendarBox: $('calendar-box'),
    calendarUrl: $('calendar-url'),
    calendarCopy: $('calendar-copy'),
    calendarCreate: $('calendar-create'),
    calendarRevoke: $('calendar-revoke'),
    calendarStatus: $('calendar-status'),
  };

  const fresh = () => ({
    me: null,
    timeZone: null,
    weekly: [],
    overrides: [],
    appointments: [],
    cancelOpenFor: null,
    calendarUrl: null,
  });
  let state = fresh();
  /** Row keys, so that focus survives a re-render. */
  let nextKey = 1;

  // ------------------------------------------------------------ availability

  function readRows() {
    for (const row of els.weekly.querySelectorAll('[data-row]')) {
      const item = state.weekly.find((w) => String(w.key) === row.dataset.row);
      if (!item) continue;
      item.weekday = row.querySelector('[name="weekday"]').value;
      item.start = row.querySelector('[name="start"]').value;
      item.end = row.querySelector('[name="end"]').value;
    }
    for (const row of els.overrides.querySelectorAll('[data-row]')) {
      const item = state.overrides.find((o) => String(o.key) === row.dataset.row);
      if (!item) continue;
      item.date = row.querySelector('[name="date"]').value;
      item.start = row.querySelector('[name="start"]').value;
      item.end = row.querySelector('[name="end"]').value;
      item.kind = row.querySelector('[name="kind"]').value;
    }
  }

  function field(id, labelKey, vars, control) {
    control.id = id;
    return h('div', { className: 'field' }, h('label', { htmlFor: id, textContent: t(labelKey, vars) }), control);
  }

  function weeklyRow(item, index) {
    const k = item.key;
    const n = { n: index + 1 };
    return h('div', { className: 'avail-row', dataset: { row: String(k), testid: `weekly-row-${index}` } },
      field(`weekly-${k}-day`, 'availability.weekday', n,
        h('select', { name: 'weekday', dataset: { testid: `weekly-weekday-${index}` } },
          ...WEEKDAYS.map((d) => h('option', { value: d, textContent: t(`weekday.${d}`), selected: d === item.weekday })))),
      field(`weekly-${k}-start`, 'availability.start', n,
        timeSelect({ name: 'start', dataset: { testid: `weekly-start-${index}` } }, item.start)),
      field(`weekly-${k}-end`, 'availability.end', n,
        timeSelect({ name: 'end', dataset: { testid: `weekly-end-${index}` } }, item.end)),
      h('button', {
        type: 'button', className: 'danger remove', dataset: { testid: `weekly-remove-${index}` },
        textContent: t('availability.remove'),
        attrs: { 'aria-label': t('availability.removeWeeklyLabel', n) },
        onclick: () => removeRow('weekly', k, index),
      }));
  }

  function overrideRow(item, index) {
    const k = item.key;
    const n = { n: index + 1 };
    const date = h('input', { type: 'date', name: 'date', value: item.date, min: '2000-01-01', max: '2100-12-31', required: true,
      dataset: { testid: `override-date-${index}` } });
    return h('div', { className: 'avail-row', dataset: { row: String(k), testid: `override-row-${index}` } },
      field(`override-${k}-date`, 'availability.date', n, date),
      field(`override-${k}-start`, 'availability.start', n,
        timeSelect({ name: 'start', dataset: { testid: `override-start-${index}` } }, item.start)),
      field(`override-${k}-end`, 'availability.end', n,
        timeSelect({ name: 'end', dataset: { testid: `override-end-${index}` } }, item.end)),
      field(`override-${k}-kind`, 'availability.kind', n,
        h('select', { name: 'kind', dataset: { testid: `override-kind-${index}` } },
          ...KINDS.map((kind) => h('option', { value: kind, textContent: t(`availability.kind.${kind}`), selected: kind === item.kind })))),
      h('button', {
        type: 'button', className: 'danger remove', dataset: { testid: `override-remove-${index}` },
        textContent: t('availability.remove'),
        attrs: { 'aria-label': t('availability.removeOverrideLabel', n) },
        onclick: () => removeRow('overrides', k, index),
      }));
  }

  function renderAvailability() {
    keepingFocus(() => {
      const weekly = state.weekly.map(weeklyRow);
      els.weekly.replaceChildren(...(weekly.length ? weekly : [h('p', { className: 'hint empty', textContent: t('availability.noWeekly') })]));
      const overrides = state.overrides.map(overrideRow);
      els.overrides.replaceChildren(...(overrides.length ? overrides : [h('p', { className: 'hint empty', textContent: t('availability.noOverrides') })]));
    });
    els.zone.textContent = state.timeZone ? t('availability.zone', { zone: state.timeZone }) : '';
  }

  function removeRow(list, key, index) {
    readRows();
    state[list] = state[list].filter((item) => item.key !== key);
    renderAvailability();
    const prefix = list === 'weekly' ? 'weekly' : 'override';
    const next = document.querySelector(`[data-testid="${prefix}-remove-${Math.min(index, state[list].length - 1)}"]`);
    (next ?? (list === 'weekly' ? els.addWeekly : els.addOverride)).focus();
  }

  function addWeekly() {
    readRows();
    const last = state.weekly[state.weekly.length - 1];
    const day = last ? WEEKDAYS[(WEEKDAYS.indexOf(last.weekday) + 1) % 7] : 'mon';
    state.weekly.push({ key: nextKey++, weekday: day, start: last?.start ?? '09:00', end: last?.end ?? '17:00' });
    renderAvailability();
    document.querySelector(`[data-testid="weekly-weekday-${state.weekly.length - 1}"]`)?.focus();
  }

  function addOverride() {
    readRows();
    const tomorrow = new Date(Date.now() + 86_400_000);
    const date = `${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, '0')}-${String(tomorrow.getDate()).padStart(2, '0')}`;
    state.overrides.push({ key: nextKey++, date, start: '00:00', end: '24:00', kind: 'off' });
    renderAvailability();
    document.querySelector(`[data-testid="override-date-${state.overrides.length - 1}"]`)?.focus();
  }

  function adopt(body) {
    state.timeZone = body.time_zone ?? state.me?.time_zone ?? null;
    state.weekly = (body.weekly ?? []).map((w) => ({ key: nextKey++, ...w }));
    state.overrides = (body.overrides ?? []).map((o) => ({ key: nextKey++, ...o }));
  }

  async function loadAvailability() {
    try {
      adopt(await client.get(`/api/accounts/${seg(state.me.id)}/availability`));
      setStatus(els.availabilityStatus, null);
    } catch (error) {
      setStatus(els.availabilityStatus, { kind: 'error', error });
    }
    renderAvailability();
  }

  /** The first row whose end is not after its start, or whose date is missing. */
  function firstInvalid() {
    const bad = (item) => !(item.end > item.start);
    const w = state.weekly.findIndex(bad);
    if (w >= 0) return `weekly-end-${w}`;
    const o = state.overrides.findIndex((item) => bad(item) || !/^\d{4}-\d{2}-\d{2}$/.test(item.date));
    if (o >= 0) return state.overrides[o].date ? `override-end-${o}` : `override-date-${o}`;
    return null;
  }

  async function saveAvailability(button) {
    readRows();
    const invalid = firstInvalid();
    if (invalid) {
      setStatus(els.availabilityStatus, { kind: 'error', error: { code: 'time_order', serverMessage: '' } });
      document.querySelector(`[data-testid="${invalid}"]`)?.focus();
      return;
    }
    const body = {
      weekly: state.weekly.map(({ weekday, start, end }) => ({ weekday, start, end })),
      overrides: state.overrides.map(({ date, start, end, kind }) => ({ date, start, end, kind })),
    };
    button.disabled = true;
    try {
      const saved = await client.request('PUT', `/api/accounts/${seg(state.me.id)}/availability`, body);
      if (saved && saved.weekly) adopt(saved);
      renderAvailability();
      setStatus(els.availabilityStatus, { kind: 'ok', key: 'availability.saved' });
    } catch (error) {
      setStatus(els.availabilityStatus, { kind: 'error', error });
    } finally {
      button.disabled = false;
    }
  }

  els.addWeekly.addEventListener('click', addWeekly);
  els.addOverride.addEventListener('click', addOverride);
  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    saveAvailability(els.form.querySelector('[data-testid="availability-save"]'));
  });
  els.reload.addEventListener('click', () => loadAvailability());

  // ------------------------------------------------------------ appointments

  async function loadAppointments() {
    try {
      state.appointments = await client.get('/api/appointments');
    } catch (error) {
      state.appointments = [];
      setStatus(els.appointmentsStatus, { kind: 'error', error });
    }
    renderAppointments();
  }

  function renderAppointments() {
    els.appointmentsZone.textContent = t('appointments.zone', { zone: browserZone() });
    keepingFocus(() => {
      const list = [...state.appointments].sort((a, b) => a.start.localeCompare(b.start));
      const rows = list.map(appointmentRow);
      if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 6, textContent: t('appointments.empty') })));
      els.appointmentsBody.replaceChildren(...rows);
    });
  }

  function appointmentRow(a) {
    const lang = currentLanguage();
    return h('tr', { dataset: { appointmentId: a.id, testid: `appointment-${a.id}`, status: a.status } },
      h('th', { scope: 'row', className: 'nowrap', textContent: formatInstant(a.start, lang), dataset: { testid: `appointment-start-${a.id}` } }),
      h('td', {}, a.channel === 'phone'
        ? h('span', { className: 'phone-number', dataset: { testid: `appointment-phone-${a.id}` }, translate: false, textContent: `☎ ${a.phone ?? ''}`, attrs: { 'aria-label': t('appointments.byPhone', { number: a.phone ?? '' }) } })
        : h('code', { className: 'id', textContent: a.terminal_id, translate: false })),
      h('td', { textContent: t(`language.${a.language}`) }),
      h('td', { textContent: t(`topic.${a.topic}`) }),
      h('td', {}, h('span', {
        className: `badge ${STATUS_BADGE[a.status] ?? ''}`,
        dataset: { testid: `appointment-status-${a.id}` },
        textContent: t(`appointments.status.${a.status}`),
      })),
      h('td', {}, appointmentActions(a)));
  }

  function appointmentActions(a) {
    if (a.status !== 'booked') return h('span', { className: 'hint', textContent: t('appointments.noActions') });
    const when = formatInstant(a.start, currentLanguage());
    if (state.cancelOpenFor === a.id) {
      return h('div', { className: 'confirm', attrs: { role: 'group', 'aria-labelledby': `cancel-q-${a.id}` } },
        h('p', { id: `cancel-q-${a.id}`, className: 'confirm-question', textContent: t('appointments.cancelQuestion', { time: when }) }),
        h('div', { className: 'actions' },
          h('button', {
            type: 'button', className: 'danger primary', dataset: { testid: `appointment-cancel-confirm-${a.id}` },
            textContent: t('appointments.cancelConfirm'),
            onclick: (event) => cancelAppointment(a, event.currentTarget),
          }),
          h('button', {
            type: 'button', dataset: { testid: `appointment-cancel-keep-${a.id}` }, textContent: t('appointments.keep'),
            onclick: () => {
              state.cancelOpenFor = null;
              renderAppointments();
              document.querySelector(`[data-testid="appointment-cancel-${CSS.escape(a.id)}"]`)?.focus();
            },
          })));
    }
    const cancel = h('button', {
      type: 'button', className: 'danger', dataset: { testid: `appointment-cancel-${a.id}` },
      textContent: t('appointments.cancel'),
      attrs: { 'aria-label': t('appointments.cancelLabel', { time: when }) },
      onclick: () => {
        state.cancelOpenFor = a.id;
        renderAppointments();
        document.querySelector(`[data-testid="appointment-cancel-keep-${CSS.escape(a.id)}"]`)?.focus();
      },
    });
    if (a.channel !== 'phone') return cancel;
    return h('div', { className: 'actions' }, callButton(a, when), cancel);
  }

  /** By phone: the lawyer calls the resident (from 15 minutes before) and is rung when they answer. */
  function callButton(a, when) {
    const button = h('button', {
      type: 'button', className: 'primary call-back', dataset: { testid: `appointment-call-${a.id}` },
      textContent: `☎ ${t('appointments.call')}`,
      attrs: { 'aria-label': t('appointments.callLabel', { time: when }) },
    });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const started = await client.request('POST', `/api/appointments/${seg(a.id)}/callback`);
        setStatus(els.appointmentsStatus, { kind: 'ok', key: 'appointments.calling', vars: { number: started.number } });
      } catch (error) {
        setStatus(els.appointmentsStatus, { kind: 'error', error });
      }
      setTimeout(() => { button.disabled = false; }, 10_000);
    });
    return button;
  }

  async function cancelAppointment(a, button) {
    button.disabled = true;
    try {
      const updated = await client.post(`/api/appointments/${seg(a.id)}/cancel`);
      state.appointments = state.appointments.map((x) => (x.id === a.id ? (updated ?? { ...x, status: 'cancelled' }) : x));
      state.cancelOpenFor = null;
      renderAppointments();
      setStatus(els.appointmentsStatus, { kind: 'ok', key: 'appointments.cancelled', vars: { time: formatInstant(a.start, currentLanguage()) } });
      $('appointments-heading').focus();
    } catch (error) {
      setStatus(els.appointmentsStatus, { kind: 'error', error });
      if (document.contains(button)) button.disabled = false;
    }
  }

  els.appointmentsRefresh.addEventListener('click', async () => {
    els.appointmentsRefresh.disabled = true;
    setStatus(els.appointmentsStatus, null);
    await loadAppointments();
    els.appointmentsRefresh.disabled = false;
  });

  // ------------------------------------------------------------ calendar feed

  function renderCalendar() {
    els.calendarBox.hidden = !state.calendarUrl;
    els.calendarUrl.textContent = state.calendarUrl ?? '';
  }

  els.calendarCreate.addEventListener('click', async () => {
    els.calendarCreate.disabled = true;
    try {
      const feed = await client.post('/api/me/calendar');
      state.calendarUrl = new URL(feed.path, window.location.origin).toString();
      renderCalendar();
      setStatus(els.calendarStatus, { kind: 'ok', key: 'calendar.created' });
      els.calendarCopy.focus();
    } catch (error) {
      setStatus(els.calendarStatus, { kind: 'error', error });
    } finally {
      els.calendarCreate.disabled = false;
    }
  });

  els.calendarRevoke.addEventListener('click', async () => {
    els.calendarRevoke.disabled = true;
    try {
      await client.request('DELETE', '/api/me/calendar');
      state.calendarUrl = null;
      renderCalendar();
      setStatus(els.calendarStatus, { kind: 'ok', key: 'calendar.revoked' });
    } catch (error) {
      setStatus(els.calendarStatus, { kind: 'error', error });
    } finally {
      els.calendarRevoke.disabled = false;
    }
  });

  els.calendarCopy.addEventListener('click', async () => {
    if (!state.calendarUrl) return;
    try {
      await navigator.clipboard.writeText(state.calendarUrl);
      setStatus(els.calendarStatus, { kind: 'ok', key: 'calendar.copied' });
    } catch {
      // No clipboard (an insecure origin, say): select the text for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(els.calendarUrl);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      setStatus(els.calendarStatus, { kind: 'ok', key: 'calendar.selected' });
    }
  });

  // ------------------------------------------------------------ lifecycle

  onLanguageChange(() => {
    if (!state.me) return;
    readRows();
    renderAvailability();
    renderAppointments();
    for (const el of [els.availabilityStatus, els.appointmentsStatus, els.calendarStatus]) renderStatusEl(el);
  });

  return {
    show(account) {
      state = fresh();
      state.me = account;
      state.timeZone = account.time_zone;
      renderAvailability();
      renderAppointments();
      renderCalendar();
      loadAvailability();
      loadAppointments();
    },
    hide() {
      state = fresh();
      els.weekly.replaceChildren();
      els.overrides.replaceChildren();
      els.appointmentsBody.replaceChildren();
      for (const el of [els.availabilityStatus, els.appointmentsStatus, els.calendarStatus]) setStatus(el, null);
      renderCalendar();
    },
  };
}
