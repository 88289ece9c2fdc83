/**
 * media.js: the agent's side of a consult call (camera, microphone, screen sharing)
 * on top of VitrineRoom, and the ring tone.
 */

import { VitrineRoom } from "../vitrine-client.js";
import { t } from "./strings.js";

// -- ring tone ---------------------------------------------------------------------------

/**
 * A short two-tone ring made with an oscillator. Browsers only allow sound after the
 * user interacted with the page, so the AudioContext is created on the first gesture
 * (unlock()); before that, and whenever audio is blocked, ringing is silent and never throws.
 */
export class RingTone {
  constructor() {
    this._ctx = null;
    this._timer = null;
  }

  /** Call from a user gesture (click, key press). */
  unlock() {
    try {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!this._ctx && Context) this._ctx = new Context();
      if (this._ctx && this._ctx.state === "suspended") this._ctx.resume().catch(() => {});
    } catch {
      this._ctx = null;
    }
  }

  start() {
    if (this._timer) return;
    this._burst();
    this._timer = setInterval(() => this._burst(), 2500);
  }

  stop() {
    clearInterval(this._timer);
    this._timer = null;
  }

  _burst() {
    const ctx = this._ctx;
    if (!ctx || ctx.state !== "running") return;
    try {
      const t0 = ctx.currentTime + 0.02;
      for (const [offset, freq] of [[0, 880], [0.25, 660], [0.6, 880], [0.85, 660]]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0, t0 + offset);
        gain.gain.linearRampToValueAtTime(0.12, t0 + offset + 0.02);
        gain.gain.linearRampToValueAtTime(0, t0 + offset + 0.2);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t0 + offset);
        osc.stop(t0 + offset + 0.22);
      }
    } catch {
      /* audio is a nicety: never let it break the console */
    }
  }
}

// -- local media ---------------------------------------------------------------------------

/** A video track drawn on a canvas, sent when there is no camera so a screen share can still replace it. */
function placeholderVideoTrack(label) {
  try {
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const g = canvas.getContext("2d");
    const draw = () => {
      g.fillStyle = "#1b2128";
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = "#9aa5b1";
      g.font = "20px system-ui, sans-serif";
      g.textAlign = "center";
      g.fillText(label, canvas.width / 2, canvas.height / 2);
    };
    draw();
    const stream = canvas.captureStream(1);
    const track = stream.getVideoTracks()[0];
    // Some browsers only emit a frame when the canvas changes.
    const timer = setInterval(draw, 1000);
    track.addEventListener("ended", () => clearInterval(timer));
    track._placeholderTimer = timer;
    return track || null;
  } catch {
    return null;
  }
}

async function getLocalMedia() {
  const video = { width: { ideal: 640 }, height: { ideal: 480 } };
  const attempts = [[{ audio: true, video }, null],
    [{ audio: true }, t("media_no_camera")],
    [{ video }, t("media_no_microphone")]];
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: new MediaStream(), warning: t("media_no_access") };
  }
  for (const [constraints, warning] of attempts) {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia(constraints), warning };
    } catch {
      /* try the next, smaller request */
    }
  }
  return { stream: new MediaStream(), warning: t("media_no_devices") };
}

let standby = null; // { setup, media, room, ready, cancelled }: the call's room, joined while it rings

/** The agent's media for a call: a placeholder video when there is no camera, so a screen share can replace it. */
async function callMedia(name) {
  const { stream, warning } = await getLocalMedia();
  if (stream.getVideoTracks().length === 0) {
    const placeholder = placeholderVideoTrack(name || "Agent");
    if (placeholder) stream.addTrack(placeholder);
  }
  return { stream, warning };
}

/**
 * While the console rings, open the camera and join the call's room (`ring.setup`). Nobody else is
 * in it: the shopper is admitted only when the agent accepts. Accepting then finds the camera open
 * and the media connected (ICE, DTLS, the encoder running), and the shopper's first frame waits
 * only for their own connection. The camera light comes on while it rings.
 */
