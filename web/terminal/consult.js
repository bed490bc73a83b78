// Talking to a lawyer now, at the kiosk: topic (the shared topic screen) ->
// camera and microphone check -> waiting (place, estimate, cancel; booking
// when nobody is on duty) -> the call (the lawyer large, the resident small,
// network quality, audio only, hang up) -> rating with faces.
//
// The kiosk keeps one live connection (PROTOCOL.md, "The live path") while it
// is enrolled, for its requests and for appointments that start. After a
// reconnection the server says again what is in progress (consult.queued or
// consult.started with a fresh room token); a request it forgot is asked again.

import { t, currentLanguage, setLanguage } from '/web/shared/i18n.js';
import { keepLive } from '/web/shared/live.js';
import { RelayCall } from '/web/shared/call.js';
import { $ } from '/web/shared/dom.js';
import { timeText } from '/web/terminal/booking.js';

const SVG = 'http://www.w3.org/2000/svg';
/** After a reconnection, how long the server has to say what is in progress. */
const RESUME_WAIT_MS = 6_000;
/** After the rating, how long the thanks stay before the start screen. */
const THANKS_MS = 6_000;
/** How often the call's network quality is measured. */
const STATS_EVERY_MS = 2_000;

/** Numbers in the resident's script (Tibetan digits in Tibetan). */
export function digits(value) {
  const text = String(value);
  if (currentLanguage() !== 'bo') return text;
  return text.replace(/[0-9]/g, (d) => String.fromCharCode(0x0f20 + Number(d)));
}

/** Five faces, from very unhappy to very happy: mouth curve and colour class. */
const FACES = [
  { mouth: 'M15 35q9-8 18 0', brows: true },
  { mouth: 'M15 34q9-5 18 0' },
  { mouth: 'M15 32h18' },
  { mouth: 'M15 30q9 6 18 0' },
  { mouth: 'M13 29q11 11 22 0', open: true },
];

