// One referral opened by a caseworker of its office (GET /api/referrals/{id}):
// what it is, the matter in the lawyer's words, the resident's contact, the
// notes, and what can be done while it is open: accept it, assign it, add a
// note, close it with an outcome (after a confirmation: a closed referral
// cannot be changed).
//
// Assigning: the referral read alone lists its office's caseworkers; the
// caseworker picks one (themselves first and chosen, to take it over from a
// colleague in one click). Accepting assigns the caller when nobody has it.

import { seg } from '/web/shared/api.js';
import { t, formatTime } from '/web/shared/i18n.js';
import { $, h, keepingFocus, byTestId } from '/web/shared/dom.js';
import { formatCode, outcomeText, outcomesFor, overdueBadge, serviceText, statusText } from '/web/coordinator/referral-text.js';

/** The longest note the server takes. */
const NOTE_MAX = 4000;

/** @typedef {import('/web/coordinator/referral-text.js').Referral} Referral */

/**
 * @param {object} options
 * @param {import('/web/shared/api.js').Client} options.client
 * @param {() => {id: string, display_name: string} | null} options.me the caseworker logged in
 * @param {(button: HTMLButtonElement | null, action: () => Promise<void>) => Promise<void>} options.busy
 *   runs an action with its button disabled; errors go to the status area
 * @param {(key: string, vars?: object) => void} options.reportOk
 * @param {(error: unknown) => void} options.reportError
 * @param {() => void} options.onChanged a referral changed (the table and the counts load again)
 * @param {(referral: Referral) => void} options.onClosed the panel was closed (focus goes back to its row)
 */