export function standBy(setup, name) {
  if (!setup || (standby && standby.setup.room === setup.room)) return;
  endStandBy();
  const entry = { setup, room: new VitrineRoom(), media: callMedia(name), cancelled: false };
  entry.ready = entry.media.then(({ stream }) => {
    if (entry.cancelled) throw new Error("the ring ended");
    return entry.room.connect({ url: window.location.origin, token: setup.token, stream, name, reconnect: true });
  });
  entry.ready.catch(() => {}); // a failed standby only means accepting connects from scratch
  standby = entry;
}

/** The ring ended without an answer here: leave the room and release the camera. */
export function endStandBy() {
  const entry = standby;
  standby = null;
  if (!entry) return;
  entry.cancelled = true;
  entry.room.close();
  entry.media.then(({ stream }) => stream.getTracks().forEach((t) => t.stop()), () => {});
}

/** The standby for this call's room, handed over to the call (or null: connect now). */
function takeStandBy(setup) {
  if (standby && standby.setup.room === setup.room) {
    const entry = standby;
    standby = null;
    return entry;
  }
  endStandBy();
  return null;
}

// -- the call ------------------------------------------------------------------------------

/**
 * One call: local media, the VitrineRoom, the remote video. Events: `message`
 * { text, kind } for the console's call status line, `sound-blocked`, `ended` { reason }
 * when the media session closed on its own.
 */
export class CallMedia extends EventTarget {
  constructor({ localVideo, remoteVideo }) {
    super();
    this.localVideo = localVideo;
    this.remoteVideo = remoteVideo;
    this.room = null;
    this.stream = null;
    this.cameraTrack = null;
    this.screenTrack = null;
    this._closed = false;
  }

  get sharing() {
    return Boolean(this.screenTrack);
  }

