// The call in the lawyer's console (`consult.started`): its media
// (live-media.js: the videos, mute and camera), hang up, the elapsed time, the
// network, who is in the call, and a notice when one of them dropped out.
//
// The server tells every connection of the account about a call. Its media
// belongs to one tab: the one that answered, or the one that had it (before a
// reload too: the consultation is kept per tab). Other tabs offer to take it over.

import { seg } from '/web/shared/api.js';
import { t } from '/web/shared/i18n.js';
import { $, h } from '/web/shared/dom.js';
import { NETWORK_ERROR } from '/web/lawyer/live-duty.js';
import { setupMedia } from '/web/lawyer/live-media.js';
import { ROLE_TEXT, clock, languageText, topicText } from '/web/lawyer/live-text.js';
import { readSession, writeSession } from '/web/lawyer/tab-storage.js';

/** The consultation whose media this tab carries (so that a reload takes it back). */
const CALL_KEY = 'cloudlaw.lawyer.call';
/** How often the relay may let us go before this tab stops joining again. */
const MAX_REJOINS = 3;

const PEER_LOST = { resident: 'call.peerLost.resident', lawyer: 'call.peerLost.lawyer', interpreter: 'call.peerLost.interpreter' };
const NETWORK_TEXT = {
  connecting: 'call.net.connecting',
  good: 'call.net.good',
  poor: 'call.net.audioOnly',
  lost: 'call.net.lost',
};

/** @typedef {{role: string, name: string, participant?: string, channel?: string}} Peer */

/**
 * The call in progress.
 * @typedef {object} Call
 * @property {string} consultation
 * @property {string} token the room token
 * @property {string} role ours: lawyer or interpreter
 * @property {string} language
 * @property {string} topic
 * @property {Peer[]} peers
 * @property {number} startedAt ms
 * @property {boolean} elsewhere another tab carries the media
 * @property {Set<string>} absent the roles that dropped out
 * @property {Record<string, string>} who participant id -> role: from the peers, else from the consultation's record
 * @property {boolean} muted
 * @property {boolean} cameraOff
 * @property {number} rejoins how often the relay let us go
 */

/**
 * A participant's role as the lawyer reads it; a resident on the hotline is a phone caller.
 * @param {{role: string, channel?: string}} peer
 */
function roleText(peer) {
  if (peer.role === 'resident' && peer.channel === 'phone') return `☎ ${t('role.phoneCaller')}`;
  return t(ROLE_TEXT[peer.role] ?? 'role.resident');
}

/**
 * A consultation's record, asked again a few times while it is not on disk
 * yet (a call that just started); null when it does not come.
 * @param {import('/web/shared/api.js').Client} client
 * @param {string} consultation
 * @param {() => boolean} stillWanted false once the call it is for is over
 */
