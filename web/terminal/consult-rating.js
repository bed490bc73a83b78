// Talking now at the kiosk, after the call: how was it? Five faces
// (`consult.rate`), then thanks for a few seconds, then the start screen.

import { t } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';

const SVG = 'http://www.w3.org/2000/svg';
/** After the rating, how long the thanks stay before the start screen. */
const THANKS_MS = 6_000;

/** Five faces, from very unhappy to very happy: mouth curve and colour class. */
const FACES = [
  { mouth: 'M15 35q9-8 18 0', brows: true },
  { mouth: 'M15 34q9-5 18 0' },
  { mouth: 'M15 32h18' },
  { mouth: 'M15 30q9 6 18 0' },
  { mouth: 'M13 29q11 11 22 0', open: true },
];

/** @param {number} index */
function faceIcon(index) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('class', 'icon face-icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const face = FACES[index];
  /** @type {[string, Record<string, string | number>][]} */
  const parts = [
    ['circle', { cx: 24, cy: 24, r: 21, class: 'face-skin' }],
    ['circle', { cx: 17, cy: 19, r: 2.8, class: 'face-ink' }],
    ['circle', { cx: 31, cy: 19, r: 2.8, class: 'face-ink' }],
    ['path', { d: face.mouth, class: face.open ? 'face-ink' : 'face-line' }],
  ];
  if (face.brows) parts.push(['path', { d: 'M12 13l8 3M36 13l-8 3', class: 'face-line' }]);
  for (const [name, attrs] of parts) {
    const el = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
    svg.append(el);
  }
  return svg;
}

/**
 * @param {import('/web/terminal/consult.js').Kiosk} kiosk
 */
export function setupRating(kiosk) {
  const els = {
    faces: $('faces'),
    note: $('rating-note'),
    thanks: $('rating-thanks'),
    done: $('rating-done', HTMLButtonElement),
  };

  const fresh = () => ({
    rated: false,
    /** @type {string | null} a note above the faces (the call was lost) */
    note: null,
  });
  let state = fresh();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let thanksTimer;

  const faceButtons = FACES.map((_, index) => {
    const rating = index + 1;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = `face face-${rating}`;
    button.dataset.testid = `rate-${rating}`;
    const label = document.createElement('span');
    label.className = 'face-label';
    button.append(faceIcon(index), label);
    button.addEventListener('click', () => rate(rating));
    els.faces.append(button);
    return { button, label, rating };
  });

  /** @param {string | null} note */
  function show(note) {
    kiosk.visit.flow = 'rating';
    state.rated = false;
    state.note = note;
    els.faces.hidden = false;
    els.thanks.hidden = true;
    for (const { button } of faceButtons) button.disabled = false;
    render();
    kiosk.show('rating');
    faceButtons[4].button.focus();
  }

  function render() {
    for (const { label, rating } of faceButtons) label.textContent = t(`rating.${rating}`);
    const note = kiosk.visit.flow === 'rating' && !state.rated ? state.note : null;
    els.note.hidden = !note;
    els.note.textContent = note ? t(note) : '';
  }

  /** @param {number} rating */
  function rate(rating) {
    if (kiosk.visit.flow !== 'rating' || state.rated) return;
    state.rated = true;
    for (const { button } of faceButtons) button.disabled = true;
    if (!kiosk.send({ type: 'consult.rate', consultation: kiosk.visit.consultation, rating })) thanks();
  }

  function thanks() {
    if (kiosk.visit.flow !== 'rating') return;
    els.faces.hidden = true;
    state.rated = true;
    render();
    els.thanks.hidden = false;
    clearTimeout(thanksTimer);
    // A referral on screen keeps the resident here; closing it ends the visit.
    thanksTimer = setTimeout(() => {
      if (!kiosk.referral.open()) kiosk.finish();
    }, THANKS_MS);
  }

  els.done.addEventListener('click', () => kiosk.finish());

  return {
    show,
    render,
    thanks,
    /** Whether the resident has rated (or may no longer). */
    rated: () => state.rated,
    /** Forgets the last resident's rating. */
    reset() {
      clearTimeout(thanksTimer);
      state = fresh();
      els.note.textContent = '';
    },
  };
}
