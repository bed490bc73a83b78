// One participant's media session with the relay, over the live connection
// (PROTOCOL.md, `rtc.*`). The relay always makes the offers; this side
// answers, sends its camera and microphone on the sections the relay offers
// receive-only, shows one stream per other participant, and restarts ICE
// when its network blinks, without leaving the room.

/** How long ICE may stay `disconnected` before a restart is asked for. */
const RESTART_AFTER_MS = 2000;

/** The room a room token names (its payload is not secret; the server checks it). */
export function roomOf(token) {
  const payload = token.split('.')[1] ?? '';
  const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
  return JSON.parse(json).room?.room ?? null;
}

/** The mids of the sections an offer sends `recvonly` (ours to send on), by kind. */
export function publishSections(sdp) {
  const sections = sdp.split(/\r?\nm=/).slice(1);
  const mids = {};
  for (const section of sections) {
    const kind = section.startsWith('audio') ? 'audio' : section.startsWith('video') ? 'video' : null;
    const mid = section.match(/\r?\na=mid:(\S+)/)?.[1];
    if (kind && mid && /\r?\na=recvonly/.test(section) && !(kind in mids)) mids[kind] = mid;
  }
  return mids;
}

export class RelayCall {
  /**
   * @param {object} options
   * @param {(message: object) => boolean} options.send sends on the live connection
   * @param {string} options.token the room token
   * @param {MediaStream|null} options.stream our camera and microphone
   * @param {(stream: MediaStream, participant: string) => void} options.onStream a participant's media arrived
   * @param {(participant: string) => void} [options.onStreamEnded]
   * @param {(event: {type: string, [k: string]: any}) => void} [options.onEvent] connection, audio_only, closed
   * @param {'all'|'relay'} [options.iceTransportPolicy] 'relay' sends everything through TURN
   */
  constructor({ send, token, stream, onStream, onStreamEnded = () => {}, onEvent = () => {}, iceTransportPolicy = 'all' }) {
    this.send = send;
    this.token = token;
    this.room = roomOf(token);
    this.stream = stream;
    this.onStream = onStream;
    this.onStreamEnded = onStreamEnded;
    this.onEvent = onEvent;
    this.queue = Promise.resolve();
    this.published = false;
    this.closed = false;
    this.restartTimer = null;
    this.streams = new Map();
    this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: [], iceTransportPolicy });
    this.pc.addEventListener('track', (event) => {
      const remote = event.streams[0];
      if (!remote || this.streams.has(remote.id)) return;
      this.streams.set(remote.id, remote);
      remote.addEventListener('removetrack', () => {
        if (remote.getTracks().length === 0) {
          this.streams.delete(remote.id);
          this.onStreamEnded(remote.id);
        }
      });
      this.onStream(remote, remote.id);
    });
    this.pc.addEventListener('icecandidate', (event) => {
      if (event.candidate) this.send({ type: 'rtc.candidate', room: this.room, candidate: event.candidate.toJSON() });
    });
    this.pc.addEventListener('iceconnectionstatechange', () => this.watchIce());
  }

  join() {
    this.send({ type: 'rtc.join', token: this.token });
  }

  /** Hands a server message to this call; false when it is not ours. */
  handle(message) {
    if (!message.type?.startsWith('rtc.') || message.room !== this.room) return false;
    // One at a time: an offer must be answered before the next is applied.
    // A hang-up can close the connection half-way through applying an offer;
    // what fails after that is the hang-up, not an error.
    this.queue = this.queue
      .then(() => this.apply(message))
      .catch((error) => {
        if (!this.closed) console.error('call', error);
      });
    return true;
  }

  async apply(message) {
    if (this.closed) return;
    switch (message.type) {
      case 'rtc.ice_servers':
        // TURN for networks that block UDP; it arrives before the first offer.
        this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: message.ice_servers });
        break;
      case 'rtc.offer': {
        await this.pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
        if (!this.published) await this.publish(message.sdp);
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
        if (this.closed) return;
        this.send({ type: 'rtc.answer', room: this.room, sdp: this.pc.localDescription.sdp });
        break;
      }
      case 'rtc.audio_only':
        this.onEvent({ type: 'audio_only', on: message.on });
        break;
      case 'rtc.connection':
        this.onEvent({ type: 'connection', state: message.state });
        break;
      case 'rtc.closed':
        this.onEvent({ type: 'closed', reason: message.reason });
        this.close();
        break;
      default:
        break;
    }
  }

  async publish(sdp) {
    this.published = true;
    if (!this.stream) return;
    const mids = publishSections(sdp);
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = Object.keys(mids).find((k) => mids[k] === transceiver.mid);
      const track = kind && this.stream.getTracks().find((t) => t.kind === kind);
      if (!track) continue;
      transceiver.direction = 'sendonly';
      await transceiver.sender.replaceTrack(track);
      if (this.closed) return;
      transceiver.sender.setStreams?.(this.stream);
    }
  }

  watchIce() {
    const state = this.pc.iceConnectionState;
    if (state === 'connected' || state === 'completed') {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    } else if ((state === 'disconnected' || state === 'failed') && !this.restartTimer) {
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        const now = this.pc.iceConnectionState;
        if (now === 'disconnected' || now === 'failed') this.send({ type: 'rtc.restart', room: this.room });
      }, state === 'failed' ? 0 : RESTART_AFTER_MS);
    }
  }

  /** Receive audio only (our own choice), or video again. */
  setAudioOnly(on) {
    this.send({ type: 'rtc.audio_only', room: this.room, on });
  }

  leave() {
    this.send({ type: 'rtc.leave', room: this.room });
    this.close();
  }

  close() {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.pc.close();
  }
}
