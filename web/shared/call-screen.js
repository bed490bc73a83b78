// What the kiosk's and the lawyer's call screens share: our camera and
// microphone (and what is missing of them), one video tile per other
// participant, whether the media link is up, and the RelayCall behind them.
// A resumed or rejoined call replaces the RelayCall while the tiles stay, so
// the picture does not blink. The words, the captions and where things go
// stay with each app.

import { RelayCall } from '/web/shared/call.js';

/** @typedef {'video' | 'audio' | 'all' | null} Lacking what our own media lacks */
/** @typedef {'connecting' | 'good' | 'fair' | 'poor' | 'lost'} Network the media link, as the apps show it */
/** @typedef {{figure: HTMLElement, video: HTMLVideoElement, caption: HTMLElement}} Tile */

/**
 * Camera and microphone, else the microphone alone, else (with `videoAlone`)
 * the camera alone, else nothing; `lacking` says what is missing.
 * @param {{videoAlone?: boolean}} [options]
 * @returns {Promise<{stream: MediaStream | null, lacking: Lacking}>}
 */
export async function openCamera({ videoAlone = false } = {}) {
  /** @type {{constraints: MediaStreamConstraints, lacking: Lacking}[]} */
  const tries = [
    { constraints: { audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } }, lacking: null },
    { constraints: { audio: true }, lacking: 'video' },
  ];
  if (videoAlone) tries.push({ constraints: { video: true }, lacking: 'audio' });
  for (const { constraints, lacking } of tries) {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia(constraints), lacking };
    } catch {
      // No such device, not allowed, or no media at all here: try with less.
    }
  }
  return { stream: null, lacking: 'all' };
}

/**
 * Whether a stream has a live track (of a kind).
 * @param {MediaStream | null} stream
 * @param {'audio' | 'video'} [kind]
 */
export function hasLiveTrack(stream, kind) {
  return Boolean(stream?.getTracks().some((track) => (!kind || track.kind === kind) && track.readyState === 'live'));
}

/**
 * Sends a kind of our tracks, or not (mute, camera off, audio only).
 * @param {MediaStream | null} stream
 * @param {'audio' | 'video'} kind
 * @param {boolean} on
 */
export function enableTracks(stream, kind, on) {
  for (const track of stream?.getTracks() ?? []) if (track.kind === kind) track.enabled = on;
}

/**
 * Turns the camera and microphone off for good.
 * @param {MediaStream | null} stream
 */
