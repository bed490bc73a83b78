// The live panel of the lawyer and interpreter console (PROTOCOL.md, "The
// live path"): one kept connection to /ws; the person's duty (the server's
// `presence`) with the buttons to go online, take a break or go offline; an
// incoming call (`consult.offer`) that rings until it is answered or
// withdrawn; the call itself (`consult.started`, media through the relay with
// RelayCall); the record of the consultation, written during the call and in
// the wrap-up after it (PUT /api/consultations/{id}/record); and the list of
// past consultations.
//
// What the lawyer wanted (online, on a break, offline) is kept in
// sessionStorage, so that a reload or a reconnection that the server forgot
// (longer than its grace period) puts them back online. Record drafts are kept
// there too, per consultation, until they are saved.

import { seg } from '/web/shared/api.js';
import { keepLive } from '/web/shared/live.js';
import { RelayCall } from '/web/shared/call.js';
import { t, formatTime, onLanguageChange, showError, clearError } from '/web/shared/i18n.js';
import { $, h, keepingFocus } from '/web/shared/dom.js';

const WANT_KEY = 'cloudlaw.lawyer.want';
const DRAFT_PREFIX = 'cloudlaw.lawyer.draft.';
/** The consultation whose media this tab carries (so that a reload takes it back). */
const CALL_KEY = 'cloudlaw.lawyer.call';
const OUTCOMES = ['advice_given', 'referred_legal_aid', 'referred_mediation', 'follow_up_appointment'];

/** The texts of the server's codes, named in full so that the string tables can be checked. */
const STATE_TEXT = {
  offline: 'live.state.offline',
  available: 'live.state.available',
  ringing: 'live.state.ringing',
  in_consultation: 'live.state.in_consultation',
  wrap_up: 'live.state.wrap_up',
  break: 'live.state.break',
};
const STATE_HINT = {
  offline: 'live.hint.offline',
  available: 'live.hint.available',
  ringing: 'live.hint.ringing',
  in_consultation: 'live.hint.in_consultation',
  wrap_up: 'live.hint.wrap_up',
  break: 'live.hint.break',
};
const CONNECTION_TEXT = { connecting: 'live.connection.connecting', up: 'live.connection.up', down: 'live.connection.down' };
const ROLE_TEXT = { resident: 'role.resident', lawyer: 'role.lawyer', interpreter: 'role.interpreter' };
const PEER_LOST = { resident: 'call.peerLost.resident', lawyer: 'call.peerLost.lawyer', interpreter: 'call.peerLost.interpreter' };
const NETWORK_TEXT = {
  connecting: 'call.net.connecting',
  good: 'call.net.good',
  poor: 'call.net.audioOnly',
  lost: 'call.net.lost',
};
const OUTCOME_TEXT = {
  advice_given: 'outcome.advice_given',
  referred_legal_aid: 'outcome.referred_legal_aid',
  referred_mediation: 'outcome.referred_mediation',
  follow_up_appointment: 'outcome.follow_up_appointment',
};

const topicText = (code) => t(`topic.${code}`);
const languageText = (code) => t(`language.${code}`);

/** Seconds as m:ss (or h:mm:ss). */
export function clock(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

function readSession(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeSession(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // Private mode or full: the page still works, without surviving a reload.
  }
}

function forgetDrafts() {
  try {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(DRAFT_PREFIX)) sessionStorage.removeItem(key);
  } catch {
    // Nothing kept.
  }
}

// ---------------------------------------------------------------- ringing

/**
 * A telephone ring made with the Web Audio API: two bursts of 440 + 480 Hz
 * every three seconds. Browsers start an AudioContext only after a user
 * gesture, so `unlock()` is called from clicks and key presses.
 */
class Ringer {
  constructor() {
    this.context = null;
    this.timer = null;
    this.output = null;
  }

