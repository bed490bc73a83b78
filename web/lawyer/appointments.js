// The lawyer's appointments (GET /api/appointments): when, where (a kiosk,
// or a telephone number for the hotline), language, topic and status; a
// booked one can be cancelled (after a confirmation), and one by phone can be
// called (from 15 minutes before).

import { seg } from '/web/shared/api.js';
import { t, currentLanguage } from '/web/shared/i18n.js';
import { $, h, keepingFocus, byTestId } from '/web/shared/dom.js';
import { StatusLine } from '/web/lawyer/status-line.js';

const STATUS_BADGE = { booked: 'ok', cancelled: 'off', completed: '', no_show: 'wait' };

/** The zone the browser shows times in, e.g. "Asia/Shanghai". */
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/**
 * An instant (RFC 3339) as local date and time, in the current language, with the zone's short name.
 * @param {string} iso
 * @param {string} lang
 */
export function formatInstant(iso, lang) {
  /** @type {Intl.DateTimeFormatOptions} */
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

/**
 * @typedef {{id: string, start: string, status: string, channel?: string, phone?: string | null,
 *   terminal_id?: string, language: string, topic: string}} Appointment
 */

/**
 * @param {import('/web/shared/api.js').Client} client
 */
export function setupAppointments(client) {
  const els = {
    body: $('appointments-body'),
    zone: $('appointments-zone'),
    refresh: $('appointments-refresh', HTMLButtonElement),
  };
  const status = new StatusLine($('appointments-status'));

  const fresh = () => ({
    /** @type {Appointment[]} */
    appointments: [],
    /** @type {string | null} the appointment whose cancellation asks to be confirmed */
    cancelOpenFor: null,
  });
  let state = fresh();

  async function loadAppointments() {
    try {
      state.appointments = await client.get('/api/appointments');
    } catch (error) {
      state.appointments = [];
      status.set({ kind: 'error', error });
    }
    renderAppointments();
  }

  function renderAppointments() {
    els.zone.textContent = t('appointments.zone', { zone: browserZone() });
    keepingFocus(() => {
      const list = [...state.appointments].sort((a, b) => a.start.localeCompare(b.start));
      const rows = list.map(appointmentRow);
      if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 6, textContent: t('appointments.empty') })));
      els.body.replaceChildren(...rows);
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
              byTestId(`appointment-cancel-${a.id}`)?.focus();
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
        byTestId(`appointment-cancel-keep-${a.id}`)?.focus();
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
        status.set({ kind: 'ok', key: 'appointments.calling', vars: { number: started.number } });
      } catch (error) {
        status.set({ kind: 'error', error });
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
      status.set({ kind: 'ok', key: 'appointments.cancelled', vars: { time: formatInstant(a.start, currentLanguage()) } });
      $('appointments-heading').focus();
    } catch (error) {
      status.set({ kind: 'error', error });
      if (document.contains(button)) button.disabled = false;
    }
  }

  els.refresh.addEventListener('click', async () => {
    els.refresh.disabled = true;
    status.set(null);
    await loadAppointments();
    els.refresh.disabled = false;
  });

  return {
    load: loadAppointments,
    render: renderAppointments,
    status,
    /** Logged in: none until they arrive. */
    show() {
      state = fresh();
      renderAppointments();
    },
    /** Logged out: nothing of them stays. */
    hide() {
      state = fresh();
      els.body.replaceChildren();
      status.set(null);
    },
  };
}
