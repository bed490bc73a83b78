// An on-screen keypad for the kiosk's few typed fields (a phone number, a
// reference code): a touch screen may have no keyboard at all. Each key adds
// its character to the field, the last key takes one away; the field stays
// an ordinary input, so a keyboard works too. Also the reference code's
// alphabet and how it is written.

import { t } from '/web/shared/i18n.js';

const SVG = 'http://www.w3.org/2000/svg';

/** The reference code's characters: no 0/O or 1/I/L to confuse. */
export const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
/** How many characters a reference code has. */
export const CODE_LENGTH = 8;

/**
 * A reference code's characters alone, upper case (what a lookup needs).
 * @param {string} text
 */
export function codeCharacters(text) {
  let out = '';
  for (const c of String(text ?? '').toUpperCase()) {
    if (CODE_ALPHABET.includes(c)) out += c;
  }
  return out;
}

/**
 * A reference code as people write it: `XXXX-XXXX` (up to what is there).
 * @param {string} text
 */
export function formatCode(text) {
  const chars = codeCharacters(text).slice(0, CODE_LENGTH);
  return chars.length > 4 ? `${chars.slice(0, 4)}-${chars.slice(4)}` : chars;
}

/** A backspace mark, drawn in the current colour. */
function deleteIcon() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const outline = document.createElementNS(SVG, 'path');
  outline.setAttribute('d', 'M17 10h25a3 3 0 0 1 3 3v22a3 3 0 0 1-3 3H17L4 24z');
  outline.setAttribute('fill', 'none');
  outline.setAttribute('stroke', 'currentColor');
  outline.setAttribute('stroke-width', '3.5');
  outline.setAttribute('stroke-linejoin', 'round');
  const cross = document.createElementNS(SVG, 'path');
  cross.setAttribute('d', 'M23 17l14 14M37 17L23 31');
  cross.setAttribute('stroke', 'currentColor');
  cross.setAttribute('stroke-width', '3.5');
  cross.setAttribute('stroke-linecap', 'round');
  svg.append(outline, cross);
  return svg;
}

/**
 * Fills `container` with one button per key and a delete key, typing into
 * `input` (which gets an `input` event after each key, as typing would give).
 * Returns render(), which labels the delete key in the current language.
 * @param {HTMLElement} container
 * @param {HTMLInputElement} input
 * @param {object} options
 * @param {string} options.keys the characters, in order
 * @param {string} options.testid each key's data-testid is `<testid>-<key>`, the delete key's `<testid>-delete`
 */
export function keypad(container, input, { keys, testid }) {
  /** @param {(value: string) => string} change */
  const type = (change) => {
    input.value = change(input.value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const buttons = [...keys].map((key) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'key';
    button.dataset.testid = `${testid}-${key}`;
    button.translate = false;
    button.textContent = key;
    button.addEventListener('click', () => type((value) => value + key));
    return button;
  });
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'key key-delete';
  remove.dataset.testid = `${testid}-delete`;
  remove.append(deleteIcon());
  // The dash the field writes by itself goes with the character before it.
  remove.addEventListener('click', () => type((value) => value.replace(/-$/, '').slice(0, -1)));
  container.replaceChildren(...buttons, remove);
  const render = () => {
    const label = t('keypad.delete');
    remove.setAttribute('aria-label', label);
    remove.title = label;
  };
  return { render };
}
