// Talking now at the kiosk, the call (`consult.started`): the lawyer large
// (then the interpreter), the resident small, a notice when one of them
// dropped out, the network's quality (from the browser's own statistics),
// sound only, and hang up.

import { t } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { CallScreen, enableTracks } from '/web/shared/call-screen.js';

/** How often the call's network quality is measured. */
const STATS_EVERY_MS = 2_000;

/** @typedef {{participant?: string, role: string}} Peer */

/**
 * @param {import('/web/terminal/consult.js').Kiosk} kiosk
 */
export function setupCall(kiosk) {
  const els = {
    stage: $('call-stage'),
    localVideo: $('local-video', HTMLVideoElement),
    peerAway: $('peer-away'),
    network: $('network'),
    networkText: $('network-text'),
    audioOnly: $('audio-only', HTMLButtonElement),
    hangUp: $('hang-up', HTMLButtonElement),
  };

  const fresh = () => ({
    /** @type {Peer[]} */
    peers: [],
    /** @type {string | null} the role that dropped out */
    peerAway: null,
    /** Our own choice: receive audio only and send no video. */
    audioOnly: false,
    /** The relay sends us audio only (our network is too poor), and it was not our choice. */
    networkAudioOnly: false,
  });
  let state = fresh();
  /** @type {ReturnType<typeof setInterval> | null} */
  let statsTimer = null;

  /** @param {string} participant */
  const peerOf = (participant) => state.peers.find((peer) => peer.participant === participant) ?? null;

  const screen = new CallScreen({
    grid: els.stage,
    waiting: $('call-connecting'),
    tileClass: 'remote',
    // The lawyer first, then the interpreter.
    rank: (participant) => (peerOf(participant)?.role === 'lawyer' ? 0 : 1),
    onEvent: (event) => {
      if (event.type === 'audio_only') state.networkAudioOnly = event.on && !state.audioOnly;
    },
    onChange: () => render(),
  });

  /** @param {any} message a `consult.started` */
  async function start(message) {
    const visit = kiosk.visit;
    const resumed = visit.flow === 'call' && visit.consultation === message.consultation;
    visit.flow = 'call';
    visit.consultation = message.consultation;
    visit.request = message.request;
    visit.language = message.language ?? visit.language;
    visit.topic = message.topic ?? visit.topic;
    visit.note = null;
    state.peers = message.peers ?? [];
    state.peerAway = null;
    kiosk.check.leave();
    // A resumed call keeps its pictures until the new media session brings them again.
    if (resumed) screen.close();
    else screen.end();
    kiosk.show('call');
    render();
    await kiosk.check.openDevices();
    if (visit !== kiosk.visit || visit.flow !== 'call' || visit.consultation !== message.consultation) return;
    const stream = kiosk.check.stream();
    els.localVideo.srcObject = stream;
    applyAudioOnly();
    screen.join({ send: kiosk.send, token: message.token, stream });
    startStats();
  }

  function render() {
    if (kiosk.visit.flow !== 'call') return;
    screen.render((participant, { caption }) => {
      const peer = peerOf(participant);
      caption.textContent = peer ? t(`call.role.${peer.role}`) : '';
    });
    els.peerAway.hidden = !state.peerAway;
    els.peerAway.textContent = state.peerAway ? t(`call.away.${state.peerAway === 'interpreter' ? 'interpreter' : 'lawyer'}`) : '';
    const level = state.networkAudioOnly && screen.network === 'good' ? 'poor' : screen.network;
    els.network.dataset.level = level;
    els.networkText.textContent = t(state.networkAudioOnly ? 'call.network.audioOnly' : `call.network.${level}`);
    els.audioOnly.setAttribute('aria-pressed', String(state.audioOnly));
  }

  /** Our own choice: receive audio only and stop sending video. */
  function applyAudioOnly() {
    enableTracks(kiosk.check.stream(), 'video', !state.audioOnly);
    els.localVideo.hidden = state.audioOnly;
    els.stage.classList.toggle('audio-only', state.audioOnly);
  }

  els.audioOnly.addEventListener('click', () => {
    if (kiosk.visit.flow !== 'call') return;
    state.audioOnly = !state.audioOnly;
    if (state.audioOnly) state.networkAudioOnly = false;
    screen.setAudioOnly(state.audioOnly);
    applyAudioOnly();
    render();
  });

  els.hangUp.addEventListener('click', () => {
    const visit = kiosk.visit;
    if (visit.flow !== 'call' || !visit.consultation) return;
    if (!kiosk.send({ type: 'consult.hangup', consultation: visit.consultation })) {
      // Offline: the call is over for the resident; the server ends it after its grace period.
      end();
      kiosk.rating.show('call.lost');
    }
  });

  /** Loss and round trip from the browser's own statistics, every two seconds. */
  function startStats() {
    if (statsTimer) clearInterval(statsTimer);
    /** @type {{received: number, lost: number} | null} */
    let last = null;
    statsTimer = setInterval(async () => {
      const pc = screen.relay?.pc;
      if (!pc || screen.network === 'lost' || screen.network === 'connecting') return;
      let received = 0;
      let lost = 0;
      /** @type {number | null} */
      let rtt = null;
      try {
        const report = await pc.getStats();
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
        screen.network = loss > 0.1 || (rtt ?? 0) > 1 ? 'poor' : loss > 0.03 || (rtt ?? 0) > 0.4 ? 'fair' : 'good';
        render();
      }
      last = { received, lost };
    }, STATS_EVERY_MS);
  }

  /** The call's media ends: the relay session, the pictures, our small picture. */
  function end() {
    if (statsTimer) clearInterval(statsTimer);
    statsTimer = null;
    screen.end();
    els.localVideo.srcObject = null;
  }

  return {
    start,
    end,
    render,
    /**
     * Hands a server message to the call's media; false when it is not one of its.
     * @param {{type: string, [k: string]: any}} message
     */
    handle: (message) => screen.handle(message),
    /** @param {{role: string, present: boolean}} message a `consult.peer` */
    peer(message) {
      state.peerAway = message.present ? null : message.role;
      render();
    },
    /** @param {{requeued?: boolean, reason?: string}} message a `consult.ended` */
    ended(message) {
      end();
      if (message.requeued) {
        kiosk.waiting.requeued();
        return;
      }
      kiosk.check.stopDevices();
      kiosk.rating.show(message.reason === 'hung_up' ? null : 'call.lost');
    },
    /** Forgets the last resident's call. */
    reset() {
      end();
      state = fresh();
      els.localVideo.hidden = false;
      els.stage.classList.remove('audio-only');
    },
  };
}
