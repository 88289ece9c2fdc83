/**
 * camera.js: the buyer's camera and microphone, and what the inspector may do with them remotely.
 *
 * The camera is captured at high resolution (a full-resolution photo comes from the same track),
 * while the video SENT is scaled down (`sendEncoding`, applied by VitrineRoom to the sender), which
 * saves the buyer's data. The rear camera is the default. Torch and zoom are applied only where
 * `track.getCapabilities()` says the camera has them; every attempt answers {ok, reason} so the
 * inspector's console can say why something did not happen. Reasons are for the seller (English).
 */

// `zoom: true` asks for the zoom permission with the camera's (Chrome exposes zoom only then); it
// changes nothing on a camera that cannot zoom.
export const CAPTURE = { width: { ideal: 1920 }, height: { ideal: 1080 }, frameRate: { ideal: 30, max: 30 }, zoom: true };
export const SEND_MAX_SIDE = 640; // the longer side of the video sent
export const SEND_MAX_BITRATE = 900_000;

/** The encoding for a local track's sender: video at most SEND_MAX_SIDE px on its longer side. */
export function sendEncoding(track) {
  if (!track || track.kind !== "video") return null;
  const { width = 0, height = 0 } = track.getSettings ? track.getSettings() : {};
  const longer = Math.max(width, height);
  return { scaleResolutionDownBy: longer > SEND_MAX_SIDE ? longer / SEND_MAX_SIDE : 1, maxBitrate: SEND_MAX_BITRATE };
}

/** A capture failure: `kind` is "insecure", "denied", "missing", "busy" or "failed". */
export class CameraError extends Error {
  constructor(kind, cause) {
    super(`camera ${kind}${cause && cause.name ? ` (${cause.name})` : ""}`);
    this.kind = kind;
  }
}

function classify(err) {
  switch (err && err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return new CameraError("denied", err);
    case "NotFoundError":
    case "OverconstrainedError":
      return new CameraError("missing", err);
    case "NotReadableError":
    case "AbortError":
      return new CameraError("busy", err);
    default:
      return new CameraError("failed", err);
  }
}

function mediaDevices() {
  const md = navigator.mediaDevices;
  if (!window.isSecureContext || !md || typeof md.getUserMedia !== "function") throw new CameraError("insecure");
  return md;
}

async function videoTrack(facing, exact) {
  const md = mediaDevices();
  const stream = await md.getUserMedia({ video: { ...CAPTURE, facingMode: exact ? { exact: facing } : { ideal: facing } } });
  return stream.getVideoTracks()[0];
}

export class Camera {
  constructor() {
    this.video = null; // the camera's MediaStreamTrack, at capture resolution
    this.audio = null; // the microphone's, or null when there is none (the video still works)
    this.facing = "environment"; // the facing asked for last
    this.cameras = 1;
    this.paused = false;
    this.torchOn = false;
  }

  /** Camera (rear by default) and microphone in one permission prompt; the camera alone without a mic. */
  async start(facing = "environment") {
    const md = mediaDevices();
    this.stop();
    this.facing = facing;
    const video = { ...CAPTURE, facingMode: { ideal: facing } };
    let stream;
    try {
      stream = await md.getUserMedia({ video, audio: true });
    } catch (err) {
      if (err && err.name === "NotAllowedError") throw classify(err);
      try {
        stream = await md.getUserMedia({ video }); // no microphone, or it is busy: video only
      } catch (again) {
        throw classify(again);
      }
    }
    this.video = stream.getVideoTracks()[0] || null;
    this.audio = stream.getAudioTracks()[0] || null;
    if (!this.video) throw new CameraError("missing");
    this.torchOn = false;
    await this._countCameras();
    this._applyPause();
    return this.stream();
  }

  /** A MediaStream of the current tracks. */
  stream() {
    return new MediaStream([this.video, this.audio].filter(Boolean));
  }

  stop() {
    for (const track of [this.video, this.audio]) if (track) track.stop();
    this.video = null;
    this.audio = null;
  }

  /** Pause (true): the tracks are disabled, so the preview and anything still attached go dark and silent. */
  setPaused(paused) {
    this.paused = paused;
    this._applyPause();
  }

  _applyPause() {
    for (const track of [this.video, this.audio]) if (track) track.enabled = !this.paused;
  }