export function stopTracks(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

/** The other participants' videos and the media session with the relay. */
export class CallScreen {
  /**
   * @param {object} options
   * @param {HTMLElement} options.grid where the tiles go; its data-count says how many there are
   * @param {HTMLElement} options.waiting shown until the first tile
   * @param {string} options.tileClass the class of a tile's <figure>
   * @param {(participant: string) => number} [options.rank] tiles of a lower rank come first (else in arrival order)
   * @param {boolean} [options.playMutedWhenBlocked] when the browser refuses to play sound before a
   *   gesture, play muted and set `soundBlocked` until unmute()
   * @param {(event: {type: string, [k: string]: any}) => void} [options.onEvent] every event of the
   *   relay (connection, audio_only, closed), after `network` took it in
   * @param {() => void} options.onChange the tiles or the link changed: render
   */
  constructor({ grid, waiting, tileClass, rank, playMutedWhenBlocked = false, onEvent = () => {}, onChange }) {
    this.grid = grid;
    this.waiting = waiting;
    this.tileClass = tileClass;
    this.rank = rank ?? null;
    this.playMutedWhenBlocked = playMutedWhenBlocked;
    this.onEvent = onEvent;
    this.onChange = onChange;
    /** @type {Map<string, Tile>} participant id -> tile */
    this.tiles = new Map();
    /** @type {RelayCall | null} */
    this.relay = null;
    /** @type {Network} set from the relay's connection events; an app may refine it */
    this.network = 'connecting';
    /** The relay's last word: it sends us audio only (our network is too poor). */
    this.relayAudioOnly = false;
    /** A video plays muted: the browser wants a gesture first (see unmute()). */
    this.soundBlocked = false;
  }

  /**
   * Joins a room with our stream; a relay session from before is closed first, the tiles stay.
   * @param {object} options
   * @param {(message: object) => boolean} options.send sends on the live connection
   * @param {string} options.token the room token
   * @param {MediaStream | null} options.stream our camera and microphone
   */
  join({ send, token, stream }) {
    this.close();
    const relay = new RelayCall({
      send,
      token,
      stream,
      onStream: (remote, participant) => {
        if (this.relay === relay) this.add(participant, remote);
      },
      onStreamEnded: (participant) => {
        if (this.relay === relay) this.remove(participant);
      },
      onEvent: (event) => {
        if (this.relay === relay) this.relayEvent(event);
      },
    });
    this.relay = relay;
    relay.join();
  }

  /**
   * Hands a server message to the relay session; false when it is not one of its.
   * @param {{type: string, [k: string]: any}} message
   */
  handle(message) {
    return Boolean(this.relay?.handle(message));
  }

  /** @param {{type: string, [k: string]: any}} event */
  relayEvent(event) {
    if (event.type === 'connection') {
      this.network = event.state === 'connected' ? 'good' : event.state === 'connecting' ? 'connecting' : 'lost';
    } else if (event.type === 'audio_only') {
      this.relayAudioOnly = Boolean(event.on);
    } else if (event.type === 'closed') {
      // The relay let us go; RelayCall has closed itself.
      this.relay = null;
    }
    this.onEvent(event);
    this.onChange();
  }

  /**
   * Receive audio only (our own choice), or video again.
   * @param {boolean} on
   */
  setAudioOnly(on) {
    this.relay?.setAudioOnly(on);
  }

  /** Closes the relay session; the tiles stay (a resumed call takes them over). */
  close() {
    this.relay?.close();
    this.relay = null;
  }

  /** Closes the relay session and takes every tile away: the call is over. */
  end() {
    this.close();
    this.clear();
  }

  /** Takes every tile away, for a new call. */
  clear() {
    for (const participant of [...this.tiles.keys()]) this.drop(participant);
    this.network = 'connecting';
    this.relayAudioOnly = false;
    this.soundBlocked = false;
  }

  /**
   * A participant's media arrived: their tile (made now, or the one they had) shows it.
   * @param {string} participant
   * @param {MediaStream} stream
   */
  add(participant, stream) {
    let tile = this.tiles.get(participant);
    if (!tile) {
      const video = document.createElement('video');
      video.dataset.testid = 'remote-video';
      video.dataset.participant = participant;
      video.autoplay = true;
      video.playsInline = true;
      const caption = document.createElement('figcaption');
      const figure = document.createElement('figure');
      figure.className = this.tileClass;
      figure.dataset.participant = participant;
      figure.append(video, caption);
      tile = { figure, video, caption };
      this.tiles.set(participant, tile);
      this.grid.insertBefore(figure, this.anchorFor(participant));
    }
    tile.video.srcObject = stream;
    this.play(tile.video);
    this.onChange();
  }

  /**
   * Where a new tile goes: after the tiles of its rank and before, or at the end.
   * @param {string} participant
   * @returns {Node | null}
   */
  anchorFor(participant) {
    const rank = this.rank;
    if (!rank) return null;
    const before = [...this.tiles.keys()].filter((id) => id !== participant && rank(id) <= rank(participant));
    const last = before.length ? this.tiles.get(before[before.length - 1]) : null;
    return last ? last.figure.nextSibling : this.grid.firstChild;
  }

  /** @param {HTMLVideoElement} video */
  play(video) {
    video.play().catch(() => {
      if (!this.playMutedWhenBlocked) return;
      // Autoplay with sound needs a user gesture (after a reload): play muted, and say so.
      video.muted = true;
      video.play().catch(() => {});
      this.soundBlocked = true;
      this.onChange();
    });
  }

  /** After a gesture: the sound of every video. */
  unmute() {
    for (const { video } of this.tiles.values()) {
      video.muted = false;
      video.play().catch(() => {});
    }
    this.soundBlocked = false;
  }

  /**
   * A participant's media ended.
   * @param {string} participant
   */
  remove(participant) {
    if (!this.tiles.has(participant)) return;
    this.drop(participant);
    this.onChange();
  }

  /** @param {string} participant */
  drop(participant) {
    const tile = this.tiles.get(participant);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.figure.remove();
    this.tiles.delete(participant);
  }

  /**
   * Shows how many tiles there are (the waiting notice until the first) and lets the app caption each.
   * @param {(participant: string, tile: Tile) => void} describe
   */
  render(describe) {
    this.grid.dataset.count = String(this.tiles.size);
    this.waiting.hidden = this.tiles.size > 0;
    for (const [participant, tile] of this.tiles) describe(participant, tile);
  }
}
