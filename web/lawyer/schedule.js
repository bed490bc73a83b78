// The lawyer's schedule, shown in <main id="console"> under the live-call
// area: weekly availability and date overrides (availability.js),
// appointments (appointments.js), and the private calendar feed
// (calendar-feed.js).

import { onLanguageChange } from '/web/shared/i18n.js';
import { setupAvailability } from '/web/lawyer/availability.js';
import { setupAppointments } from '/web/lawyer/appointments.js';
import { setupCalendarFeed } from '/web/lawyer/calendar-feed.js';

/**
 * @param {import('/web/shared/api.js').Client} client
 */
export function setupSchedule(client) {
  /** @type {{id: string, time_zone?: string} | null} */
  let me = null;
  const availability = setupAvailability(client, () => me);
  const appointments = setupAppointments(client);
  const calendar = setupCalendarFeed(client);

  onLanguageChange(() => {
    if (!me) return;
    availability.render();
    appointments.render();
    for (const part of [availability, appointments, calendar]) part.status.render();
  });

  return {
    /** @param {{id: string, time_zone?: string}} account */
    show(account) {
      me = account;
      availability.show(account.time_zone);
      appointments.show();
      calendar.show();
      availability.load();
      appointments.load();
    },
    /** An appointment was booked elsewhere on the page (a follow-up): the list is read again. */
    appointmentsChanged() {
      if (me) appointments.load();
    },
    hide() {
      me = null;
      availability.hide();
      appointments.hide();
      calendar.hide();
    },
  };
}