  async _countCameras() {
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      this.cameras = Math.max(1, devices.filter((d) => d.kind === "videoinput").length);
    } catch {
      this.cameras = 1;
    }
  }

  /** The facing the camera reports, or the one asked for when it reports none (a desktop webcam). */
  get currentFacing() {
    const reported = this.video && this.video.getSettings ? this.video.getSettings().facingMode : undefined;
    return reported === "user" || reported === "environment" ? reported : null;
  }

  _capabilities() {
    try {
      return this.video && this.video.getCapabilities ? this.video.getCapabilities() : {};
    } catch {
      return {};
    }
  }

  /** The camera as the `capabilities` inspect body describes it (vitrine/inspect/protocol.py). */
  async describe(sent) {
    const caps = this._capabilities();
    const settings = this.video ? this.video.getSettings() : {};
    const body = { action: "capabilities", cameras: Math.min(16, this.cameras), torch: Boolean(caps.torch) };
    const facing = this.currentFacing;
    if (facing) body.facing = facing;
    if (caps.zoom && Number.isFinite(caps.zoom.min) && Number.isFinite(caps.zoom.max) && caps.zoom.max > caps.zoom.min) {
      body.zoom = { min: caps.zoom.min, max: caps.zoom.max, step: caps.zoom.step || 0 };
    } else {
      body.zoom = null;
    }
    const photo = await this.photoSize();
    if (photo) [body.photo_width, body.photo_height] = photo;
    if (sent && sent.width && sent.height) {
      body.video_width = sent.width;
      body.video_height = sent.height;
    } else if (settings.width && settings.height) {
      body.video_width = settings.width;
      body.video_height = settings.height;
    }
    return body;
  }

  /** [width, height] of the largest still: takePhoto's maximum, else the track's own frame. */
  async photoSize() {
    if (!this.video) return null;
    if (typeof window.ImageCapture === "function") {
      try {
        const caps = await new window.ImageCapture(this.video).getPhotoCapabilities();
        if (caps.imageWidth && caps.imageWidth.max && caps.imageHeight && caps.imageHeight.max) {
          return [Math.round(caps.imageWidth.max), Math.round(caps.imageHeight.max)];
        }
      } catch {
        /* no photo capabilities: the frame size below */
      }
    }
    const { width, height } = this.video.getSettings();
    return width && height ? [width, height] : null;
  }

  /**
   * Switch to the other camera: the old track is stopped first (a phone opens one camera at a
   * time), then the new one is opened with the same capture settings. On failure the previous
   * facing is opened again. Resolves { ok, reason, track } with the new video track.
   */
  async switchTo(facing) {
    if (this.cameras < 2) return { ok: false, reason: "the phone reports only one camera" };
    if (!this.video) return { ok: false, reason: "the camera is not running" };
    const previous = this.facing;
    this.video.stop();
    let track = null;
    try {
      track = await videoTrack(facing, true);
    } catch {
      try {
        track = await videoTrack(facing, false);
      } catch (err) {
        this.video = await videoTrack(previous, false).catch(() => null);
        this._applyPause();
        return { ok: false, reason: `the other camera could not be opened (${(err && err.name) || "error"})`,
          track: this.video };
      }
    }
    this.video = track;
    this.facing = facing;
    this.torchOn = false;
    this._applyPause();
    const reported = this.currentFacing;
    if (reported && reported !== facing) {
      return { ok: false, reason: "the phone has no camera facing that way", track };
    }
    return { ok: true, track };
  }

  /** Torch on or off, where the camera has one. */
  async torch(on) {
    if (!this.video) return { ok: false, reason: "the camera is not running" };
    if (!this._capabilities().torch) return { ok: false, reason: "this camera has no torch" };
    try {
      await this.video.applyConstraints({ advanced: [{ torch: Boolean(on) }] });
      this.torchOn = Boolean(on);
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `the torch could not be switched (${(err && err.name) || "error"})` };
    }
  }

  /** Zoom to `level` (clamped into the camera's range), where the camera can zoom. */
  async zoom(level) {
    if (!this.video) return { ok: false, reason: "the camera is not running" };
    const range = this._capabilities().zoom;
    if (!range || !(range.max > range.min)) return { ok: false, reason: "this camera cannot zoom" };
    const value = Math.min(range.max, Math.max(range.min, Number(level)));
    try {
      await this.video.applyConstraints({ advanced: [{ zoom: value }] });
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `the zoom could not be changed (${(err && err.name) || "error"})` };
    }
  }
}