  unlock() {
    try {
      if (!this.context) {
        const Context = window.AudioContext || window.webkitAudioContext;
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
class TitleFlash {
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

// ---------------------------------------------------------------- camera

/** Camera and microphone, else the microphone alone, else nothing; `lacking` says what is missing. */
async function openCamera() {
  const media = navigator.mediaDevices;
  if (media?.getUserMedia) {
    try {
      const stream = await media.getUserMedia({ audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } });
      return { stream, lacking: null };
    } catch {
      // No camera, or not allowed: try the microphone alone.
    }
    try {
      return { stream: await media.getUserMedia({ audio: true }), lacking: 'video' };
    } catch {
      // Nothing at all.
    }
  }
  return { stream: null, lacking: 'all' };
}

const live = (stream) => Boolean(stream && stream.getTracks().some((track) => track.readyState === 'live'));

// ---------------------------------------------------------------- the panel

/**
 * @param {ReturnType<import('/web/shared/api.js').createClient>} client
 * @param {object} options
 * @param {() => void} options.onRevoked the server revoked the session (the app shows the login)
 */
export function setupLive(client, { onRevoked }) {
  const els = {
    connection: $('live-connection'),
    connectionText: $('live-connection-text'),
    presence: $('presence'),
    presenceHint: $('presence-hint'),
    offDuty: $('off-duty'),
    goOnline: $('go-online'),
    takeBreak: $('take-break'),
    goOffline: $('go-offline'),
    status: $('live-status'),
    incoming: $('incoming-call'),
    incomingHeading: $('incoming-heading'),
    incomingLanguage: $('incoming-language'),
    incomingTopic: $('incoming-topic'),
    incomingRegion: $('incoming-region'),
    incomingWaited: $('incoming-waited'),
    incomingRole: $('incoming-role'),
    incomingThreeWay: $('incoming-three-way'),
    incomingCountdown: $('incoming-countdown'),
    incomingSoundOff: $('incoming-sound-off'),
    accept: $('accept-call'),
    decline: $('decline-call'),
    work: $('live-work'),
    callView: $('call-view'),
    remoteVideos: $('remote-videos'),
    callWaiting: $('call-waiting'),
    localVideo: $('local-video'),
    peerNotice: $('peer-notice'),
    mediaNotice: $('media-notice'),
    mute: $('mute-mic'),
    cameraOff: $('camera-off'),
    playSound: $('play-sound'),
    elsewhere: $('call-elsewhere'),
    takeHere: $('take-call-here'),
    stage: $('call-stage'),
    hangUp: $('hang-up'),
    elapsed: $('call-elapsed'),
    callLanguage: $('call-language'),
    callTopic: $('call-topic'),
    network: $('network-quality'),
    peers: $('call-peers'),
    recordForm: $('record-form'),
    recordContext: $('record-context'),
    wrapUp: $('wrap-up-countdown'),
    summary: $('record-summary'),
    outcome: $('record-outcome'),
    recordStatus: $('record-status'),
    recordSave: $('record-save'),
    pastBody: $('past-body'),
    pastStatus: $('past-status'),
    pastRefresh: $('past-refresh'),
  };

  const ringer = new Ringer();
  const titleFlash = new TitleFlash();

  const fresh = () => ({
    me: null,
    /** 'connecting' | 'up' | 'down' */
    connection: 'connecting',
    /** The last `presence`, or null before the first. */
    presence: null,
    /** The first `presence` after a (re)connection is compared with what the person wanted. */
    checkWanted: false,
    /** The offer ringing now: the message, with its deadline and when the resident started waiting (ms). */
    offer: null,
    /** The request we accepted, until the consultation starts or the server says no. */
    accepting: null,
    /** The id our consult.accept carried, so an error is linked to its click. */
    acceptId: null,
    /** A three-way we accepted: the role whose answer we wait for. */
    waitingFor: null,
    /** The call in progress. */
    call: null,
    /** The consultation whose record the form writes: {id, language, topic, startedAt, wrapUpUntil}. */
    record: null,
    /** A notice under the duty line: {key, kind} or {error}. */
    notice: null,
    /** The record form's status: {kind: 'ok', key} or {kind: 'error', error}. */
    recordStatus: null,
    past: [],
    pastError: null,
  });
  let state = fresh();
  let link = null;
  let ticker = null;
  /** The local camera and microphone, kept across a resumed call. */
  let localStream = null;
  let lacking = null;
  /** Bumped whenever a call starts or ends, so that late answers (getUserMedia, fetches) of an old one are dropped. */
  let callGeneration = 0;

  const wanted = () => readSession(WANT_KEY) ?? 'offline';

  function send(message) {
    return link ? link.send(message) : false;
  }

  function setNotice(notice) {
    state.notice = notice;
    renderNotice();
  }

  // -------------------------------------------------------------- connection

  /** Opens the kept connection; `after` is the state to show until it is up ('connecting' or 'down'). */
  function connect(after = 'connecting') {
    state.connection = after;
    const handle_ = keepLive({
      client,
      onMessage: (message) => {
        if (link === handle_) handle(message);
      },
      onUp: () => {
        if (link !== handle_) return;
        state.connection = 'up';
        state.checkWanted = true;
        render();
      },
      onDown: () => {
        if (link !== handle_) return;
        state.connection = 'down';
        // The server rings again after a reconnection if the offer still stands.
        clearOffer();
        if (state.call) state.call.network = 'lost';
        render();
      },
      onRevoked: () => {
        if (link !== handle_) return;
        link = null;
        onRevoked();
      },
    });
    link = handle_;
  }

  // -------------------------------------------------------------- messages

  function handle(message) {
    // Media first: every rtc.* of the call's room belongs to RelayCall.
    if (state.call?.relay?.handle(message)) return;
    switch (message.type) {
      case 'presence':
        onPresence(message);
        break;
      case 'consult.offer':
        onOffer(message);
        break;
      case 'consult.offer_withdrawn':
        if (state.offer?.request === message.request) {
          // Timed out, cancelled, or (three-way) the other person declined: also after our own accept.
          state.accepting = null;
          state.waitingFor = null;
          clearOffer();
          setNotice({ key: 'notice.withdrawn', kind: 'info' });
          render();
        }
        break;
      case 'consult.accepted':
        if (state.offer?.request === message.request && state.accepting === message.request) {
          state.waitingFor = message.waiting_for ?? null;
          if (state.waitingFor) {
            ringer.stop();
            titleFlash.stop();
          }
          renderOffer();
        }
        break;
      case 'consult.started':
        onStarted(message);
        break;
      case 'consult.peer':
        if (state.call?.consultation === message.consultation) {
          if (message.present) state.call.absent.delete(message.role);
          else state.call.absent.add(message.role);
          renderCall();
        }
        break;
      case 'consult.ended':
        onEnded(message);
        break;
      case 'appointment_reminder':
      case 'appointment_started':
        setNotice({ key: message.type === 'appointment_started' ? 'notice.appointmentStarted' : 'notice.appointmentSoon',
          vars: { time: formatTime(Date.parse(message.appointment?.start) / 1000) }, kind: 'info' });
        break;
      case 'error':
        onError(message);
        break;
      default:
        break;
    }
  }

  function onPresence(message) {
    state.presence = message;
    if (state.checkWanted) {
      state.checkWanted = false;
      // A reconnection longer than the server's grace period forgets that the person was online.
      if (message.state === 'offline' && wanted() !== 'offline') send({ type: 'presence.set', state: wanted() });
    }
    if (message.state !== 'ringing' && state.offer) clearOffer();
    if (message.state !== 'in_consultation' && state.call) {
      // The call ended while this page was away (no consult.ended reached it).
      endCall();
      loadPast();
    }
    if (message.state === 'wrap_up' && message.consultation && state.record?.id !== message.consultation) {
      openRecord({ id: message.consultation });
    }
    if (state.record && state.record.id === message.consultation) {
      state.record.wrapUpUntil = message.state === 'wrap_up' ? message.wrap_up_until ?? null : state.record.wrapUpUntil;
    }
    render();
  }

  function onOffer(message) {
    const now = Date.now();
    state.offer = {
      ...message,
      deadline: now + (message.expires_in_secs ?? 0) * 1000,
      since: now - (message.waited_secs ?? 0) * 1000,
    };
    state.accepting = null;
    setNotice(null);
    ringer.start();
    titleFlash.start();
    render();
    els.accept.focus();
  }

  function clearOffer() {
    if (!state.offer) return;
    state.offer = null;
    ringer.stop();
    titleFlash.stop();
    const focusWasInside = els.incoming.contains(document.activeElement);
    renderOffer();
    if (focusWasInside) $('live-heading').focus();
  }

  function onError(message) {
    if (message.code === 'not_found' && state.accepting && (!message.id || message.id === state.acceptId)) {
      // The offer ended before our answer reached the server.
      state.accepting = null;
      state.waitingFor = null;
      clearOffer();
      setNotice({ key: 'notice.gone', kind: 'error' });
      render();
      return;
    }
    if (message.code === 'revoked') return; // keepLive stops and tells the app.
    console.warn('[live]', message.code, message.message);
  }

  // -------------------------------------------------------------- duty

  function want(next) {
    ringer.unlock();
    writeSession(WANT_KEY, next);
    setNotice(null);
    if (!send({ type: 'presence.set', state: next })) setNotice({ error: { code: 'network', serverMessage: '' } });
  }

  els.goOnline.addEventListener('click', () => want('available'));
  els.takeBreak.addEventListener('click', () => want('break'));
  els.goOffline.addEventListener('click', () => want('offline'));

  els.accept.addEventListener('click', () => {
    ringer.unlock();
    const offer = state.offer;
    if (!offer) return;
    state.accepting = offer.request;
    state.acceptId = `accept-${Date.now().toString(36)}`;
    els.accept.disabled = true;
    els.decline.disabled = true;
    if (!send({ type: 'consult.accept', request: offer.request, id: state.acceptId })) {
      state.accepting = null;
      setNotice({ error: { code: 'network', serverMessage: '' } });
      renderOffer();
    }
  });

  els.decline.addEventListener('click', () => {
    const offer = state.offer;
    if (!offer) return;
    send({ type: 'consult.decline', request: offer.request });
    state.accepting = null;
    state.waitingFor = null;
    clearOffer();
    render();
  });

  // -------------------------------------------------------------- the call

  async function onStarted(message) {
    clearOffer();
    // The server tells every connection of the account. Media belongs to one
    // tab: the one that answered, or the one that had the call (before a
    // reload too: sessionStorage is per tab). Other tabs offer to take it over.
    const answeredHere = state.accepting === message.request;
    state.accepting = null;
    state.waitingFor = null;
    setNotice(null);
    const same = state.call?.consultation === message.consultation;
    // The server sends a new call to the connection that accepted, and tells
    // the account's other connections it is `elsewhere`.
    const here = !message.elsewhere
      && (answeredHere || !message.resumed || (same && !state.call.elsewhere) || readSession(CALL_KEY) === message.consultation);
    if (state.call && !same) endCall();
    const generation = ++callGeneration;
    const previous = same ? state.call : null;
    // A resumed call: the old media session died with the old connection.
    previous?.relay?.close();
    els.remoteVideos.replaceChildren();
    state.call = {
      consultation: message.consultation,
      room: message.room,
      token: message.token,
      role: message.role,
      language: message.language,
      topic: message.topic,
      peers: message.peers ?? [],
      startedAt: previous?.startedAt ?? Date.now(),
      elsewhere: !here,
      absent: new Set(),
      network: 'connecting',
      relay: null,
      /** participant id -> role: from the peers (`participant`), else from the consultation's record. */
      who: { ...(previous?.who ?? {}), ...Object.fromEntries((message.peers ?? []).filter((p) => p.participant).map((p) => [p.participant, p.role])) },
      tiles: new Map(),
      muted: previous?.muted ?? false,
      cameraOff: previous?.cameraOff ?? false,
      soundBlocked: false,
    };
    render();
    // A resumed call started earlier; an older server names no participants.
    if (message.resumed || state.call.peers.some((p) => !p.participant)) learnParticipants(message.consultation, generation);
    if (!here) return;
    if (!message.resumed) {
      els.hangUp.focus();
      loadPast();
    }
    await joinMedia(state.call, generation);
  }

  /** This tab takes the call's media: camera, microphone and the relay. */
  async function joinMedia(call, generation) {
    writeSession(CALL_KEY, call.consultation);
    if (call.role === 'lawyer' && state.record?.id !== call.consultation) {
      openRecord({ id: call.consultation, language: call.language, topic: call.topic, startedAt: call.startedAt / 1000 });
      render();
    }
    if (!live(localStream)) {
      const opened = await openCamera();
      if (generation !== callGeneration) {
        opened.stream?.getTracks().forEach((track) => track.stop());
        return;
      }
      localStream = opened.stream;
      lacking = opened.lacking;
    }
    applyTrackSwitches(call);
    els.localVideo.srcObject = localStream && localStream.getVideoTracks().length ? localStream : null;
    call.relay = new RelayCall({
      send: (m) => send(m),
      token: call.token,
      stream: localStream,
      onStream: (stream, participant) => addTile(call, stream, participant),
      onStreamEnded: (participant) => removeTile(call, participant),
      onEvent: (event) => onMediaEvent(call, event),
    });
    call.relay.join();
    renderCall();
  }

  els.takeHere.addEventListener('click', () => {
    const call = state.call;
    if (!call?.elsewhere) return;
    call.elsewhere = false;
    render();
    els.hangUp.focus();
    joinMedia(call, callGeneration);
  });

  /** Who is who in the room (stream ids are participant ids), and when the call started. */
  async function learnParticipants(consultation, generation) {
    for (let attempt = 0; attempt < 4; attempt += 1) {
      try {
        const c = await client.get(`/api/consultations/${seg(consultation)}`);
        if (generation !== callGeneration || !state.call) return;
        const who = {};
        if (c.terminal_id) who[c.terminal_id] = 'resident';
        if (c.lawyer_id) who[c.lawyer_id] = 'lawyer';
        if (c.interpreter_id) who[c.interpreter_id] = 'interpreter';
        state.call.who = { ...who, ...state.call.who };
        if (c.started_at) state.call.startedAt = c.started_at * 1000;
        if (state.record?.id === consultation) state.record.startedAt = c.started_at;
        renderCall();
        renderRecord();
        return;
      } catch (error) {
        // Just started: the record may not be on disk yet.
        if (error.status && error.status !== 404) return;
        await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
        if (generation !== callGeneration) return;
      }
    }
  }

  function applyTrackSwitches(call) {
    for (const track of localStream?.getAudioTracks() ?? []) track.enabled = !call.muted;
    for (const track of localStream?.getVideoTracks() ?? []) track.enabled = !call.cameraOff;
  }

  function addTile(call, stream, participant) {
    if (state.call !== call) return;
    removeTile(call, participant);
    const video = h('video', { autoplay: true, playsInline: true, dataset: { testid: 'remote-video', participant } });
    video.srcObject = stream;
    const caption = h('figcaption', {});
    const tile = h('figure', { className: 'tile', dataset: { participant } }, video, caption);
    call.tiles.set(participant, { tile, video, caption });
    els.remoteVideos.append(tile);
    video.play?.().catch(() => {
      // Autoplay with sound needs a user gesture (after a reload): show it muted, and a button.
      video.muted = true;
      video.play().catch(() => {});
      call.soundBlocked = true;
      renderCall();
    });
    renderCall();
  }

  function removeTile(call, participant) {
    const tile = call.tiles.get(participant);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.tile.remove();
    call.tiles.delete(participant);
    if (state.call === call) renderCall();
  }

  function onMediaEvent(call, event) {
    if (state.call !== call) return;
    if (event.type === 'connection') {
      call.network = event.state === 'connected' ? (call.audioOnly ? 'poor' : 'good') : event.state === 'connecting' ? 'connecting' : 'lost';
    } else if (event.type === 'audio_only') {
      call.audioOnly = event.on;
      if (call.network === 'good' || call.network === 'poor') call.network = event.on ? 'poor' : 'good';
    } else if (event.type === 'closed') {
      // The relay let us go (our media stayed down too long): while the
      // consultation goes on, join its room again, a few times at most.
      call.network = 'lost';
      call.relay = null;
      call.rejoins = (call.rejoins ?? 0) + 1;
      if (call.rejoins <= 3) {
        const generation = callGeneration;
        setTimeout(() => {
          if (state.call === call && generation === callGeneration && !call.relay && !call.elsewhere) {
            joinMedia(call, generation);
          }
        }, 1500 * call.rejoins);
      }
    }
    renderCall();
  }

  els.mute.addEventListener('click', () => {
    if (!state.call) return;
    state.call.muted = !state.call.muted;
    applyTrackSwitches(state.call);
    renderCall();
  });

  els.cameraOff.addEventListener('click', () => {
    if (!state.call) return;
    state.call.cameraOff = !state.call.cameraOff;
    applyTrackSwitches(state.call);
    renderCall();
  });

  els.playSound.addEventListener('click', () => {
    if (!state.call) return;
    for (const { video } of state.call.tiles.values()) {
      video.muted = false;
      video.play().catch(() => {});
    }
    state.call.soundBlocked = false;
    renderCall();
    els.hangUp.focus();
  });

  els.hangUp.addEventListener('click', () => {
    if (!state.call) return;
    if (!send({ type: 'consult.hangup', consultation: state.call.consultation })) {
      setNotice({ error: { code: 'network', serverMessage: '' } });
    }
  });

  function onEnded(message) {
    if (state.call?.consultation !== message.consultation) return;
    const role = state.call.role;
    endCall();
    if (role === 'lawyer' && state.record?.id === message.consultation) {
      state.record.wrapUpUntil = message.wrap_up_until ?? null;
      render();
      els.summary.focus();
    } else {
      setNotice({ key: 'notice.callEnded', kind: 'info' });
      render();
      $('live-heading').focus();
    }
    loadPast();
  }

  /** Closes the call's media: the relay session, the camera, the videos. */
  function endCall() {
    callGeneration += 1;
    const call = state.call;
    state.call = null;
    if (call && readSession(CALL_KEY) === call.consultation) writeSession(CALL_KEY, null);
    call?.relay?.close();
    for (const { video } of call?.tiles.values() ?? []) video.srcObject = null;
    els.remoteVideos.replaceChildren();
    els.localVideo.srcObject = null;
    localStream?.getTracks().forEach((track) => track.stop());
    localStream = null;
    lacking = null;
    render();
  }

  // -------------------------------------------------------------- the record

  const draftKey = (id) => `${DRAFT_PREFIX}${id}`;

  function setRecordStatus(status) {
    state.recordStatus = status;
    renderRecordStatus();
  }

  function renderRecordStatus() {
    const s = state.recordStatus;
    els.recordStatus.dataset.kind = s ? s.kind : '';
    if (s?.kind === 'error') {
      showError(els.recordStatus, s.error);
    } else {
      clearError(els.recordStatus);
      els.recordStatus.hidden = false;
      if (s) els.recordStatus.textContent = t(s.key);
    }
  }

  function openRecord(record) {
    state.record = { language: null, topic: null, startedAt: null, wrapUpUntil: null, ...record };
    setRecordStatus(null);
    let draft = null;
    try {
      draft = JSON.parse(readSession(draftKey(record.id)) ?? 'null');
    } catch {
      draft = null;
    }
    els.summary.value = draft?.summary ?? '';
    els.outcome.value = OUTCOMES.includes(draft?.outcome) ? draft.outcome : '';
    if (!record.language || !record.topic) fillRecord(record.id);
  }

  /** What a record opened from a presence or the list lacks (language, topic, start, and what was saved). */
  async function fillRecord(id) {
    try {
      const c = await client.get(`/api/consultations/${seg(id)}`);
      if (state.record?.id !== id) return;
      Object.assign(state.record, { language: c.language, topic: c.topic, startedAt: c.started_at });
      if (!readSession(draftKey(id))) {
        els.summary.value = c.summary ?? '';
        els.outcome.value = OUTCOMES.includes(c.outcome) ? c.outcome : '';
      }
      renderRecord();
    } catch {
      // The form works without them.
    }
  }

  function keepDraft() {
    if (!state.record) return;
    writeSession(draftKey(state.record.id), JSON.stringify({ summary: els.summary.value, outcome: els.outcome.value }));
    if (state.recordStatus?.kind === 'ok') setRecordStatus(null);
  }

  els.summary.addEventListener('input', keepDraft);
  els.outcome.addEventListener('change', keepDraft);

  els.recordForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const record = state.record;
    if (!record) return;
    if (!els.outcome.value) {
      setRecordStatus({ kind: 'error', error: { code: 'no_outcome', serverMessage: '' } });
      els.outcome.focus();
      return;
    }
    els.recordSave.disabled = true;
    els.recordForm.setAttribute('aria-busy', 'true');
    try {
      await client.request('PUT', `/api/consultations/${seg(record.id)}/record`, {
        summary: els.summary.value,
        outcome: els.outcome.value,
      });
      writeSession(draftKey(record.id), null);
      if (state.call?.consultation === record.id) {
        // Saved during the call: the form stays for more.
        setRecordStatus({ kind: 'ok', key: 'record.saved' });
      } else {
        state.record = null;
        setNotice({ key: 'notice.recordSaved', kind: 'ok' });
        render();
        $('live-heading').focus();
      }
      loadPast();
    } catch (error) {
      setRecordStatus({ kind: 'error', error });
    } finally {
      els.recordSave.disabled = false;
      els.recordForm.removeAttribute('aria-busy');
    }
  });

  // -------------------------------------------------------------- past consultations

  async function loadPast() {
    if (!state.me) return;
    try {
      const list = await client.get('/api/consultations');
      if (!state.me) return;
      state.past = Array.isArray(list) ? list : [];
      state.pastError = null;
    } catch (error) {
      state.pastError = error;
    }
    renderPast();
  }

  els.pastRefresh.addEventListener('click', async () => {
    els.pastRefresh.disabled = true;
    await loadPast();
    els.pastRefresh.disabled = false;
  });

  function pastRow(c) {
    const mine = c.lawyer_id === state.me?.id;
    const role = mine ? 'lawyer' : 'interpreter';
    const written = Boolean(c.outcome);
    const duration = c.ended_at ? clock(c.ended_at - c.started_at) : t('past.inProgress');
    const when = formatTime(c.started_at);
    let recordCell;
    if (mine && !written && c.status !== 'active' && state.record?.id !== c.id && !state.call) {
      recordCell = h('button', {
        type: 'button', dataset: { testid: `past-write-${c.id}` }, textContent: t('past.write'),
        attrs: { 'aria-label': t('past.writeLabel', { time: when }) },
        onclick: () => {
          openRecord({ id: c.id, language: c.language, topic: c.topic, startedAt: c.started_at });
          render();
          els.summary.focus();
        },
      });
    } else {
      recordCell = h('span', { className: `badge ${written ? 'ok' : 'wait'}`, textContent: t(written ? 'past.record.yes' : 'past.record.no') });
    }
    return h('tr', { dataset: { testid: `past-${c.id}`, consultation: c.id } },
      h('th', { scope: 'row', className: 'nowrap', textContent: when }),
      h('td', { textContent: languageText(c.language) }),
      h('td', { textContent: topicText(c.topic) }),
      h('td', { className: 'nowrap clock', textContent: duration }),
      h('td', { textContent: t(ROLE_TEXT[role]) }),
      h('td', { dataset: { testid: `past-outcome-${c.id}` }, textContent: c.outcome ? t(OUTCOME_TEXT[c.outcome] ?? 'list.none') : t('list.none') }),
      h('td', { dataset: { testid: `past-record-${c.id}` } }, recordCell),
      h('td', { className: 'nowrap', textContent: c.rating ? t('past.rating', { n: c.rating }) : t('list.none') },
        mine && c.callback && c.status !== 'active' ? callBackButton(c, when) : ''));
  }

  /** A hotline caller's consultation: the lawyer may call them back (they are rung when the caller answers). */
  function callBackButton(c, when) {
    const button = h('button', {
      type: 'button', className: 'call-back', dataset: { testid: `past-callback-${c.id}` }, textContent: `☎ ${t('past.callBack')}`,
      attrs: { 'aria-label': t('past.callBackLabel', { time: when }) },
    });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const started = await client.request('POST', `/api/consultations/${seg(c.id)}/callback`);
        state.pastError = null;
        els.pastStatus.dataset.kind = '';
        els.pastStatus.hidden = false;
        els.pastStatus.textContent = t('past.callingBack', { number: started.number });
      } catch (error) {
        state.pastError = error;
        renderPast();
      }
      setTimeout(() => { button.disabled = false; }, 10_000);
    });
    return button;
  }

  function renderPast() {
    keepingFocus(() => {
      const rows = state.past.map(pastRow);
      if (!rows.length) rows.push(h('tr', {}, h('td', { className: 'empty', colSpan: 8, textContent: t('past.empty') })));
      els.pastBody.replaceChildren(...rows);
    });
    if (state.pastError) {
      els.pastStatus.dataset.kind = 'error';
      showError(els.pastStatus, state.pastError);
    } else {
      els.pastStatus.dataset.kind = '';
      clearError(els.pastStatus);
      els.pastStatus.hidden = false;
    }
  }

  // -------------------------------------------------------------- rendering

  function render() {
    renderConnection();
    renderDuty();
    renderNotice();
    renderOffer();
    renderCall();
    renderRecord();
    els.work.dataset.mode = state.call ? (state.record ? 'call-record' : 'call') : state.record ? 'record' : 'idle';
    runTicker();
  }

  function renderConnection() {
    els.connection.dataset.state = state.connection;
    els.connectionText.textContent = t(CONNECTION_TEXT[state.connection]);
  }

  function renderDuty() {
    const p = state.presence;
    const current = p?.state ?? null;
    els.presence.dataset.state = current ?? '';
    els.presence.textContent = current ? t(STATE_TEXT[current] ?? 'live.state.unknown') : t('live.state.unknown');
    const offDuty = Boolean(p && p.on_duty === false);
    // Off duty, "waiting for calls" would promise what the notice below takes back.
    const hint = current && STATE_HINT[current] && !(offDuty && current === 'available') ? t(STATE_HINT[current]) : '';
    els.presenceHint.textContent = hint;
    els.presenceHint.hidden = !hint;
    els.offDuty.hidden = !offDuty;
    const up = state.connection === 'up';
    els.goOnline.hidden = !(current === 'offline' || current === 'break');
    els.takeBreak.hidden = current !== 'available';
    els.goOffline.hidden = !(current === 'available' || current === 'break' || current === 'wrap_up');
    for (const button of [els.goOnline, els.takeBreak, els.goOffline]) button.disabled = !up;
  }

  function renderNotice() {
    const n = state.notice;
    if (!n) {
      clearError(els.status);
      els.status.hidden = false;
      els.status.dataset.kind = '';
    } else if (n.error) {
      els.status.dataset.kind = 'error';
      showError(els.status, n.error);
    } else {
      clearError(els.status);
      els.status.hidden = false;
      els.status.dataset.kind = n.kind === 'error' ? 'error' : n.kind;
      els.status.textContent = t(n.key, n.vars);
    }
  }

  function renderOffer() {
    const o = state.offer;
    els.incoming.hidden = !o;
    if (!o) {
      els.accept.disabled = false;
      els.decline.disabled = false;
      return;
    }
    els.incomingHeading.textContent = t(o.role === 'interpreter' ? 'incoming.headingInterpreter' : 'incoming.heading');
    els.incomingLanguage.textContent = languageText(o.language);
    els.incomingTopic.textContent = topicText(o.topic);
    els.incomingRegion.textContent = o.region_name || o.region_id;
    els.incomingRole.textContent = t(ROLE_TEXT[o.role] ?? 'role.lawyer');
    els.incomingThreeWay.hidden = !o.three_way;
    els.incomingThreeWay.textContent = o.three_way
      ? t(o.role === 'interpreter' ? 'incoming.threeWayInterpreter' : 'incoming.threeWay')
      : '';
    els.incomingSoundOff.hidden = ringer.audible;
    const busy = state.accepting === o.request || state.connection !== 'up';
    els.accept.disabled = busy;
    // Accepted, waiting for the other of a three-way: the button says so.
    els.accept.dataset.i18n = state.waitingFor && state.accepting === o.request ? 'incoming.accepted' : 'incoming.accept';
    els.accept.textContent = t(els.accept.dataset.i18n);
    // A three-way we accepted may still be given up while the other is awaited.
    els.decline.disabled = busy && !(state.waitingFor && state.connection === 'up');
    tickOffer();
  }

  function tickOffer() {
    const o = state.offer;
    if (!o) return;
    const now = Date.now();
    els.incomingWaited.textContent = clock((now - o.since) / 1000);
    // A three-way starts when both have answered: the first waits for the other.
    const seconds = Math.max(0, Math.ceil((o.deadline - now) / 1000));
    els.incomingCountdown.textContent = state.accepting === o.request && state.waitingFor
      ? t(state.waitingFor === 'lawyer' ? 'incoming.waitingLawyer' : 'incoming.waitingInterpreter', { seconds })
      : t('incoming.countdown', { seconds });
    els.incomingSoundOff.hidden = ringer.audible;
  }

  /** A participant's role as the lawyer reads it; a resident on the hotline is a phone caller. */
  function roleText(peer) {
    if (peer.role === 'resident' && peer.channel === 'phone') return `☎ ${t('role.phoneCaller')}`;
    return t(ROLE_TEXT[peer.role] ?? 'role.resident');
  }

  function renderCall() {
    const c = state.call;
    els.callView.hidden = !c;
    if (!c) return;
    els.callLanguage.textContent = languageText(c.language);
    els.callTopic.textContent = topicText(c.topic);
    els.peers.replaceChildren(...c.peers.map((peer) =>
      h('li', { dataset: { role: peer.role, channel: peer.channel ?? '' } },
        h('span', { className: 'peer-role', textContent: roleText(peer) }),
        h('span', { className: 'peer-name', textContent: peer.name }),
        peer.channel === 'phone' ? h('span', { className: 'peer-channel', textContent: `☎ ${t('call.phone')}` }) : '')));
    els.network.dataset.quality = c.network;
    els.network.textContent = t(NETWORK_TEXT[c.network]);
    const lost = [...c.absent];
    els.peerNotice.hidden = lost.length === 0;
    els.peerNotice.textContent = lost.map((role) => t(PEER_LOST[role] ?? 'call.peerLost.resident')).join(' ');
    els.mediaNotice.hidden = !lacking;
    els.mediaNotice.textContent = lacking ? t(lacking === 'video' ? 'call.media.audioOnly' : 'call.media.none') : '';
    els.elsewhere.hidden = !c.elsewhere;
    els.takeHere.hidden = !c.elsewhere;
    els.stage.hidden = c.elsewhere;
    els.network.parentElement.hidden = c.elsewhere;
    els.mute.setAttribute('aria-pressed', String(c.muted));
    els.cameraOff.setAttribute('aria-pressed', String(c.cameraOff));
    els.mute.hidden = c.elsewhere || !localStream?.getAudioTracks().length;
    els.cameraOff.hidden = c.elsewhere || !localStream?.getVideoTracks().length;
    els.localVideo.hidden = !localStream?.getVideoTracks().length;
    els.playSound.hidden = !c.soundBlocked;
    els.remoteVideos.dataset.count = String(c.tiles.size);
    els.callWaiting.hidden = c.tiles.size > 0;
    const single = c.tiles.size === 1 && c.peers.length === 1 ? c.peers[0] : null;
    for (const [participant, { tile, video, caption }] of c.tiles) {
      const role = c.who[participant] ?? single?.role;
      const peer = c.peers.find((p) => p.participant === participant) ?? c.peers.find((p) => p.role === role);
      // A phone caller has no picture: the tile shows a telephone instead of black.
      tile.dataset.channel = peer?.channel ?? '';
      const who = role ? `${roleText(peer ?? { role })}${peer ? ` · ${peer.name}` : ''}` : t('call.participant');
      caption.textContent = who;
      video.setAttribute('aria-label', t('call.videoOf', { who }));
    }
    tickCall();
  }

  function tickCall() {
    if (!state.call) return;
    els.elapsed.textContent = clock((Date.now() - state.call.startedAt) / 1000);
  }

  function renderRecord() {
    const r = state.record;
    // Only the consultation's lawyer writes its record; an interpreter never gets the form.
    els.recordForm.hidden = !r;
    if (!r) return;
    const parts = [];
    if (r.language) parts.push(languageText(r.language));
    if (r.topic) parts.push(topicText(r.topic));
    if (r.startedAt) parts.push(formatTime(r.startedAt));
    els.recordContext.textContent = parts.join(' · ');
    renderRecordStatus();
    tickRecord();
  }

  function tickRecord() {
    const r = state.record;
    const inWrapUp = r && !state.call && r.wrapUpUntil;
    els.wrapUp.hidden = !inWrapUp;
    if (!inWrapUp) return;
    const left = r.wrapUpUntil - Date.now() / 1000;
    els.wrapUp.textContent = left > 0 ? t('record.wrapUp', { time: clock(left) }) : t('record.wrapUpOver');
  }

  function runTicker() {
    const needed = Boolean(state.offer || state.call || (state.record && state.record.wrapUpUntil));
    if (needed && !ticker) {
      ticker = setInterval(() => {
        tickOffer();
        tickCall();
        tickRecord();
      }, 1000);
    } else if (!needed && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
  }

  // Browsers let sound start only after a gesture: any click or key on the page will do.
  const unlock = () => {
    if (state.me) ringer.unlock();
  };
  document.addEventListener('pointerdown', unlock, { capture: true });
  document.addEventListener('keydown', unlock, { capture: true });

  onLanguageChange(() => {
    if (!state.me) return;
    render();
    renderPast();
    if (titleFlash.timer) document.title = titleFlash.on ? t('live.ringTitle') : t('page.title');
  });

  return {
    /** Logged in: connect, and show what the server says. */
    start(me) {
      if (link) this.stop();
      state = fresh();
      state.me = me;
      render();
      renderPast();
      connect();
      loadPast();
    },
    /** Logged out or expired: disconnect and close everything; `forget` also drops drafts and the duty choice. */
    stop({ forget = false } = {}) {
      link?.stop();
      link = null;
      clearOffer();
      if (state.call) endCall();
      ringer.stop();
      titleFlash.stop();
      state = fresh();
      clearInterval(ticker);
      ticker = null;
      if (forget) {
        writeSession(WANT_KEY, null);
        forgetDrafts();
      }
      els.summary.value = '';
      els.outcome.value = '';
      render();
      els.pastBody.replaceChildren();
      clearError(els.pastStatus);
    },
  };
}