async function fetchConsultation(client, consultation, stillWanted) {
  for (let attempt = 0; attempt < 4; attempt += 1) {
    try {
      return await client.get(`/api/consultations/${seg(consultation)}`);
    } catch (error) {
      // Just started: the record may not be on disk yet.
      if (error.status && error.status !== 404) return null;
      await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
      if (!stillWanted()) return null;
    }
  }
  return null;
}

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 */
export function setupCall(panel) {
  const els = {
    view: $('call-view'),
    peerNotice: $('peer-notice'),
    elsewhere: $('call-elsewhere'),
    takeHere: $('take-call-here', HTMLButtonElement),
    stage: $('call-stage'),
    hangUp: $('hang-up', HTMLButtonElement),
    elapsed: $('call-elapsed'),
    language: $('call-language'),
    topic: $('call-topic'),
    network: $('network-quality'),
    peers: $('call-peers'),
  };

  /** @type {Call | null} */
  let call = null;
  /** Bumped whenever a call starts or ends, so that late answers (getUserMedia, fetches) of an old one are dropped. */
  let generation = 0;

  const media = setupMedia(panel, {
    onClosed: () => {
      if (call) rejoinLater(call);
    },
    onChange: () => render(),
  });

  /**
   * The relay let us go (our media stayed down too long): while the
   * consultation goes on, join its room again, a few times at most.
   * @param {Call} current
   */
  function rejoinLater(current) {
    media.lost();
    current.rejoins += 1;
    if (current.rejoins > MAX_REJOINS) return;
    const joined = generation;
    setTimeout(() => {
      if (call === current && joined === generation && !media.joined() && !current.elsewhere) joinMedia(current, joined);
    }, 1500 * current.rejoins);
  }

  /** @param {any} message a `consult.started` */
  async function start(message) {
    const answeredHere = panel.offer.started(message.request);
    panel.duty.setNotice(null);
    const same = call?.consultation === message.consultation;
    // The server sends a new call to the connection that accepted, and tells
    // the account's other connections it is `elsewhere`.
    const here = !message.elsewhere
      && (answeredHere || !message.resumed || (same && !call?.elsewhere) || readSession(CALL_KEY) === message.consultation);
    if (call && !same) end();
    const current = ++generation;
    const previous = same ? call : null;
    // A resumed call: the old media session died with the old connection.
    media.clear();
    /** @type {Peer[]} */
    const peers = message.peers ?? [];
    call = {
      consultation: message.consultation,
      token: message.token,
      role: message.role,
      language: message.language,
      topic: message.topic,
      peers,
      startedAt: previous?.startedAt ?? Date.now(),
      elsewhere: !here,
      absent: new Set(),
      who: { ...(previous?.who ?? {}), ...Object.fromEntries(peers.filter((p) => p.participant).map((p) => [p.participant, p.role])) },
      muted: previous?.muted ?? false,
      cameraOff: previous?.cameraOff ?? false,
      rejoins: 0,
    };
    panel.render();
    // A resumed call started earlier; an older server names no participants.
    if (message.resumed || peers.some((p) => !p.participant)) learnParticipants(message.consultation, current);
    if (!here) return;
    if (!message.resumed) {
      els.hangUp.focus();
      panel.past.load();
    }
    await joinMedia(call, current);
  }

  /**
   * This tab takes the call's media: camera, microphone and the relay.
   * @param {Call} current
   * @param {number} joined the generation it belongs to
   */
  async function joinMedia(current, joined) {
    writeSession(CALL_KEY, current.consultation);
    if (current.role === 'lawyer' && panel.record.openId() !== current.consultation) {
      panel.record.open({ id: current.consultation, language: current.language, topic: current.topic, startedAt: current.startedAt / 1000 });
      panel.render();
    }
    await media.join(current, () => joined === generation);
  }

  els.takeHere.addEventListener('click', () => {
    if (!call?.elsewhere) return;
    call.elsewhere = false;
    panel.render();
    els.hangUp.focus();
    joinMedia(call, generation);
  });

  /**
   * Who is who in the room (stream ids are participant ids), and when the call started.
   * @param {string} consultation
   * @param {number} joined the generation it belongs to
   */
  async function learnParticipants(consultation, joined) {
    const c = await fetchConsultation(panel.client, consultation, () => joined === generation);
    if (!c || joined !== generation || !call) return;
    /** @type {Record<string, string>} */
    const who = {};
    if (c.terminal_id) who[c.terminal_id] = 'resident';
    if (c.lawyer_id) who[c.lawyer_id] = 'lawyer';
    if (c.interpreter_id) who[c.interpreter_id] = 'interpreter';
    call.who = { ...who, ...call.who };
    if (c.started_at) call.startedAt = c.started_at * 1000;
    panel.record.learnStart(consultation, c.started_at);
    render();
    panel.record.render();
  }

  els.hangUp.addEventListener('click', () => {
    if (!call) return;
    if (!panel.send({ type: 'consult.hangup', consultation: call.consultation })) panel.duty.setNotice(NETWORK_ERROR);
  });

  /** @param {{consultation: string, wrap_up_until?: number}} message a `consult.ended` */
  function ended(message) {
    if (call?.consultation !== message.consultation) return;
    const role = call.role;
    end();
    if (role === 'lawyer' && panel.record.wrapUp(message.consultation, message.wrap_up_until ?? null)) {
      panel.render();
      panel.record.focus();
    } else {
      panel.duty.setNotice({ key: 'notice.callEnded', kind: 'info' });
      panel.render();
      panel.focusHeading();
    }
    panel.past.load();
  }

  /** Closes the call's media: the relay session, the camera, the videos. */
  function end() {
    generation += 1;
    const current = call;
    call = null;
    if (current && readSession(CALL_KEY) === current.consultation) writeSession(CALL_KEY, null);
    media.end();
    panel.render();
  }

  function render() {
    const c = call;
    els.view.hidden = !c;
    if (!c) return;
    els.language.textContent = languageText(c.language);
    els.topic.textContent = topicText(c.topic);
    els.peers.replaceChildren(...c.peers.map((peer) =>
      h('li', { dataset: { role: peer.role, channel: peer.channel ?? '' } },
        h('span', { className: 'peer-role', textContent: roleText(peer) }),
        h('span', { className: 'peer-name', textContent: peer.name }),
        peer.channel === 'phone' ? h('span', { className: 'peer-channel', textContent: `☎ ${t('call.phone')}` }) : '')));
    const quality = media.quality();
    els.network.dataset.quality = quality;
    els.network.textContent = t(NETWORK_TEXT[quality]);
    const lost = [...c.absent];
    els.peerNotice.hidden = lost.length === 0;
    els.peerNotice.textContent = lost.map((role) => t(PEER_LOST[role] ?? 'call.peerLost.resident')).join(' ');
    els.elsewhere.hidden = !c.elsewhere;
    els.takeHere.hidden = !c.elsewhere;
    els.stage.hidden = c.elsewhere;
    els.network.parentElement.hidden = c.elsewhere;
    media.render(c, (participant, { figure, video, caption }, tiles) => {
      const single = tiles === 1 && c.peers.length === 1 ? c.peers[0] : null;
      const role = c.who[participant] ?? single?.role;
      const peer = c.peers.find((p) => p.participant === participant) ?? c.peers.find((p) => p.role === role);
      // A phone caller has no picture: the tile shows a telephone instead of black.
      figure.dataset.channel = peer?.channel ?? '';
      const who = role ? `${roleText(peer ?? { role })}${peer ? ` · ${peer.name}` : ''}` : t('call.participant');
      caption.textContent = who;
      video.setAttribute('aria-label', t('call.videoOf', { who }));
    });
    tick();
  }

  function tick() {
    if (!call) return;
    els.elapsed.textContent = clock((Date.now() - call.startedAt) / 1000);
  }

  return {
    start,
    ended,
    end,
    render,
    tick,
    /** The call in progress, or null. */
    current: () => call,
    /**
     * Hands a server message to the call's media; false when it is not one of its.
     * @param {{type: string, [k: string]: any}} message
     */
    handle: (message) => media.handle(message),
    /** @param {{consultation: string, role: string, present: boolean}} message a `consult.peer` */
    peer(message) {
      if (call?.consultation !== message.consultation) return;
      if (message.present) call.absent.delete(message.role);
      else call.absent.add(message.role);
      render();
    },
    /** The live connection went down: so did the call's media. */
    linkLost() {
      if (call) media.lost();
    },
  };
}
