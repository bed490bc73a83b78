// How an incoming call makes itself noticed in the lawyer's console: a ring
// (Web Audio) and the window's title flashing.

import { t } from '/web/shared/i18n.js';

/**
 * A telephone ring made with the Web Audio API: two bursts of 440 + 480 Hz
 * every three seconds. Browsers start an AudioContext only after a user
 * gesture, so `unlock()` is called from clicks and key presses.
 */
export class Ringer {
  constructor() {
    this.context = null;
    this.timer = null;
    this.output = null;
  }

  unlock() {
    try {
      if (!this.context) {
        // Older Safari has only the prefixed one, which the DOM typings do not know.
        const Context = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
        if (!Context) return;
        this.context = new Context();
      }
      if (this.context.state === 'suspended') this.context.resume().catch(() => {});
    } catch {
      this.context = null;
    }
  }

  /** True when a ring can be heard (the context exists and runs). */
  get audible() {
    return Boolean(this.context && this.context.state === 'running');
  }

  start() {
    if (this.timer) return;
    this.ring();
    this.timer = setInterval(() => this.ring(), 3000);
  }

  ring() {
    const context = this.context;
    if (!context || context.state !== 'running') return;
    const output = context.createGain();
    output.gain.value = 0.18;
    output.connect(context.destination);
    this.output?.disconnect();
    this.output = output;
    const begin = context.currentTime + 0.02;
    for (const offset of [0, 0.55]) {
      const envelope = context.createGain();
      envelope.gain.setValueAtTime(0, begin + offset);
      envelope.gain.linearRampToValueAtTime(1, begin + offset + 0.03);
      envelope.gain.setValueAtTime(1, begin + offset + 0.4);
      envelope.gain.linearRampToValueAtTime(0, begin + offset + 0.45);
      envelope.connect(output);
      for (const frequency of [440, 480]) {
        const tone = context.createOscillator();
        tone.frequency.value = frequency;
        tone.connect(envelope);
        tone.start(begin + offset);
        tone.stop(begin + offset + 0.46);
      }
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.output?.disconnect();
    this.output = null;
  }
}

/** Flashes the window's title while a call rings (for a lawyer in another tab). */
export class TitleFlash {
  constructor() {
    this.timer = null;
    this.on = false;
  }

  start() {
    if (this.timer) return;
    const flip = () => {
      this.on = !this.on;
      document.title = this.on ? t('live.ringTitle') : t('page.title');
    };
    flip();
    this.timer = setInterval(flip, 1000);
  }

  stop() {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    this.on = false;
    document.title = t('page.title');
  }
}