function faceIcon(index) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('class', 'icon face-icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const face = FACES[index];
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
 * @param {object} options
 * @param {ReturnType<import('/web/shared/api.js').createClient>} options.client
 * @param {(name: string) => void} options.show shows one screen by name
 * @param {ReturnType<import('/web/terminal/booking.js').setupBooking>} options.booking
 * @param {(up: boolean) => void} options.onLink the live connection came up or went down
 * @param {() => void} options.onRevoked the server revoked the kiosk
 * @param {() => void} options.onFinished back to a fresh start screen
 */
export function setupConsult({ client, show, booking, onLink, onRevoked, onFinished }) {
  const els = {
    checkVideo: $('check-video'),
    cameraMissing: $('check-camera-missing'),
    cameraText: $('check-camera-text'),
    cameraState: $('check-camera-state'),
    micState: $('check-mic-state'),
    levelBar: $('check-level-bar'),
    checkChosen: $('check-chosen'),
    ask: $('consult-now'),
    askError: $('ask-error'),
    waitingNote: $('waiting-note'),
    place: $('waiting-place'),
    estimate: $('waiting-estimate'),
    estimateBox: $('waiting-estimate-box'),
    waitingChosen: $('waiting-chosen'),
    nobody: $('nobody-on-duty'),
    cancel: $('cancel'),
    stage: $('call-stage'),
    connecting: $('call-connecting'),
    localVideo: $('local-video'),
    peerAway: $('peer-away'),
    network: $('network'),
    networkText: $('network-text'),
    audioOnly: $('audio-only'),
    hangUp: $('hang-up'),
    faces: $('faces'),
    ratingNote: $('rating-note'),
    thanks: $('rating-thanks'),
    ratingDone: $('rating-done'),
    soon: $('appointment-soon'),
    soonText: $('appointment-soon-text'),
  };

  const fresh = () => ({
    /** idle | check | asking | waiting | call | rating */
    flow: 'idle',
    topic: null,
    language: null,
    request: null,
    queued: null,
    consultation: null,
    peers: [],
    peerAway: null,
    note: null,
    audioOnly: false,
    networkAudioOnly: false,
    network: 'connecting',
    rated: false,
    ratingNote: null,
    appointment: false,
    afterCancel: null,
  });
  let state = fresh();
  /** An appointment that started here and has not reached its resident's screen yet. */
  let appointment = null;
  /** A wait that began while the last resident was still on the rating screen. */
  let queuedAfterRating = null;
  /** A booked consultation here that starts soon (told on the start screen). */
  let soon = null;
  let live = null;
  let stream = null;
  let call = null;
  let meter = null;
  let statsTimer = null;
  let resumeTimer = null;
  let thanksTimer = null;
  const remotes = new Map();

  // ------------------------------------------------------------ the link

  function connect() {
    if (live) return;
    live = keepLive({
      client,
      onMessage: receive,
      onUp: () => {
        onLink(true);
        resumeAfterReconnect();
      },
      onDown: () => onLink(false),
      onRevoked: () => {
        live = null;
        onRevoked();
      },
    });
  }

  function disconnect() {
    live?.stop();
    live = null;
    appointment = null;
    soon = null;
    renderSoon();
    queuedAfterRating = null;
    reset();
  }

  const send = (message) => Boolean(live?.send(message));

  /** The server says again what is in progress; a request it forgot is asked again. */
  function resumeAfterReconnect() {
    clearTimeout(resumeTimer);
    if (!['asking', 'waiting', 'call'].includes(state.flow)) return;
    const flow = state.flow;
    resumeTimer = setTimeout(() => {
      if (state.flow !== flow) return;
      if (flow === 'call') {
        // The call ended while the kiosk was away.
        endCall();
        showRating('call.lost');
      } else if (state.topic && state.language) {
        send({ type: 'consult.request', language: state.language, topic: state.topic });
      } else {
        finish();
      }
    }, RESUME_WAIT_MS);
  }

  function receive(message) {
    if (call?.handle(message)) return;
    switch (message.type) {
      case 'consult.queued':
        clearTimeout(resumeTimer);
        onQueued(message);
        break;
      case 'consult.cancelled':
        onCancelled();
        break;
      case 'consult.started':
        clearTimeout(resumeTimer);
        onStarted(message);
        break;
      case 'consult.peer':
        state.peerAway = message.present ? null : message.role;
        renderCall();
        break;
      case 'consult.ended':
        onEnded(message);
        break;
      case 'consult.rated':
        showThanks();
        break;
      case 'appointment_reminder':
        soon = message.appointment ?? null;
        renderSoon();
        break;
      case 'appointment_started':
        soon = null;
        renderSoon();
        // Someone booked this time: the server puts them at the front (now,
        // or when a call at this kiosk ends). A resident already waiting here
        // is taken to be them.
        appointment = message.appointment ?? {};
        if (state.flow === 'waiting') {
          appointment = null;
          state.appointment = true;
          renderWaiting();
        }
        break;
      case 'error':
        onError(message);
        break;
      default:
        break;
    }
  }

  function onError(message) {
    if (state.flow === 'asking') {
      state.flow = 'check';
      els.ask.disabled = false;
      const key = message.code === 'invalid' ? 'ask.error.language' : 'ask.error.other';
      showAskError(t(key));
    } else if (state.flow === 'rating' && state.rated && ['conflict', 'not_found', 'invalid'].includes(message.code)) {
      // The rating was refused (already rated, say): thank them all the same.
      showThanks();
    }
    // Anything else (a cancel that came after the lawyer answered, a late
    // answer to a room that closed) changes nothing on screen.
  }

  /** On the start screen: a booked consultation starts soon, at this time. */
  function renderSoon() {
    const start = soon?.start ? new Date(soon.start) : null;
    const showing = Boolean(start) && start.getTime() > Date.now() - 60_000;
    els.soon.hidden = !showing;
    els.soon.closest('.screen')?.classList.toggle('has-soon', showing);
    els.soonText.textContent = showing ? t('start.appointmentSoon', { time: timeText(start) }) : '';
  }

  // ------------------------------------------------------------ check and ask

  /** From the start screen: topic first, then the camera check. */
  function begin() {
    reset();
    booking.chooseTopic((topic) => {
      state.topic = topic;
      state.language = currentLanguage();
      startCheck();
    });
  }

  async function startCheck() {
    state.flow = 'check';
    els.ask.disabled = false;
    hideAskError();
    renderCheck();
    show('check');
    els.ask.focus();
    await openDevices();
    if (state.flow !== 'check') return;
    els.checkVideo.srcObject = stream;
    startMeter();
    renderCheck();
  }

  /** Camera and microphone; then the microphone alone; then nothing. */
  async function openDevices() {
    if (stream) return;
    const tries = [{ audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } }, { audio: true }, { video: true }];
    for (const constraints of tries) {
      try {
        stream = await navigator.mediaDevices.getUserMedia(constraints);
        return;
      } catch {
        // Try with less.
      }
    }
    stream = null;
  }

  const hasTrack = (kind) => Boolean(stream?.getTracks().some((track) => track.kind === kind && track.readyState === 'live'));

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

  function details() {
    if (!state.topic || !state.language) return '';
    return t('booking.details', { topic: t(`topic.${state.topic}`), language: t(`language.${state.language}`) });
  }

  function renderCheck() {
    const camera = hasTrack('video');
    const mic = hasTrack('audio');
    const checked = stream !== null || state.flow !== 'check';
    els.cameraState.textContent = t(camera ? 'check.cameraOk' : checked ? 'check.cameraMissing' : 'check.looking');
    els.micState.textContent = t(mic ? 'check.micOk' : checked ? 'check.micMissing' : 'check.looking');
    els.cameraMissing.hidden = camera || !checked;
    els.cameraText.textContent = t('check.cameraMissingHint');
    els.checkChosen.textContent = details();
  }

  function showAskError(text) {
    els.askError.textContent = text;
    els.askError.hidden = false;
  }

  function hideAskError() {
    els.askError.textContent = '';
    els.askError.hidden = true;
  }

  els.ask.addEventListener('click', () => {
    if (state.flow !== 'check') return;
    hideAskError();
    if (!send({ type: 'consult.request', language: state.language, topic: state.topic })) {
      showAskError(t('error.network'));
      return;
    }
    state.flow = 'asking';
    els.ask.disabled = true;
  });

  $('check-back').addEventListener('click', () => {
    stopDevices();
    begin();
  });

  // ------------------------------------------------------------ waiting

  function onQueued(message) {
    if (state.flow === 'rating' && !state.rated) {
      // The next resident (an appointment) waits; this one may still rate.
      queuedAfterRating = message;
      return;
    }
    if (!['asking', 'waiting'].includes(state.flow)) {
      // A wait the kiosk did not ask for here: an appointment, or one the
      // server kept over a reload. A new resident: nothing of the last one.
      reset();
      if (appointment) {
        state.topic = appointment.topic ?? null;
        state.language = appointment.language ?? null;
        state.appointment = true;
        appointment = null;
        if (state.language && state.language !== currentLanguage()) setLanguage(state.language).catch(() => {});
      }
    }
    state.flow = 'waiting';
    state.request = message.request;
    state.queued = message;
    stopMeter();
    els.checkVideo.srcObject = null;
    renderWaiting();
    show('waiting');
  }

  function renderWaiting() {
    const queued = state.queued;
    if (!queued) return;
    els.place.textContent = digits(queued.position);
    const secs = queued.estimated_wait_secs;
    els.estimateBox.hidden = secs == null || queued.nobody_on_duty;
    els.estimate.textContent = secs == null ? '' : t('waiting.minutes', { minutes: digits(Math.max(1, Math.ceil(secs / 60))) });
    els.nobody.hidden = !queued.nobody_on_duty;
    els.waitingChosen.textContent = details();
    const note = state.note ?? (state.appointment ? 'waiting.appointment' : null);
    els.waitingNote.hidden = !note;
    els.waitingNote.textContent = note ? t(note) : '';
  }

  els.cancel.addEventListener('click', () => cancelRequest(null));
  $('waiting-book').addEventListener('click', () => cancelRequest('book'));

  /** Cancels the waiting request; then the start screen, or booking. */
  function cancelRequest(then) {
    if (state.flow !== 'waiting' || !state.request) return;
    state.afterCancel = then;
    if (!send({ type: 'consult.cancel', request: state.request })) {
      // Offline: the server drops a request whose kiosk stays away.
      onCancelled();
    }
  }

  function onCancelled() {
    const topic = state.topic;
    const then = state.afterCancel;
    reset();
    if (then === 'book' && topic) booking.beginWithTopic(topic);
    else onFinished();
  }

  // ------------------------------------------------------------ the call

  async function onStarted(message) {
    const resumed = state.flow === 'call' && state.consultation === message.consultation;
    state.flow = 'call';
    state.consultation = message.consultation;
    state.request = message.request;
    state.peers = message.peers ?? [];
    state.language = message.language ?? state.language;
    state.topic = message.topic ?? state.topic;
    state.note = null;
    state.peerAway = null;
    stopMeter();
    els.checkVideo.srcObject = null;
    if (!resumed) clearRemotes();
    call?.close();
    call = null;
    show('call');
    renderCall();
    await openDevices();
    if (state.flow !== 'call' || state.consultation !== message.consultation) return;
    els.localVideo.srcObject = stream;
    applyAudioOnly();
    call = new RelayCall({
      send,
      token: message.token,
      stream,
      onStream: addRemote,
      onStreamEnded: removeRemote,
      onEvent: (event) => {
        if (event.type === 'connection') {
          state.network = event.state === 'connected' ? 'good' : event.state === 'connecting' ? 'connecting' : 'lost';
        } else if (event.type === 'audio_only') {
          state.networkAudioOnly = event.on && !state.audioOnly;
        }
        renderCall();
      },
    });
    call.join();
    startStats();
  }

  function clearRemotes() {
    for (const { figure } of remotes.values()) figure.remove();
    remotes.clear();
  }

  function peerOf(participant) {
    return state.peers.find((peer) => peer.participant === participant) ?? null;
  }

  function addRemote(remote, participant) {
    let entry = remotes.get(participant);
    if (!entry) {
      const figure = document.createElement('figure');
      figure.className = 'remote';
      const video = document.createElement('video');
      video.dataset.testid = 'remote-video';
      video.autoplay = true;
      video.playsInline = true;
      const caption = document.createElement('figcaption');
      figure.append(video, caption);
      entry = { figure, video, caption };
      remotes.set(participant, entry);
      // The lawyer first, then the interpreter.
      const rank = (id) => (peerOf(id)?.role === 'lawyer' ? 0 : 1);
      const after = [...remotes.keys()].filter((id) => id !== participant && rank(id) <= rank(participant));
      const anchor = after.length ? remotes.get(after[after.length - 1]).figure.nextSibling : els.stage.firstChild;
      els.stage.insertBefore(figure, anchor);
    }
    entry.video.srcObject = remote;
    entry.video.play().catch(() => {});
    renderCall();
  }

  function removeRemote(participant) {
    remotes.get(participant)?.figure.remove();
    remotes.delete(participant);
    renderCall();
  }

  function renderCall() {
    if (state.flow !== 'call') return;
    els.stage.dataset.count = String(remotes.size);
    els.connecting.hidden = remotes.size > 0;
    for (const [participant, { caption }] of remotes) {
      const peer = peerOf(participant);
      caption.textContent = peer ? t(`call.role.${peer.role}`) : '';
    }
    els.peerAway.hidden = !state.peerAway;
    els.peerAway.textContent = state.peerAway ? t(`call.away.${state.peerAway === 'interpreter' ? 'interpreter' : 'lawyer'}`) : '';
    const level = state.networkAudioOnly && state.network === 'good' ? 'poor' : state.network;
    els.network.dataset.level = level;
    els.networkText.textContent = t(state.networkAudioOnly ? 'call.network.audioOnly' : `call.network.${level}`);
    els.audioOnly.setAttribute('aria-pressed', String(state.audioOnly));
  }

  /** Our own choice: receive audio only and stop sending video. */
  function applyAudioOnly() {
    for (const track of stream?.getVideoTracks() ?? []) track.enabled = !state.audioOnly;
    els.localVideo.hidden = state.audioOnly;
    els.stage.classList.toggle('audio-only', state.audioOnly);
  }

  els.audioOnly.addEventListener('click', () => {
    if (state.flow !== 'call') return;
    state.audioOnly = !state.audioOnly;
    if (state.audioOnly) state.networkAudioOnly = false;
    call?.setAudioOnly(state.audioOnly);
    applyAudioOnly();
    renderCall();
  });

  els.hangUp.addEventListener('click', () => {
    if (state.flow !== 'call' || !state.consultation) return;
    if (!send({ type: 'consult.hangup', consultation: state.consultation })) {
      // Offline: the call is over for the resident; the server ends it after its grace period.
      endCall();
      showRating('call.lost');
    }
  });

  /** Loss and round trip from the browser's own statistics, every two seconds. */
  function startStats() {
    clearInterval(statsTimer);
    let last = null;
    statsTimer = setInterval(async () => {
      if (!call || state.network === 'lost' || state.network === 'connecting') return;
      let received = 0;
      let lost = 0;
      let rtt = null;
      try {
        const report = await call.pc.getStats();
        report.forEach((entry) => {
          if (entry.type === 'inbound-rtp') {
            received += entry.packetsReceived ?? 0;
            lost += Math.max(0, entry.packetsLost ?? 0);
          } else if (entry.type === 'candidate-pair' && entry.nominated && entry.currentRoundTripTime != null) {
            rtt = entry.currentRoundTripTime;
          }
        });
      } catch {
        return;
      }
      if (last) {
        const got = received - last.received;
        const missed = lost - last.lost;
        const loss = got + missed > 0 ? missed / (got + missed) : 0;
        state.network = loss > 0.1 || (rtt ?? 0) > 1 ? 'poor' : loss > 0.03 || (rtt ?? 0) > 0.4 ? 'fair' : 'good';
        renderCall();
      }
      last = { received, lost };
    }, STATS_EVERY_MS);
  }

  function endCall() {
    clearInterval(statsTimer);
    statsTimer = null;
    call?.close();
    call = null;
    clearRemotes();
    els.localVideo.srcObject = null;
  }

  function onEnded(message) {
    endCall();
    if (message.requeued) {
      // Back at the front of the queue; consult.queued follows.
      state.flow = 'waiting';
      state.note = 'waiting.requeued';
      state.queued = state.queued ?? { position: 1, nobody_on_duty: false };
      renderWaiting();
      show('waiting');
      return;
    }
    stopDevices();
    showRating(message.reason === 'hung_up' ? null : 'call.lost');
  }

  // ------------------------------------------------------------ rating

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

  function showRating(note) {
    state.flow = 'rating';
    state.rated = false;
    state.ratingNote = note;
    els.faces.hidden = false;
    els.thanks.hidden = true;
    for (const { button } of faceButtons) button.disabled = false;
    renderRating();
    show('rating');
    faceButtons[4].button.focus();
  }

  function renderRating() {
    for (const { label, rating } of faceButtons) label.textContent = t(`rating.${rating}`);
    const note = state.flow === 'rating' && !state.rated ? state.ratingNote : null;
    els.ratingNote.hidden = !note;
    els.ratingNote.textContent = note ? t(note) : '';
  }

  function rate(rating) {
    if (state.flow !== 'rating' || state.rated) return;
    state.rated = true;
    for (const { button } of faceButtons) button.disabled = true;
    if (!send({ type: 'consult.rate', consultation: state.consultation, rating })) showThanks();
  }

  function showThanks() {
    if (state.flow !== 'rating') return;
    els.faces.hidden = true;
    state.rated = true;
    renderRating();
    els.thanks.hidden = false;
    clearTimeout(thanksTimer);
    thanksTimer = setTimeout(finish, THANKS_MS);
  }

  els.ratingDone.addEventListener('click', finish);

  function finish() {
    reset();
    onFinished();
  }

  // ------------------------------------------------------------ reset

  function stopDevices() {
    stopMeter();
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    els.checkVideo.srcObject = null;
    els.localVideo.srcObject = null;
  }

  /** Forgets everything of the last resident (not the link). */
  function reset() {
    clearTimeout(resumeTimer);
    clearTimeout(thanksTimer);
    endCall();
    stopDevices();
    state = fresh();
    hideAskError();
    els.ask.disabled = false;
    for (const el of [els.place, els.estimate, els.waitingChosen, els.checkChosen, els.waitingNote, els.ratingNote]) el.textContent = '';
    els.localVideo.hidden = false;
    els.stage.classList.remove('audio-only');
  }

  return {
    connect,
    disconnect,
    begin,
    reset,
    /** A resident is waiting or talking: the idle reset must leave the kiosk alone. */
    busy: () => ['asking', 'waiting', 'call'].includes(state.flow),
    /**
     * After a reset: a wait that began during the last resident's rating is
     * shown now. True when it took over the screen.
     */
    resume() {
      const queued = queuedAfterRating;
      queuedAfterRating = null;
      if (!queued) return false;
      onQueued(queued);
      return true;
    },
    render() {
      renderSoon();
      renderCheck();
      renderWaiting();
      renderCall();
      renderRating();
    },
  };
}
