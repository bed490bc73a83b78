// Appointments by phone: a coordinator books a time for a resident who has no
// kiosk to go to (often after a hotline call); at that time the lawyer calls
// them. Shown only when this server calls residents (`calls_back` in /api/me).

import { t, currentLanguage } from '/web/shared/i18n.js';
import { $, h, keepingFocus } from '/web/shared/dom.js';
import { LANGUAGES, TOPICS } from '/web/shared/codes.js';

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => import('/web/coordinator/regions.js').Region | null} options.region the selected region
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: unknown) => void} options.reportError
 */
export function setupPhoneBooking({ client, region, reportOk, reportError }) {
  const els = {
    card: $('phone-booking'),
    form: $('phone-booking-form', HTMLFormElement),
    language: $('phone-booking-language', HTMLSelectElement),
    topic: $('phone-booking-topic', HTMLSelectElement),
    slot: $('phone-booking-slot', HTMLSelectElement),
    zone: $('phone-booking-zone'),
    number: $('phone-booking-number', HTMLInputElement),
    booked: $('phone-booked'),
  };
  let state = { on: false, slots: null, booked: [], asked: 0 };

  const zone = () => region()?.time_zone ?? 'UTC';
  const format = (iso, options) => {
    try {
      return new Intl.DateTimeFormat(currentLanguage(), { timeZone: zone(), ...options }).format(new Date(iso));
    } catch {
      return iso;
    }
  };
  const day = (iso) => format(iso, { weekday: 'short', month: 'short', day: 'numeric' });
  const time = (iso) => format(iso, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

  function options(select, prefix, codes) {
    const kept = select.value;
    select.replaceChildren(...codes.map((c) => h('option', { value: c, textContent: t(`${prefix}.${c}`) })));
    if (codes.includes(kept)) select.value = kept;
  }

  /** Free times for the chosen language and topic, grouped by the region's days. */
  async function loadSlots() {
    const r = region();
    state.slots = null;
    render();
    if (!state.on || !r) return;
    const asked = ++state.asked;
    const query = new URLSearchParams({ language: els.language.value, topic: els.topic.value, region_id: r.id });
    try {
      const slots = await client.get(`/api/appointments/slots?${query}`);
      if (asked === state.asked) state.slots = slots.filter((s) => s.lawyers > 0);
    } catch (error) {
      if (asked === state.asked) state.slots = [];
      reportError(error);
    }
    render();
  }

  async function loadBooked() {
    const r = region();
    if (!state.on || !r) return;
    try {
      const from = new Date(Date.now() - 3_600_000).toISOString();
      const all = await client.get(`/api/appointments?${new URLSearchParams({ region_id: r.id, from })}`);
      state.booked = all.filter((a) => a.channel === 'phone' && a.status === 'booked');
    } catch (error) {
      state.booked = [];
      reportError(error);
    }
    render();
  }

  function render() {
    if (!state.on) return;
    options(els.language, 'language', LANGUAGES);
    options(els.topic, 'topic', TOPICS);
    els.zone.textContent = t('phoneBooking.zone', { zone: zone() });
    keepingFocus(() => {
      const kept = els.slot.value;
      if (state.slots === null) {
        els.slot.replaceChildren(h('option', { value: '', textContent: t('phoneBooking.loading') }));
      } else if (!state.slots.length) {
        els.slot.replaceChildren(h('option', { value: '', textContent: t('phoneBooking.noSlots') }));
      } else {
        const days = new Map();
        for (const s of state.slots) {
          const label = day(s.start);
          if (!days.has(label)) days.set(label, []);
          days.get(label).push(h('option', { value: s.start, textContent: `${label} ${time(s.start)}` }));
        }
        els.slot.replaceChildren(...[...days].map(([label, opts]) => h('optgroup', { label }, ...opts)));
        if (state.slots.some((s) => s.start === kept)) els.slot.value = kept;
      }
      els.booked.replaceChildren(...(state.booked.length
        ? [...state.booked].sort((a, b) => a.start.localeCompare(b.start)).map((a) => h('li', { dataset: { testid: `phone-booked-${a.id}` } },
          h('span', { className: 'nowrap', textContent: `${day(a.start)} ${time(a.start)}` }), ' · ',
          h('span', { translate: false, textContent: `☎ ${a.phone ?? ''}` }), ' · ',
          h('span', { textContent: `${t(`language.${a.language}`)}, ${t(`topic.${a.topic}`)}` })))
        : [h('li', { className: 'empty', textContent: t('phoneBooking.none') })]));
    });
  }

  els.language.addEventListener('change', loadSlots);
  els.topic.addEventListener('change', loadSlots);
  els.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const number = els.number.value.replace(/[\s-]/g, '');
    if (!/^\+?\d{3,20}$/.test(number)) {
      reportError({ code: 'phone_number', serverMessage: '' });
      els.number.focus();
      return;
    }
    if (!els.slot.value) {
      reportError({ code: 'phone_slot', serverMessage: '' });
      els.slot.focus();
      return;
    }
    const button = /** @type {HTMLButtonElement | null} */ (event.submitter);
    if (button) button.disabled = true;
    try {
      const booked = await client.post('/api/appointments', {
        start: els.slot.value, language: els.language.value, topic: els.topic.value,
        phone: number, region_id: region()?.id,
      });
      els.number.value = '';
      reportOk('phoneBooking.done', { time: `${day(booked.start)} ${time(booked.start)}`, number: booked.phone });
      await Promise.all([loadSlots(), loadBooked()]);
    } catch (error) {
      reportError(error);
    } finally {
      if (button) button.disabled = false;
    }
  });

  return {
    /** Shows the card when this server calls residents. */
    async show() {
      try {
        const me = await client.get('/api/me');
        state.on = Boolean(me?.calls_back);
      } catch {
        state.on = false;
      }
      els.card.hidden = !state.on;
      await Promise.all([loadSlots(), loadBooked()]);
    },
    hide() {
      state = { on: false, slots: null, booked: [], asked: state.asked + 1 };
      els.card.hidden = true;
      els.number.value = '';
      els.slot.replaceChildren();
      els.booked.replaceChildren();
    },
    regionChanged() {
      loadSlots();
      loadBooked();
    },
    render,
  };
}
