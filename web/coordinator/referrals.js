// Referrals to the receiving offices (legal aid, mediation, ...): per office
// the counts (GET /api/referrals/summary), a filter (open, closed, all) and
// the table of referrals (GET /api/referrals?status=), oldest due first, the
// overdue ones marked by a sign, a word and colour. Caseworkers open one
// (referral-detail.js) to read the matter and the resident's contact and to
// act on it; coordinators and admins see the same table without the matter
// and the contact (the server sends none) and without actions.

import { t, formatTime } from '/web/shared/i18n.js';
import { $, h, keepingFocus, byTestId } from '/web/shared/dom.js';
import { setupReferralDetail } from '/web/coordinator/referral-detail.js';
import { formatCode, outcomeText, overdueBadge, serviceText, statusText } from '/web/coordinator/referral-text.js';

/**
 * @typedef {import('/web/coordinator/referral-text.js').Referral} Referral
 * @typedef {import('/web/coordinator/referral-text.js').OfficeSummary} OfficeSummary
 */

/** How often the open section asks again, in ms (residents agree at any time). */
const REFRESH_MS = 60_000;
const FILTERS = ['open', 'closed', 'all'];

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => {id: string, display_name: string, roles: string[]} | null} options.me the account logged in
 * @param {() => boolean} options.isCaseworker whether the account works referrals (and opens them)
 * @param {(button: HTMLButtonElement | null, action: () => Promise<void>) => Promise<void>} options.busy
 *   runs an action with its button disabled; errors go to the status area
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: unknown) => void} options.reportError
 */
