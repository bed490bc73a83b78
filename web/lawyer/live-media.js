// The media of a call in the lawyer's console: our camera and microphone
// (kept across a resumed call), the other participants' videos and the relay
// session (the shared call screen), the mute, camera and sound buttons, and
// what our own media lacks.

import { t } from '/web/shared/i18n.js';
import { $ } from '/web/shared/dom.js';
import { CallScreen, openCamera, hasLiveTrack, enableTracks, stopTracks } from '/web/shared/call-screen.js';

/**
 * @param {import('/web/lawyer/live.js').Panel} panel
 * @param {object} options
 * @param {() => void} options.onClosed the relay let us go
 * @param {() => void} options.onChange something to show again
 */
export function setupMedia(panel, { onClosed, onChange }) {
  const els = {
    localVideo: $('local-video', HTMLVideoElement),
    mediaNotice: $('media-notice'),
    mute: $('mute-mic', HTMLButtonElement),
    cameraOff: $('camera-off', HTMLButtonElement),
    playSound: $('play-sound', HTMLButtonElement),
    hangUp: $('hang-up', HTMLButtonElement),
  };

  /** @type {MediaStream | null} the local camera and microphone, kept across a resumed call */
  let localStream = null;
  /** @type {import('/web/shared/call-screen.js').Lacking} */
  let lacking = null;

  const screen = new CallScreen({
    grid: $('remote-videos'),
    waiting: $('call-waiting'),
    tileClass: 'tile',
    playMutedWhenBlocked: true,
    onEvent: (event) => {
      if (event.type === 'closed') onClosed();
    },
    onChange,
  });

  /**
   * Our microphone and camera, on or off as the call says.
   * @param {{muted: boolean, cameraOff: boolean}} call
   */
  function applyTrackSwitches(call) {
    enableTracks(localStream, 'audio', !call.muted);
    enableTracks(localStream, 'video', !call.cameraOff);
  }

  /**
   * Camera and microphone (opened once), then the relay session of the call's room.
   * @param {{token: string, muted: boolean, cameraOff: boolean}} call
   * @param {() => boolean} stillCurrent false once the call ended or another began
   */
  async function join(call, stillCurrent) {
    if (!hasLiveTrack(localStream)) {
      const opened = await openCamera();
      if (!stillCurrent()) {
        stopTracks(opened.stream);
        return;
      }
      localStream = opened.stream;
      lacking = opened.lacking;
    }
    applyTrackSwitches(call);
    els.localVideo.srcObject = localStream && localStream.getVideoTracks().length ? localStream : null;
    screen.join({ send: panel.send, token: call.token, stream: localStream });
    onChange();
  }

  els.mute.addEventListener('click', () => {
    const call = panel.call.current();
    if (!call) return;
    call.muted = !call.muted;
    applyTrackSwitches(call);
    onChange();
  });

  els.cameraOff.addEventListener('click', () => {
    const call = panel.call.current();
    if (!call) return;
    call.cameraOff = !call.cameraOff;
    applyTrackSwitches(call);
    onChange();
  });

  els.playSound.addEventListener('click', () => {
    if (!panel.call.current()) return;
    screen.unmute();
    onChange();
    els.hangUp.focus();
  });

  return {
    join,
    /**
     * Hands a server message to the relay session; false when it is not one of its.
     * @param {{type: string, [k: string]: any}} message
     */
    handle: (message) => screen.handle(message),
    /** Whether a relay session is open. */
    joined: () => Boolean(screen.relay),
    /** A new call: no tiles, no relay session (the camera stays). */
    clear: () => screen.end(),
    /** The call is over: no tiles, no relay session, camera and microphone off. */
    end() {
      screen.end();
      els.localVideo.srcObject = null;
      stopTracks(localStream);
      localStream = null;
      lacking = null;
    },
    /** The media link is down (the live connection, or the relay let us go). */
    lost() {
      screen.network = 'lost';
    },
    /** The network as the lawyer reads it: the relay sending us audio only means it is poor. */
    quality: () => (screen.network === 'good' && screen.relayAudioOnly ? 'poor' : screen.network),
    /**
     * The buttons, our own picture, what our media lacks, and each tile (captioned by `describe`).
     * @param {{muted: boolean, cameraOff: boolean, elsewhere: boolean}} call
     * @param {(participant: string, tile: import('/web/shared/call-screen.js').Tile, tiles: number) => void} describe
     */
    render(call, describe) {
      els.mediaNotice.hidden = !lacking;
      els.mediaNotice.textContent = lacking ? t(lacking === 'video' ? 'call.media.audioOnly' : 'call.media.none') : '';
      els.mute.setAttribute('aria-pressed', String(call.muted));
      els.cameraOff.setAttribute('aria-pressed', String(call.cameraOff));
      els.mute.hidden = call.elsewhere || !localStream?.getAudioTracks().length;
      els.cameraOff.hidden = call.elsewhere || !localStream?.getVideoTracks().length;
      els.localVideo.hidden = !localStream?.getVideoTracks().length;
      els.playSound.hidden = !screen.soundBlocked;
      screen.render((participant, tile) => describe(participant, tile, screen.tiles.size));
    },
  };
}
