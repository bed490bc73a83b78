// Booking a later time at the kiosk: topic -> day and time -> confirm -> booked.
//
// Slots come from GET /api/appointments/slots for the kiosk's language and
// the chosen topic; times are shown in the kiosk's own clock (it stands in
// the region it serves). reset() forgets everything (the idle reset calls it).

import { t, currentLanguage, describeError } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { topicPicker } from '/web/terminal/topics.js';

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']; // Date.getDay() order
const pad = (n) => String(n).padStart(2, '0');

/** The kiosk's local day ("YYYY-MM-DD") of an instant. */
const localDay = (date) => `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;

/** "Saturday, 28 November" in the kiosk's language, from the string tables. */
export function dateText(date) {
  let monthName = String(date.getMonth() + 1);
  try {
    monthName = new Intl.DateTimeFormat(currentLanguage(), { month: 'long' }).format(date);
  } catch {
    // Keep the number.
  }
  return t('booking.date', {
    weekday: t(`weekday.${WEEKDAYS[date.getDay()]}`),
    month: date.getMonth() + 1,
    monthName,
    day: date.getDate(),
    year: date.getFullYear(),
  });
}

/** "14:30" on the kiosk's clock. */
const clock = (date) => `${pad(date.getHours())}:${pad(date.getMinutes())}`;

/** The time written out in the kiosk's language (e.g. with "ཆུ་ཚོད།" in Tibetan). */
export const timeText = (date) => t('booking.time', { time: clock(date) });

/**
 * Slots by local day, in order.
 * @param {{start: string}[] | null} slots
 */
function daysOf(slots) {
  const days = new Map();
  for (const slot of slots ?? []) {
    const start = new Date(slot.start);
    const day = localDay(start);
    if (!days.has(day)) days.set(day, []);
    days.get(day).push({ ...slot, date: start });
  }
  return days;
}

/**
 * A large button of lines of text (each a span with a class).
 * @param {string} testid
 * @param {string} className
 * @param {[string, string][]} lines class and text
 * @param {() => void} onclick
 * @param {boolean} [pressed] a toggle: pressed or not
 */
function bigButton(testid, className, lines, onclick, pressed) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = className;
  button.dataset.testid = testid;
  if (pressed !== undefined) button.setAttribute('aria-pressed', String(pressed));
  for (const [cls, text] of lines) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    button.append(span);
  }
  button.addEventListener('click', onclick);
  return button;
}

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {(screen: string) => void} options.show shows one screen by name
 */
export function setupBooking({ client, show }) {
  const els = {
    topicGrid: $('topic-grid'),
    chosen: $('slots-chosen'),
    loading: $('slots-loading'),
    empty: $('slots-empty'),
    days: $('slot-days'),
    timesHeading: $('slot-times-heading'),
    times: $('slot-times'),
    confirmDate: $('confirm-date'),
    confirmTime: $('confirm-time'),
    confirmDetails: $('confirm-details'),
    submit: $('booking-submit', HTMLButtonElement),
    error: $('booking-error'),
    errorText: $('booking-error-text'),
    errorBack: $('booking-error-back', HTMLButtonElement),
    doneDate: $('done-date'),
    doneTime: $('done-time'),
    doneDetails: $('done-details'),
    finish: $('booking-finish', HTMLButtonElement),
  };

  const fresh = () => ({ topic: null, slots: null, day: null, slot: null, booked: null, error: null, request: 0 });
  let state = fresh();
  /** Who the topic screen answers: booking (null), or talking now (a callback). */
  let onTopic = null;
  const stepText = $('topic-step');

  const topics = topicPicker(els.topicGrid, (code) => {
    if (onTopic) {
      onTopic(code);
      return;
    }
    state.topic = code;
    state.slot = null;
    state.day = null;
    loadSlots();
  });

  function showTopics() {
    topics.render();
    stepText.textContent = t(onTopic ? 'consult.step1' : 'booking.step1');
    show('bookTopic');
    els.topicGrid.querySelector('button')?.focus();
  }

  function details(topic, language) {
    return t('booking.details', { topic: t(`topic.${topic}`), language: t(`language.${language}`) });
  }

  // ------------------------------------------------------------ slots

  async function loadSlots() {
    const request = ++state.request;
    state.slots = null;
    state.error = null;
    show('bookSlots');
    renderSlots();
    const language = currentLanguage();
    try {
      const slots = await client.get(
        `/api/appointments/slots?language=${encodeURIComponent(language)}&topic=${encodeURIComponent(state.topic)}`);
      if (request !== state.request) return;
      state.slots = (slots ?? []).filter((s) => s.lawyers > 0);
    } catch (error) {
      if (request !== state.request) return;
      state.slots = [];
      state.error = error;
    }
    const days = daysOf(state.slots);
    if (!days.has(state.day)) state.day = days.keys().next().value ?? null;
    renderSlots();
  }

  function renderSlots() {
    els.chosen.textContent = state.topic ? details(state.topic, currentLanguage()) : '';
    const loading = state.slots === null;
    els.loading.hidden = !loading;
    const days = daysOf(state.slots);
    els.empty.hidden = loading || days.size > 0;
    if (!loading && !days.size && state.error) {
      els.empty.querySelector('p').textContent = describeError(state.error).text;
    } else {
      els.empty.querySelector('p').textContent = t('booking.noSlots');
    }
    const today = localDay(new Date());
    const tomorrow = localDay(new Date(Date.now() + 86_400_000));
    els.days.replaceChildren(...[...days.keys()].map((day) => {
      const date = days.get(day)[0].date;
      /** @type {[string, string][]} */
      const lines = [['day-date', dateText(date)]];
      if (day === today) lines.unshift(['day-tag', t('booking.today')]);
      else if (day === tomorrow) lines.unshift(['day-tag', t('booking.tomorrow')]);
      return bigButton(`slot-day-${day}`, 'day-button', lines, () => {
        state.day = day;
        renderSlots();
        els.times.querySelector('button')?.focus();
      }, day === state.day);
    }));
    const chosen = days.get(state.day) ?? [];
    els.timesHeading.textContent = chosen.length ? t('booking.timesFor', { date: dateText(chosen[0].date) }) : '';
    els.times.replaceChildren(...chosen.map((slot) =>
      bigButton(`slot-${slot.start}`, 'time-button', [['time', clock(slot.date)]], () => choose(slot))));
  }

  // ------------------------------------------------------------ confirm

  function choose(slot) {
    state.slot = slot;
    state.error = null;
    renderConfirm();
    show('bookConfirm');
    els.submit.focus();
  }

  function renderConfirm() {
    const slot = state.slot;
    if (!slot) return;
    const date = new Date(slot.start);
    els.confirmDate.textContent = dateText(date);
    els.confirmTime.textContent = timeText(date);
    els.confirmDetails.textContent = details(state.topic, currentLanguage());
    els.error.hidden = !state.error;
    els.submit.hidden = Boolean(state.error);
    if (state.error) {
      const code = state.error.code;
      const key = ['slot_taken', 'terminal_busy', 'no_lawyer_available', 'not_available', 'too_soon', 'in_the_past', 'network']
        .includes(code) ? `booking.error.${code}` : 'booking.error.other';
      els.errorText.textContent = t(key);
      els.error.dataset.errorCode = code || 'unknown';
    } else {
      delete els.error.dataset.errorCode;
    }
  }

  els.submit.addEventListener('click', async () => {
    const slot = state.slot;
    if (!slot) return;
    els.submit.disabled = true;
    try {
      const booked = await client.post('/api/appointments', {
        start: slot.start, language: currentLanguage(), topic: state.topic,
      });
      state.booked = booked;
      renderDone();
      show('bookDone');
      els.finish.focus();
    } catch (error) {
      state.error = error;
      renderConfirm();
      els.errorBack.focus();
    } finally {
      els.submit.disabled = false;
    }
  });

  els.errorBack.addEventListener('click', () => {
    state.slot = null;
    loadSlots();
  });

  // ------------------------------------------------------------ booked

  function renderDone() {
    const b = state.booked;
    if (!b) return;
    const date = new Date(b.start);
    els.doneDate.textContent = dateText(date);
    els.doneTime.textContent = timeText(date);
    els.doneDetails.textContent = details(b.topic, b.language);
  }

  els.finish.addEventListener('click', () => {
    state = fresh();
    show('start');
  });

  // ------------------------------------------------------------ navigation

  for (const button of /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll('.booking-screen [data-back]'))) {
    button.addEventListener('click', () => {
      const to = button.dataset.back;
      if (to === 'start') {
        state = fresh();
        show('start');
      } else if (to === 'topic') {
        state.request += 1;
        onTopic = null;
        showTopics();
      } else if (to === 'slots') {
        state.error = null;
        show('bookSlots');
        renderSlots();
      }
    });
  }

  return {
    /** From the start screen: book a later time, beginning with the topic. */
    begin() {
      state = fresh();
      onTopic = null;
      showTopics();
    },
    /** The topic screen for talking now: onPick(code) gets the choice. */
    chooseTopic(onPick) {
      state = fresh();
      onTopic = onPick;
      showTopics();
    },
    /** Book a later time about a topic already chosen (nobody could talk now). */
    beginWithTopic(topic) {
      state = fresh();
      onTopic = null;
      state.topic = topic;
      loadSlots();
    },
    /** Forget everything of the last person. */
    reset() {
      state = fresh();
      els.days.replaceChildren();
      els.times.replaceChildren();
      els.timesHeading.textContent = '';
      els.chosen.textContent = '';
      for (const el of [els.confirmDate, els.confirmTime, els.confirmDetails, els.doneDate, els.doneTime, els.doneDetails]) {
        el.textContent = '';
      }
      els.error.hidden = true;
      els.submit.hidden = false;
    },
    /** Re-labels what is on screen after a language change. */
    render() {
      topics.render();
      stepText.textContent = t(onTopic ? 'consult.step1' : 'booking.step1');
      if (state.slots !== null || state.topic) renderSlots();
      renderConfirm();
      renderDone();
    },
  };
}
