// Talking now at the kiosk, the camera and microphone check: the resident
// sees themselves and a sound level, is told what is missing, and asks for a
// lawyer (`consult.request`). The camera and microphone opened here stay open
// for the call.

import { t } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { openCamera, hasLiveTrack, stopTracks } from '/web/shared/call-screen.js';

/**
 * @param {import('/web/terminal/consult.js').Kiosk} kiosk
 */
export function setupCheck(kiosk) {
  const els = {
    video: $('check-video', HTMLVideoElement),
    cameraMissing: $('check-camera-missing'),
    cameraText: $('check-camera-text'),
    cameraState: $('check-camera-state'),
    micState: $('check-mic-state'),
    levelBar: $('check-level-bar'),
    chosen: $('check-chosen'),
    ask: $('consult-now', HTMLButtonElement),
    askError: $('ask-error'),
  };

  /** @type {MediaStream | null} the resident's camera and microphone, for the check and the call */
  let stream = null;
  /** @type {{context: AudioContext, stop: () => void} | null} */
  let meter = null;

  async function start() {
    kiosk.visit.flow = 'check';
    els.ask.disabled = false;
    hideAskError();
    render();
    kiosk.show('check');
    els.ask.focus();
    await openDevices();
    if (kiosk.visit.flow !== 'check') return;
    els.video.srcObject = stream;
    startMeter();
    render();
  }

  /** Camera and microphone; then the microphone alone; then the camera alone; then nothing. */
  async function openDevices() {
    if (stream) return;
    ({ stream } = await openCamera({ videoAlone: true }));
  }

  /** @param {'audio' | 'video'} kind */
  const hasTrack = (kind) => hasLiveTrack(stream, kind);

  function startMeter() {
    stopMeter();
    if (!hasTrack('audio')) return;
    try {
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 512;
      context.createMediaStreamSource(stream).connect(analyser);
      const samples = new Uint8Array(analyser.fftSize);
      let frame = 0;
      const tick = () => {
        analyser.getByteTimeDomainData(samples);
        let peak = 0;
        for (const sample of samples) peak = Math.max(peak, Math.abs(sample - 128));
        els.levelBar.setAttribute('width', String(Math.min(100, Math.round((peak / 128) * 160))));
        frame = requestAnimationFrame(tick);
      };
      tick();
      meter = { context, stop: () => cancelAnimationFrame(frame) };
    } catch {
      meter = null;
    }
  }

  function stopMeter() {
    meter?.stop();
    meter?.context.close().catch(() => {});
    meter = null;
    els.levelBar.setAttribute('width', '0');
  }

  function render() {
    const camera = hasTrack('video');
    const mic = hasTrack('audio');
    const checked = stream !== null || kiosk.visit.flow !== 'check';
    els.cameraState.textContent = t(camera ? 'check.cameraOk' : checked ? 'check.cameraMissing' : 'check.looking');
    els.micState.textContent = t(mic ? 'check.micOk' : checked ? 'check.micMissing' : 'check.looking');
    els.cameraMissing.hidden = camera || !checked;
    els.cameraText.textContent = t('check.cameraMissingHint');
    els.chosen.textContent = kiosk.details();
  }

  /** @param {string} text */
  function showAskError(text) {
    els.askError.textContent = text;
    els.askError.hidden = false;
  }

  function hideAskError() {
    els.askError.textContent = '';
    els.askError.hidden = true;
  }

  els.ask.addEventListener('click', () => {
    const visit = kiosk.visit;
    if (visit.flow !== 'check') return;
    hideAskError();
    if (!kiosk.send({ type: 'consult.request', language: visit.language, topic: visit.topic })) {
      showAskError(t('error.network'));
      return;
    }
    visit.flow = 'asking';
    els.ask.disabled = true;
  });

  $('check-back', HTMLButtonElement).addEventListener('click', () => {
    stopDevices();
    kiosk.begin();
  });

  /** The camera and microphone off, for good. */
  function stopDevices() {
    stopMeter();
    stopTracks(stream);
    stream = null;
    els.video.srcObject = null;
  }

  return {
    start,
    openDevices,
    render,
    stopDevices,
    /** The resident's camera and microphone, or null. */
    stream: () => stream,
    /** Off the check screen (to wait or to talk): the devices stay open. */
    leave() {
      stopMeter();
      els.video.srcObject = null;
    },
    /**
     * The server refused the request: back to the check, saying why.
     * @param {{code: string}} message
     */
    refused(message) {
      kiosk.visit.flow = 'check';
      els.ask.disabled = false;
      showAskError(t(message.code === 'invalid' ? 'ask.error.language' : 'ask.error.other'));
    },
    /** Forgets the last resident's check. */
    reset() {
      hideAskError();
      els.ask.disabled = false;
      els.chosen.textContent = '';
    },
  };
}