export function setupReferrals({ client, me, isCaseworker, busy, reportOk, reportError }) {
  const els = {
    section: $('referrals'),
    refresh: $('referrals-refresh', HTMLButtonElement),
    introCaseworker: $('referrals-intro-caseworker'),
    introManager: $('referrals-intro-manager'),
    summaryBody: $('referrals-summary-body'),
    filter: $('referrals-filter', HTMLSelectElement),
    head: $('referrals-head'),
    body: $('referrals-body'),
    loaded: $('referrals-updated'),
  };

  const fresh = () => ({
    active: false,
    /** @type {OfficeSummary[] | null} null while it loads */
    summary: null,
    /** @type {Referral[] | null} null while they load */
    referrals: null,
    /** @type {number | null} unix seconds of the last answer */
    loadedAt: null,
  });
  let state = fresh();
  /** @type {ReturnType<typeof setInterval> | null} */
  let ticker = null;

  const detail = setupReferralDetail({
    client,
    me,
    busy,
    reportOk,
    reportError,
    onChanged: () => load(),
    onClosed: (referral) => {
      renderTable();
      byTestId(`referral-open-${referral.id}`)?.focus();
    },
  });

  const filter = () => (FILTERS.includes(els.filter.value) ? els.filter.value : 'open');

  async function load() {
    const session = state;
    const asked = filter();
    try {
      const [summary, referrals] = await Promise.all([
        client.get('/api/referrals/summary'),
        client.get(`/api/referrals?status=${encodeURIComponent(asked)}`),
      ]);
      if (session !== state || asked !== filter()) return;
      state.summary = Array.isArray(summary) ? summary : [];
      state.referrals = Array.isArray(referrals) ? referrals : [];
      state.loadedAt = Date.now() / 1000;
    } catch (error) {
      if (session !== state) return;
      state.summary ??= [];
      state.referrals ??= [];
      reportError(error);
    }
    renderLists();
  }

  // ------------------------------------------------------------ drawing

  function renderSummary() {
    // In the server's order: by region, then service.
    const list = state.summary ?? [];
    /**
     * @param {OfficeSummary} s
     * @param {'new' | 'accepted' | 'overdue' | 'closed'} field
     */
    const count = (s, field) => {
      const n = Number(s[field]) || 0;
      const late = field === 'overdue' && n > 0;
      return h('td', { className: `num${late ? ' overdue-count' : ''}`, dataset: { count: field } },
        late && h('span', { attrs: { 'aria-hidden': 'true' }, textContent: '⚠ ' }), String(n));
    };
    const rows = list.map((s) => h('tr', { dataset: { testid: `referrals-summary-${s.office_id}`, service: s.service, officeId: s.office_id } },
      h('th', { scope: 'row', textContent: s.office }),
      h('td', { textContent: serviceText(s.service) }),
      count(s, 'new'), count(s, 'accepted'), count(s, 'overdue'), count(s, 'closed')));
    if (!rows.length) {
      const key = state.summary === null ? 'referrals.loading' : isCaseworker() && !manager() ? 'referrals.noOfficesCaseworker' : 'referrals.noOffices';
      rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 6, textContent: t(key) })));
    }
    els.summaryBody.replaceChildren(...rows);
  }

  const manager = () => Boolean(me()?.roles?.some((r) => r === 'coordinator' || r === 'admin'));
  /** Caseworkers open referrals; coordinators and admins only see the table. */
  const opens = () => isCaseworker();

  function renderHead() {
    const keys = ['referrals.col.code', 'referrals.col.service', 'referrals.col.office', 'referrals.col.topic',
      'referrals.col.language', 'referrals.col.status', 'referrals.col.assignee', 'referrals.col.due'];
    if (opens()) keys.push('referrals.col.actions');
    els.head.replaceChildren(h('tr', {}, ...keys.map((key) => h('th', { scope: 'col', textContent: t(key) }))));
  }

  /** @param {Referral} r */
  function referralRow(r) {
    const code = r.code ? formatCode(r.code) : t('list.none');
    const late = Boolean(r.overdue) && r.status !== 'closed';
    const open = detail.openId() === r.id;
    const status = [h('span', { className: `badge status-${r.status}`, textContent: statusText(r.status) })];
    if (r.status === 'closed' && r.outcome) status.push(h('span', { className: 'block-line', textContent: outcomeText(r.outcome) }));
    return h('tr', {
      className: [late ? 'overdue' : '', open ? 'is-open' : ''].filter(Boolean).join(' '),
      dataset: { testid: `referral-row-${r.code ?? r.id}`, referralId: r.id, status: r.status, overdue: String(late) },
    },
    h('th', { scope: 'row', className: 'nowrap' }, h('code', { className: 'referral-code', translate: false, textContent: code })),
    h('td', { className: 'nowrap', textContent: serviceText(r.service) }),
    h('td', { textContent: r.office }),
    h('td', { className: 'nowrap', textContent: t(`topic.${r.topic}`) }),
    h('td', { className: 'nowrap', textContent: t(`language.${r.language}`) }),
    h('td', { className: 'nowrap', dataset: { testid: `referral-status-${r.id}` } }, ...status),
    h('td', { className: r.assignee ? '' : 'muted', textContent: r.assignee ?? t('referrals.unassigned') }),
    h('td', { className: 'nowrap', dataset: { testid: `referral-due-${r.id}` } },
      r.due_at ? h('span', { className: 'block-line', textContent: formatTime(r.due_at) }) : t('list.none'),
      late && overdueBadge(`referral-overdue-${r.id}`)),
    opens() && h('td', {},
      // Its office's caseworkers get the matter; a referral seen only as a coordinator has nothing more to open.
      r.matter !== null && h('button', {
        type: 'button',
        dataset: { testid: `referral-open-${r.id}` },
        textContent: t('referrals.open'),
        attrs: { 'aria-label': t('referrals.openLabel', { code }), 'aria-expanded': String(open), 'aria-controls': 'referral-detail' },
        onclick: () => {
          detail.open(r);
          renderTable();
        },
      })));
  }

  function renderTable() {
    keepingFocus(() => {
      renderHead();
      const rows = (state.referrals ?? []).map(referralRow);
      if (!rows.length) {
        const key = state.referrals === null ? 'referrals.loading' : `referrals.empty.${filter()}`;
        rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: opens() ? 9 : 8, textContent: t(key) })));
      }
      els.body.replaceChildren(...rows);
    });
  }

  /** The counts and the table (what a load changes; the open referral stays as it is, with what is typed in it). */
  function renderLists() {
    if (!state.active) return;
    els.introCaseworker.hidden = !opens();
    els.introManager.hidden = opens();
    keepingFocus(renderSummary);
    renderTable();
    els.loaded.textContent = state.loadedAt ? t('referrals.updated', { time: formatTime(state.loadedAt) }) : '';
  }

  /** Everything, the open referral too (a language switch). */
  function render() {
    renderLists();
    if (state.active) detail.render();
  }

  els.filter.addEventListener('change', () => {
    state.referrals = null;
    renderTable();
    load();
  });

  els.refresh.addEventListener('click', () => busy(els.refresh, load));

  return {
    show() {
      state.active = true;
      els.section.hidden = false;
      render();
      load();
      if (!ticker) {
        ticker = setInterval(() => {
          if (state.active && document.visibilityState === 'visible') load();
        }, REFRESH_MS);
      }
    },
    hide() {
      if (ticker) clearInterval(ticker);
      ticker = null;
      state = fresh();
      els.section.hidden = true;
      els.filter.value = 'open';
      els.summaryBody.replaceChildren();
      els.head.replaceChildren();
      els.body.replaceChildren();
      els.loaded.textContent = '';
      detail.reset();
    },
    render,
  };
}
