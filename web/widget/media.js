/**
 * media.js: the shopper's camera and microphone: acquisition, the mic level meter, the front/rear flip.
 */

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/** Why getUserMedia failed, in the widget's terms. */
export function mediaFailure(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") return "denied";
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") return "missing";
  return "failed"; // NotReadableError (camera busy), AbortError, no mediaDevices (http page)...
}

/**
 * Camera (facing the shopper) and microphone. With `audioOnly`, the microphone only.
 * When the camera is missing or busy but the microphone works, resolves with audio alone and
 * `videoError` set, so the shopper can still join with audio.
 */
export async function getLocalMedia({ audioOnly = false, facingMode = "user" } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error("getUserMedia is not available (an http page?)"), { name: "NotSupportedError" });
  }
  const gum = (constraints) => navigator.mediaDevices.getUserMedia(constraints);
  if (audioOnly) return { stream: await gum({ audio: AUDIO, video: false }), videoError: null };
  try {
    return { stream: await gum({ audio: AUDIO, video: { ...VIDEO, facingMode } }), videoError: null };
  } catch (err) {
    if (mediaFailure(err) === "denied") throw err;
    // No camera (or it is busy): try the microphone alone before giving up.
    const stream = await gum({ audio: AUDIO, video: false });
    return { stream, videoError: mediaFailure(err) };
  }
}

/** A new camera track facing `facingMode` ("user" | "environment"). */
export async function getCameraTrack(facingMode) {
  const gum = (video) => navigator.mediaDevices.getUserMedia({ audio: false, video });
  let stream;
  try {
    stream = await gum({ ...VIDEO, facingMode: { exact: facingMode } });
  } catch (err) {
    if (mediaFailure(err) === "denied") throw err;
    stream = await gum({ ...VIDEO, facingMode });
  }
  return stream.getVideoTracks()[0];
}

/** How many cameras the device has (labels and ids need a granted permission first). */
export async function countCameras() {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.filter((d) => d.kind === "videoinput").length;
  } catch {
    return 0;
  }
}

export function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

/**
 * A live microphone level (0..1) from an AnalyserNode, pushed to `onLevel` each animation frame.
 * Create it from a click handler: browsers only start an AudioContext after a user gesture.
 */
export class LevelMeter {
  constructor(onLevel) {
    this.onLevel = onLevel;
    this.level = 0;
    this._ctx = null;
    this._source = null;
    this._frame = 0;
    this._stopped = true;
  }

  start(stream) {
    this.stop();
    const track = stream && stream.getAudioTracks()[0];
    const AudioCtx = window.AudioContext || window.webkitAudioContext;
    if (!track || !AudioCtx) return;
    try {
      this._ctx = new AudioCtx();
      this._ctx.resume().catch(() => {});
      this._source = this._ctx.createMediaStreamSource(new MediaStream([track]));
      const analyser = this._ctx.createAnalyser();
      analyser.fftSize = 1024;
      analyser.smoothingTimeConstant = 0.2;
      this._source.connect(analyser); // not to the destination: no echo of the shopper's own voice
      const samples = new Float32Array(analyser.fftSize);
      this._stopped = false;
      const tick = () => {
        if (this._stopped) return;
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const s of samples) sum += s * s;
        const rms = Math.sqrt(sum / samples.length);
        // A speaking voice sits around -30..-10 dBFS: map -60..0 dBFS onto 0..1, fall back slowly.
        const db = rms > 0 ? 20 * Math.log10(rms) : -100;
        const target = Math.min(1, Math.max(0, (db + 60) / 60));
        this.level = target > this.level ? target : this.level * 0.9 + target * 0.1;
        this.onLevel(this.level);
        this._frame = requestAnimationFrame(tick);
      };
      tick();
    } catch (err) {
      console.warn("vitrine consult: no microphone level meter:", err && err.name);
      this.stop();
    }
  }

  stop() {
    this._stopped = true;
    cancelAnimationFrame(this._frame);
    if (this._source) this._source.disconnect();
    if (this._ctx) this._ctx.close().catch(() => {});
    this._ctx = null;
    this._source = null;
    this.level = 0;
  }
}