  async start(setup, name) {
    performance.mark("vitrine-agent:call-started");
    const pre = takeStandBy(setup);
    const { stream, warning } = await (pre ? pre.media : callMedia(name));
    performance.mark("vitrine-agent:media");
    if (this._closed) {
      if (pre) pre.room.close();
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    this.stream = stream;
    this.cameraTrack = stream.getVideoTracks()[0] || null;
    this._previewCamera();
    if (warning) this._message(warning, "warn");

    if (pre) {
      this._wire(pre.room);
      try {
        await pre.ready; // usually long done: the room was joined while it rang
        if (pre.room.pc && pre.room.pc.connectionState === "connected") this._state("connected", "ok");
        return;
      } catch {
        pre.room.close(); // the standby join failed: connect now, as without one
        if (this._closed) return;
      }
    }
    const room = this._wire(new VitrineRoom());
    this._state("connecting");
    await room.connect({ url: window.location.origin, token: setup.token, stream, name, reconnect: true });
  }

  /** Make `room` this call's room: its remote video, state messages and end. */
  _wire(room) {
    this.room = room;
    const on = (type, handler) => room.addEventListener(type, (e) => !this._closed && this.room === room
      && handler(e.detail));
    on("track", ({ stream: remote }) => this._attachRemote(remote));
    on("connectionstate", ({ state }) => {
      if (state === "connected") this._state("connected", "ok");
      else if (state === "failed") this._message(t("media_failed"), "error");
      else if (state === "disconnected") this._message(t("media_unstable"), "warn");
    });
    on("error", ({ code, message }) => this._message(`${message} (${code})`, "error"));
    on("leave", ({ reason }) => this._message(t("media_ended", { reason }), "warn"));
    on("reconnecting", () => this._message(t("media_lost"), "warn"));
    on("close", () => this._emit("ended", { reason: "closed" }));
    return room;
  }

  _attachRemote(remote) {
    const video = this.remoteVideo;
    if (video.srcObject !== remote) video.srcObject = remote;
    const played = video.play();
    if (played) {
      played.catch(() => {
        // Sound not allowed yet: play muted and let the agent enable it with a click.
        video.muted = true;
        video.play().catch(() => {});
        this._emit("sound-blocked", {});
      });
    }
  }

  enableSound() {
    this.remoteVideo.muted = false;
    this.remoteVideo.play().catch(() => {});
  }

  /** Toggle the microphone; returns true when now muted. */
  toggleMute() {
    const tracks = this.stream ? this.stream.getAudioTracks() : [];
    if (!tracks.length) return null;
    const muted = tracks.every((t) => !t.enabled);
    tracks.forEach((t) => { t.enabled = muted; });
    return !muted;
  }

  /** Toggle the camera (black frames while off); returns true when now off. */
  toggleCamera() {
    const track = this.cameraTrack;
    if (!track) return null;
    track.enabled = !track.enabled;
    return !track.enabled;
  }

  /** Start sharing the screen in place of the camera. Throws an Error with a message for the agent. */
  async startShare() {
    if (this.screenTrack) return;
    if (!navigator.mediaDevices || typeof navigator.mediaDevices.getDisplayMedia !== "function") {
      throw new Error(t("share_unavailable"));
    }
    if (!this.room || typeof this.room.replaceTrack !== "function") {
      throw new Error(t("share_unsupported"));
    }
    if (!this.cameraTrack) throw new Error(t("share_no_video"));
    let display;
    try {
      display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    } catch (err) {
      if (err && err.name === "NotAllowedError") throw new Error(t("share_cancelled"));
      throw new Error(t("share_failed", { name: err && err.name ? err.name : "error" }));
    }
    const screen = display.getVideoTracks()[0];
    if (!screen) throw new Error(t("share_no_screen"));
    if (this._closed) {
      screen.stop();
      return;
    }
    let replaced;
    try {
      replaced = await this.room.replaceTrack("video", screen);
    } catch (err) {
      replaced = err;
    }
    if (replaced !== true && replaced !== undefined) {
      screen.stop();
      const why = replaced instanceof Error ? replaced.message : t("share_no_video_sent");
      throw new Error(t("share_not_sent", { why }));
    }
    this.screenTrack = screen;
    // The browser's own "Stop sharing" button ends the track: switch back to the camera.
    screen.addEventListener("ended", () => {
      if (this.screenTrack === screen) this.stopShare().catch(() => {});
    });
    this.localVideo.srcObject = new MediaStream([screen]);
    this.localVideo.classList.add("screen");
    this._emit("share", { sharing: true });
  }

  async stopShare() {
    const screen = this.screenTrack;
    if (!screen) return;
    this.screenTrack = null;
    try {
      if (this.room && this.cameraTrack && !this._closed) await this.room.replaceTrack("video", this.cameraTrack);
    } finally {
      screen.stop();
      this._previewCamera();
      this._emit("share", { sharing: false });
    }
  }

  _previewCamera() {
    this.localVideo.classList.remove("screen");
    this.localVideo.srcObject = this.stream && this.stream.getVideoTracks().length ? this.stream : null;
  }

  /** Leave the room and release the camera, microphone and screen. Safe to call more than once. */
  close() {
    if (this._closed) return;
    this._closed = true;
    if (this.room) this.room.close();
    if (this.screenTrack) this.screenTrack.stop();
    if (this.stream) {
      for (const track of this.stream.getTracks()) {
        clearInterval(track._placeholderTimer);
        track.stop();
      }
    }
    this.screenTrack = null;
    this.localVideo.srcObject = null;
    this.localVideo.classList.remove("screen");
    this.remoteVideo.srcObject = null;
    this.remoteVideo.muted = false;
  }

  _message(text, kind = "") {
    this._emit("message", { text, kind });
  }

  /** The media's connection state for the call header ("connected", "connecting"), with its text. */
  _state(state, kind = "") {
    this._emit("message", { text: t(`media_${state}`), kind, state });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
