/**
 * studio-media.js: the seller's own media: camera + mic or screen + mic, its preview, and
 * switching between them while live.
 *
 * A show publishes one video and one audio track. Switching camera <-> screen replaces the
 * video track on the same sender (VitrineRoom.replaceTrack): no renegotiation, viewers just
 * see new frames. The microphone stays the same track throughout.
 */

const CAMERA_VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const SCREEN_VIDEO = { frameRate: { ideal: 30 } };

/** A capture failure, in words a seller can act on. */
function explain(err, source) {
  const what = source === "screen" ? "screen sharing" : "the camera";
  switch (err && err.name) {
    case "NotAllowedError":
      return source === "screen" ? "Screen sharing was cancelled or not allowed."
        : "Access to the camera or microphone was refused: allow it in the browser's address bar, then try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return source === "screen" ? "No screen was picked." : "No camera was found.";
    case "NotReadableError":
      return "The camera is in use by another app.";
    default:
      return `Could not start ${what} (${(err && err.name) || "error"}).`;
  }
}

function devices(source) {
  const md = navigator.mediaDevices;
  const needed = source === "screen" ? "getDisplayMedia" : "getUserMedia";
  if (!md || typeof md[needed] !== "function") {
    throw new Error(source === "screen" ? "Screen sharing needs a desktop browser on https (or localhost)."
      : "Camera access needs https (or localhost).");
  }
  return md;
}

/** The video track of `source` alone (for a switch while live). */
async function captureVideo(source) {
  const md = devices(source);
  try {
    const stream = source === "screen"
      ? await md.getDisplayMedia({ video: SCREEN_VIDEO, audio: false })
      : await md.getUserMedia({ video: CAMERA_VIDEO });
    return stream.getVideoTracks()[0];
  } catch (err) {
    throw new Error(explain(err, source));
  }
}

/** Camera and microphone in one request (one permission prompt); the camera alone if the mic is refused. */
async function captureCamera() {
  try {
    const stream = await devices("camera").getUserMedia({ video: CAMERA_VIDEO, audio: true });
    return [stream.getVideoTracks()[0], stream.getAudioTracks()[0] || null];
  } catch {
    return [await captureVideo("camera"), null]; // throws the camera's own reason when that fails too
  }
}

async function captureMic() {
  try {
    return (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0] || null;
  } catch {
    return null;
  }
}

export class Studio extends EventTarget {
  /**
   * @param {HTMLVideoElement} preview  shows the local capture, or the OBS stream as received
   */
  constructor(preview) {
    super();
    this.preview = preview;
    this.source = null; // "camera" | "screen" | null: what is captured now
    this.stream = null; // the local MediaStream: one video track, maybe one audio track
    this.warning = "";
  }

  get video() {
    return this.stream ? this.stream.getVideoTracks()[0] || null : null;
  }

  get mic() {
    return this.stream ? this.stream.getAudioTracks()[0] || null : null;
  }

  /** Capture `source` ("camera" or "screen") with the microphone, replacing anything captured before. */
  async capture(source) {
    let mic = this.mic && this.mic.readyState === "live" ? this.mic : null;
    let video;
    if (source === "camera" && !mic) {
      [video, mic] = await captureCamera();
    } else {
      video = await captureVideo(source);
      mic = mic || await captureMic();
    }
    this._stopVideo();
    this.stream = new MediaStream(mic ? [video, mic] : [video]);
    this.warning = mic ? "" : "No microphone: viewers will not hear you.";
    this._adopt(video, source);
    return this.stream;
  }

  /**
   * While live: send `source` instead of the current video, on the same sender. Resolves false when
   * the room publishes no video (joined without media): the caller must join again with the stream.
   */
  async switchVideo(room, source) {
    if (!room || !this.video) return false;
    const track = await captureVideo(source);
    if (!(await room.replaceTrack("video", track))) {
      track.stop();
      return false;
    }
    const old = this.video;
    this.stream.removeTrack(old);
    this.stream.addTrack(track);
    old.stop();
    this._adopt(track, source);
    return true;
  }

  _adopt(track, source) {
    this.source = source;
    // The browser's own "Stop sharing" (or an unplugged camera) ends the track: the console decides what next.
    track.addEventListener("ended", () => {
      if (this.video === track) this.dispatchEvent(new CustomEvent("ended", { detail: { source } }));
    });
    this._show(this.stream, source === "camera");
  }

  /** The OBS stream as this console receives it, in the preview. */
  showRemote(stream) {
    this._show(stream, false);
  }

  /** Mute or unmute the microphone (the track keeps flowing: viewers get silence, no renegotiation). */
  toggleMic() {
    if (this.mic) this.mic.enabled = !this.mic.enabled;
  }

  /** Release the camera, screen and microphone. */
  stop() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.source = null;
    this.warning = "";
    this._show(null, false);
  }

  _stopVideo() {
    if (this.video) this.video.stop();
  }

  _show(stream, mirrored) {
    const video = this.preview;
    video.classList.toggle("mirrored", mirrored); // a selfie view feels natural; viewers get it unmirrored
    if (video.srcObject !== stream) video.srcObject = stream;
    if (stream) video.play().catch(() => {}); // muted: autoplay is allowed
    this.dispatchEvent(new CustomEvent("preview", { detail: { live: Boolean(stream) } }));
  }
}