export function setupReferralDetail({ client, me, busy, reportOk, reportError, onChanged, onClosed }) {
  const els = { section: $('referral-detail') };

  const fresh = () => ({
    /** @type {Referral | null} */
    referral: null,
    /** Whether the full referral (with its notes) has come. */
    loaded: false,
    /** Closing asks to be confirmed. */
    confirmClose: false,
    /** What was typed or chosen but not yet sent, kept over a re-render (a language switch). */
    draft: { note: '', outcome: '', assignee: '' },
  });
  let state = fresh();

  /** @param {string} id */
  const input = (id) => /** @type {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement | null} */ (els.section.querySelector(`#${id}`));

  function keepDraft() {
    const note = input('referral-note');
    const outcome = input('referral-outcome');
    const assignee = input('referral-assignee');
    if (note) state.draft.note = note.value;
    if (outcome) state.draft.outcome = outcome.value;
    if (assignee) state.draft.assignee = assignee.value;
  }

  /**
   * Opens a referral (from its row), or closes it when it is the one open.
   * @param {Referral} referral
   */
  async function open(referral) {
    if (state.referral?.id === referral.id) {
      close();
      return;
    }
    state = fresh();
    state.referral = referral;
    // Nothing typed for another referral comes along.
    els.section.replaceChildren();
    render();
    $('referral-detail-heading')?.focus();
    try {
      await reload(referral.id);
    } catch (error) {
      reportError(error);
    }
  }

  /**
   * The referral again from the server (its notes come only this way).
   * @param {string} id
   */
  async function reload(id) {
    try {
      const full = await client.get(`/api/referrals/${seg(id)}`);
      if (state.referral?.id !== id) return;
      state.referral = full;
      state.loaded = true;
    } catch (error) {
      if (state.referral?.id !== id) return;
      state.loaded = true;
      throw error;
    } finally {
      if (state.referral?.id === id) render();
    }
  }

  function close() {
    const was = state.referral;
    state = fresh();
    render();
    if (was) onClosed(was);
  }

  /**
   * An action on the open referral; the answer replaces it, the table loads again.
   * @param {HTMLButtonElement} button
   * @param {'accept' | 'assign' | 'notes' | 'close'} action
   * @param {object} body
   * @param {string} okKey
   * @param {() => void} [after] once it is done
   */
  function act(button, action, body, okKey, after) {
    const r = state.referral;
    if (!r) return Promise.resolve();
    return busy(button, async () => {
      try {
        const updated = await client.post(`/api/referrals/${seg(r.id)}/${action}`, body);
        if (state.referral?.id !== r.id) return;
        after?.();
        if (updated && Array.isArray(updated.notes)) {
          state.referral = updated;
          render();
        } else {
          await reload(r.id);
        }
        reportOk(okKey, { code: formatCode(r.code) });
      } catch (error) {
        // Someone else may have changed it (closed, say): show what it is now.
        if (state.referral?.id === r.id) await reload(r.id).catch(() => {});
        throw error;
      } finally {
        onChanged();
      }
    });
  }

  /**
   * A fact: a short label over its value.
   * @param {string} labelKey
   * @param {...(Node | string | false | null)} value
   */
  const fact = (labelKey, ...value) => h('div', {}, h('dt', { textContent: t(labelKey) }), h('dd', {}, ...value));

  /** @param {Referral} r */
  function facts(r) {
    const closed = r.status === 'closed';
    const late = Boolean(r.overdue) && !closed;
    return h('dl', { className: 'facts referral-facts' },
      fact('referrals.col.service', serviceText(r.service)),
      fact('referrals.col.office', r.office),
      fact('referrals.col.topic', t(`topic.${r.topic}`)),
      fact('referrals.col.language', t(`language.${r.language}`)),
      fact('referrals.col.status',
        h('span', { dataset: { testid: 'referral-detail-status', status: r.status }, textContent: statusText(r.status) }),
        closed && ` · ${outcomeText(r.outcome)}`),
      fact('referrals.col.assignee',
        h('span', { dataset: { testid: 'referral-detail-assignee' }, textContent: r.assignee ?? t('referrals.unassigned') })),
      fact('referrals.detail.agreed', r.consented_at ? formatTime(r.consented_at) : t('list.none')),
      fact('referrals.col.due', r.due_at ? formatTime(r.due_at) : t('list.none'), late && ' ', late && overdueBadge('referral-detail-overdue')),
      closed && r.closed_at && fact('referrals.detail.closedAt', formatTime(r.closed_at)));
  }

  /** @param {Referral} r */
  function notes(r) {
    const list = r.notes ?? [];
    if (!state.loaded) return h('p', { className: 'hint', textContent: t('referrals.loading') });
    if (!list.length) return h('p', { className: 'hint', dataset: { testid: 'referral-notes-empty' }, textContent: t('referrals.notes.none') });
    return h('ol', { className: 'referral-notes', dataset: { testid: 'referral-notes' } },
      ...list.map((note) => h('li', {},
        h('p', { className: 'note-meta', textContent: t('referrals.notes.meta', { author: note.author, time: formatTime(note.at) }) }),
        h('p', { className: 'note-text', textContent: note.text }))));
  }

  /**
   * Who the referral can be given to: its office's caseworkers but the one who
   * has it, the caller first (labelled so). Before the full referral came,
   * only the caller.
   * @param {Referral} r
   * @returns {{id: string, label: string}[]}
   */
  function assignees(r) {
    const self = me();
    const listed = r.caseworkers ?? (self ? [{ id: self.id, display_name: self.display_name }] : []);
    const choices = listed
      .filter((c) => c.id !== r.assignee_id)
      .map((c) => ({ id: c.id, mine: c.id === self?.id, name: c.display_name }))
      .sort((a, b) => Number(b.mine) - Number(a.mine) || a.name.localeCompare(b.name));
    return choices.map((c) => ({ id: c.id, label: c.mine ? t('referrals.assign.me', { name: c.name }) : c.name }));
  }

  /**
   * Accept, and assigning to a caseworker of the office.
   * @param {Referral} r
   */
  function workActions(r) {
    if (r.status !== 'new' && r.status !== 'accepted') return null;
    const choices = assignees(r);
    const accept = r.status === 'new' && h('div', { className: 'actions referral-actions' },
      h('button', {
        type: 'button', className: 'primary', dataset: { testid: 'referral-accept' }, textContent: t('referrals.accept'),
        onclick: (/** @type {MouseEvent} */ event) => act(/** @type {HTMLButtonElement} */ (event.currentTarget), 'accept', {}, 'referrals.accepted'),
      }));
    if (!choices.length) return accept || null;
    const select = h('select', { id: 'referral-assignee', dataset: { testid: 'referral-assignee' } },
      ...choices.map((c) => h('option', { value: c.id, textContent: c.label })));
    if (choices.some((c) => c.id === state.draft.assignee)) select.value = state.draft.assignee;
    select.addEventListener('change', () => {
      state.draft.assignee = select.value;
    });
    const assign = h('form', {
      className: 'referral-assign-form', noValidate: true,
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const chosen = choices.find((c) => c.id === select.value);
        if (!chosen) return;
        act(/** @type {HTMLButtonElement} */ (event.submitter), 'assign', { account: chosen.id }, 'referrals.assigned', () => {
          state.draft.assignee = '';
        });
      },
    },
    h('div', { className: 'field' },
      h('label', { htmlFor: 'referral-assignee', textContent: t('referrals.assign.label') }),
      select),
    h('div', { className: 'actions' },
      h('button', { type: 'submit', dataset: { testid: 'referral-assign' }, textContent: t('referrals.assign.submit') })));
    return h('div', { className: 'referral-work' }, accept, assign);
  }

  /** @param {Referral} r */
  function noteForm(r) {
    const area = h('textarea', {
      id: 'referral-note', rows: 3, maxLength: NOTE_MAX, value: state.draft.note, dataset: { testid: 'referral-note' },
      attrs: { 'aria-describedby': 'referral-note-hint' },
    });
    return h('form', {
      className: 'referral-note-form', noValidate: true,
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const text = area.value.trim();
        if (!text) {
          area.focus();
          return;
        }
        act(/** @type {HTMLButtonElement} */ (event.submitter), 'notes', { text }, 'referrals.noteAdded', () => {
          state.draft.note = '';
          area.value = '';
        });
      },
    },
    h('div', { className: 'field' },
      h('label', { htmlFor: 'referral-note', textContent: t('referrals.notes.add') }),
      area,
      h('p', { className: 'hint', id: 'referral-note-hint', textContent: t('referrals.notes.hint', { max: NOTE_MAX, code: formatCode(r.code) }) })),
    h('div', { className: 'actions' },
      h('button', { type: 'submit', dataset: { testid: 'referral-note-add' }, textContent: t('referrals.notes.submit') })));
  }

  /** @param {Referral} r */
  function closeForm(r) {
    const code = formatCode(r.code);
    const select = h('select', { id: 'referral-outcome', dataset: { testid: 'referral-outcome' }, attrs: { 'aria-describedby': 'referral-close-hint' } },
      h('option', { value: '', textContent: t('referrals.close.choose') }),
      ...outcomesFor(r.service).map((o) => h('option', { value: o, textContent: outcomeText(o) })));
    select.value = state.draft.outcome;
    select.addEventListener('change', () => {
      select.removeAttribute('aria-invalid');
      state.draft.outcome = select.value;
      if (state.confirmClose) {
        state.confirmClose = false;
        render();
      }
    });
    const confirm = state.confirmClose && select.value
      ? h('div', { className: 'confirm', attrs: { role: 'group', 'aria-labelledby': 'referral-close-question' } },
        h('p', { id: 'referral-close-question', className: 'confirm-question',
          textContent: t('referrals.close.question', { code, outcome: outcomeText(select.value) }) }),
        h('div', { className: 'actions' },
          h('button', { type: 'submit', className: 'danger primary', dataset: { testid: 'referral-close-confirm' }, textContent: t('referrals.close.confirm') }),
          h('button', {
            type: 'button', dataset: { testid: 'referral-close-cancel' }, textContent: t('common.cancel'),
            onclick: () => {
              state.confirmClose = false;
              render();
              byTestId('referral-close')?.focus();
            },
          })))
      : h('div', { className: 'actions' },
        h('button', { type: 'submit', className: 'danger', dataset: { testid: 'referral-close' }, textContent: t('referrals.close.submit') }));
    return h('form', {
      className: 'referral-close-form', noValidate: true,
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        if (!select.value) {
          select.setAttribute('aria-invalid', 'true');
          select.focus();
          return;
        }
        if (!state.confirmClose) {
          state.confirmClose = true;
          render();
          byTestId('referral-close-confirm')?.focus();
          return;
        }
        act(/** @type {HTMLButtonElement} */ (event.submitter), 'close', { outcome: select.value }, 'referrals.closed', () => {
          state.confirmClose = false;
          state.draft.outcome = '';
        });
      },
    },
    h('div', { className: 'field' },
      h('label', { htmlFor: 'referral-outcome', textContent: t('referrals.close.outcome') }),
      select,
      h('p', { className: 'hint', id: 'referral-close-hint', textContent: t('referrals.close.hint') })),
    confirm);
  }

  function render() {
    const r = state.referral;
    els.section.hidden = !r;
    if (!r) {
      els.section.replaceChildren();
      return;
    }
    keepDraft();
    const code = formatCode(r.code);
    const closed = r.status === 'closed';
    const focusedInside = els.section.contains(document.activeElement);
    keepingFocus(() => els.section.replaceChildren(
      h('div', { className: 'section-head' },
        h('h3', { id: 'referral-detail-heading', tabIndex: -1, dataset: { testid: 'referral-detail-heading' },
          textContent: t('referrals.detail.heading', { code }) }),
        h('button', { type: 'button', dataset: { testid: 'referral-detail-back' }, textContent: t('referrals.detail.back'), onclick: close })),
      facts(r),
      h('h4', { textContent: t('referrals.detail.matter') }),
      h('p', { className: 'referral-matter', dataset: { testid: 'referral-matter' }, textContent: r.matter ?? (state.loaded ? t('list.none') : t('referrals.loading')) }),
      h('h4', { textContent: t('referrals.detail.contact') }),
      h('p', { dataset: { testid: 'referral-contact' }, textContent: r.contact || (state.loaded ? t('referrals.detail.noContact') : t('referrals.loading')) }),
      h('h4', { textContent: t('referrals.notes.heading') }),
      notes(r),
      ...(closed
        ? [h('p', { className: 'hint referral-closed-hint', textContent: t('referrals.detail.closedHint') })]
        : [workActions(r), noteForm(r), closeForm(r)].filter((part) => part !== null)),
    ));
    // The control that had the focus went (an action done): the heading takes it.
    if (focusedInside && !els.section.contains(document.activeElement)) $('referral-detail-heading')?.focus();
  }

  return {
    open,
    render,
    /** The referral open, or null. */
    openId: () => state.referral?.id ?? null,
    /** Logged out: nothing stays. */
    reset() {
      state = fresh();
      els.section.hidden = true;
      els.section.replaceChildren();
    },
  };
}
