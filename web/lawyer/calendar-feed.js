// The lawyer's private calendar feed: a secret address of their appointments
// for a calendar app (POST and DELETE /api/me/calendar), shown once, to copy.

import { $ } from '/web/shared/dom.js';
import { StatusLine } from '/web/lawyer/status-line.js';

/**
 * @param {import('/web/shared/api.js').Client} client
 */
export function setupCalendarFeed(client) {
  const els = {
    box: $('calendar-box'),
    url: $('calendar-url'),
    copy: $('calendar-copy', HTMLButtonElement),
    create: $('calendar-create', HTMLButtonElement),
    revoke: $('calendar-revoke', HTMLButtonElement),
  };
  const status = new StatusLine($('calendar-status'));

  /** @type {string | null} the feed's address, only known right after it was made */
  let calendarUrl = null;

  function renderCalendar() {
    els.box.hidden = !calendarUrl;
    els.url.textContent = calendarUrl ?? '';
  }

  els.create.addEventListener('click', async () => {
    els.create.disabled = true;
    try {
      const feed = await client.post('/api/me/calendar');
      calendarUrl = new URL(feed.path, window.location.origin).toString();
      renderCalendar();
      status.set({ kind: 'ok', key: 'calendar.created' });
      els.copy.focus();
    } catch (error) {
      status.set({ kind: 'error', error });
    } finally {
      els.create.disabled = false;
    }
  });

  els.revoke.addEventListener('click', async () => {
    els.revoke.disabled = true;
    try {
      await client.request('DELETE', '/api/me/calendar');
      calendarUrl = null;
      renderCalendar();
      status.set({ kind: 'ok', key: 'calendar.revoked' });
    } catch (error) {
      status.set({ kind: 'error', error });
    } finally {
      els.revoke.disabled = false;
    }
  });

  els.copy.addEventListener('click', async () => {
    if (!calendarUrl) return;
    try {
      await navigator.clipboard.writeText(calendarUrl);
      status.set({ kind: 'ok', key: 'calendar.copied' });
    } catch {
      // No clipboard (an insecure origin, say): select the text for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(els.url);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      status.set({ kind: 'ok', key: 'calendar.selected' });
    }
  });

  return {
    status,
    /** Logged in: no address shown (it is only known right after it was made). */
    show() {
      calendarUrl = null;
      renderCalendar();
    },
    /** Logged out: nothing of it stays. */
    hide() {
      calendarUrl = null;
      renderCalendar();
      status.set(null);
    },
  };
}
