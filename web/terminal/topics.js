// The topic picker of the kiosk: one large button per topic, with an icon
// and a label (data-testid "topic-<code>"). Used by the booking flow; a topic
// step on the start screen would use the same component.

import { t } from '/web/shared/i18n.js';
import { TOPICS } from '/web/shared/codes.js';

const SVG = 'http://www.w3.org/2000/svg';

/** Simple line icons, 48x48, drawn in the current colour. */
const ICONS = {
  land: '<path d="M3 40l13-18 9 11 6-7 14 14z" fill="none" stroke="currentColor" stroke-width="3" stroke-linejoin="round"/><circle cx="36" cy="12" r="5" fill="none" stroke="currentColor" stroke-width="3"/>',
  family: '<circle cx="15" cy="13" r="5" fill="none" stroke="currentColor" stroke-width="3"/><circle cx="33" cy="13" r="5" fill="none" stroke="currentColor" stroke-width="3"/><circle cx="24" cy="27" r="4" fill="none" stroke="currentColor" stroke-width="3"/><path d="M5 40c0-9 4-15 10-15s8 3 8 3M43 40c0-9-4-15-10-15s-8 3-8 3M17 44c0-6 3-9 7-9s7 3 7 9" fill="none" stroke="currentColor" stroke-width="3" stroke-linecap="round"/>',
  labour: '<path d="M9 26a15 15 0 0 1 30 0z" fill="none" stroke="currentColor" stroke-width="3" stroke-linejoin="round"/><path d="M5 26h38v5H5zM24 11v-4M19 12l-1-4M29 12l1-4" fill="none" stroke="currentColor" stroke-width="3" stroke-linejoin="round" stroke-linecap="round"/><path d="M14 36h20M18 42h12" stroke="currentColor" stroke-width="3" stroke-linecap="round"/>',
  debt: '<ellipse cx="20" cy="14" rx="13" ry="5" fill="none" stroke="currentColor" stroke-width="3"/><path d="M7 14v8c0 3 6 5 13 5s13-2 13-5v-8M7 22v8c0 3 6 5 13 5" fill="none" stroke="currentColor" stroke-width="3"/><circle cx="34" cy="34" r="10" fill="none" stroke="currentColor" stroke-width="3"/><path d="M30 29l4 5 4-5M34 34v7M30 36h8" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round"/>',
  administrative: '<path d="M4 18L24 6l20 12z" fill="none" stroke="currentColor" stroke-width="3" stroke-linejoin="round"/><path d="M10 22v14M19 22v14M29 22v14M38 22v14M4 42h40M7 38h34" stroke="currentColor" stroke-width="3" stroke-linecap="round"/>',
  criminal: '<path d="M24 4l17 6v12c0 11-7 18-17 22C14 40 7 33 7 22V10z" fill="none" stroke="currentColor" stroke-width="3" stroke-linejoin="round"/><path d="M17 24l5 5 9-10" fill="none" stroke="currentColor" stroke-width="3.5" stroke-linecap="round" stroke-linejoin="round"/>',
  other: '<circle cx="24" cy="24" r="19" fill="none" stroke="currentColor" stroke-width="3"/><path d="M18 18a6 6 0 1 1 8 6c-2 1-2 2-2 5" fill="none" stroke="currentColor" stroke-width="3.5" stroke-linecap="round"/><circle cx="24" cy="35" r="2.5" fill="currentColor"/>',
};

function icon(code) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('class', 'icon topic-icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  // The markup is our own constant above, never data.
  svg.innerHTML = ICONS[code] ?? ICONS.other;
  return svg;
}

/**
 * Fills a container with one button per topic; onPick(code) on a press.
 * Returns render(), which re-labels the buttons (after a language change).
 */
export function topicPicker(container, onPick) {
  const buttons = TOPICS.map((code) => {
    const label = document.createElement('span');
    label.className = 'topic-label';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'topic-button';
    button.dataset.testid = `topic-${code}`;
    button.dataset.topic = code;
    button.append(icon(code), label);
    button.addEventListener('click', () => onPick(code));
    return { button, label, code };
  });
  container.replaceChildren(...buttons.map((b) => b.button));
  const render = () => {
    for (const { label, code } of buttons) label.textContent = t(`topic.${code}`);
  };
  // Labelled by render(), once the strings are loaded.
  return { render };
}
