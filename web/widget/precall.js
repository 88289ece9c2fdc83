/**
 * precall.js: the device check before queueing: camera preview (mirrored, front camera), a live
 * microphone level, "audio only", and a clear way out when access is denied.
 */

import { getLocalMedia, LevelMeter, mediaFailure, stopStream } from "./media.js";

export class DeviceCheck {
  /**
   * @param {Function} t     translator
   * @param {object} view    views.check(t)
   */
  constructor(t, view) {
    this.t = t;
    this.v = view;
    this.stream = null;
    this.audioOnly = false;
    this._run = 0;
    this.meter = new LevelMeter((level) => this._showLevel(level));
  }

  /** Ask for camera and microphone (call it from a click: the level meter's AudioContext needs one). */
  async start() {
    const v = this.v;
    this.release();
    const run = ++this._run;
    v.denied.hidden = true;
    v.start.disabled = true;
    v.note.hidden = false;
    v.note.textContent = this.t("check_starting");
    this.audioOnly = v.audioOnly.checked;
    try {
      const { stream, videoError } = await getLocalMedia({ audioOnly: this.audioOnly });
      if (run !== this._run) {
        stopStream(stream); // closed or restarted meanwhile
        return;
      }
      this.stream = stream;
      if (videoError) {
        this.audioOnly = true;
        v.audioOnly.checked = true;
        v.note.textContent = this.t("check_no_camera");
      }
      this._showPreview();
      this.meter.start(stream);
      v.start.disabled = false;
    } catch (err) {
      if (run !== this._run) return;
      const why = mediaFailure(err);
      v.note.hidden = true;
      v.deniedText.textContent = this.t(why === "missing" ? "check_no_device" : "check_denied");
      v.joinAudio.hidden = why === "missing" || this.audioOnly;
      v.denied.hidden = false;
      console.warn("vitrine consult: no camera or microphone:", err && err.name);
    }
  }

  /** The "Audio only" box: drop the camera, or get it back. */
  async setAudioOnly(audioOnly) {
    this.audioOnly = audioOnly;
    if (!this.stream) {
      await this.start();
      return;
    }
    if (audioOnly) {
      for (const track of this.stream.getVideoTracks()) {
        this.stream.removeTrack(track);
        track.stop();
      }
    } else if (!this.stream.getVideoTracks().length) {
      try {
        const { stream, videoError } = await getLocalMedia({});
        for (const track of stream.getAudioTracks()) track.stop();
        for (const track of stream.getVideoTracks()) this.stream.addTrack(track);
        if (videoError) throw Object.assign(new Error("no camera"), { name: "NotFoundError" });
      } catch (err) {
        this.audioOnly = true;
        this.v.audioOnly.checked = true;
        this.v.note.textContent = this.t("check_no_camera");
        console.warn("vitrine consult: no camera:", err && err.name);
      }
    }
    this._showPreview();
  }

  /** Hand the checked stream over (to the call): the check no longer owns or shows it. */
  take() {
    const stream = this.stream;
    this.stream = null;
    this._run += 1;
    this.meter.stop();
    this._showLevel(0);
    this.v.video.srcObject = null;
    return stream;
  }

  /** Stop everything: camera and microphone released. */
  release() {
    stopStream(this.take());
  }

  _showPreview() {
    const v = this.v;
    const hasVideo = Boolean(this.stream && this.stream.getVideoTracks().length);
    v.video.srcObject = hasVideo ? this.stream : null;
    v.video.hidden = !hasVideo;
    v.note.hidden = hasVideo;
    if (!hasVideo && this.audioOnly && v.note.textContent === this.t("check_starting")) {
      v.note.textContent = this.t("call_audio_only");
    }
    if (hasVideo) v.video.play().catch(() => {});
  }

  _showLevel(level) {
    const percent = Math.round(level * 100);
    this.v.level.dataset.level = String(percent);
    this.v.level.setAttribute("aria-valuenow", String(percent));
    this.v.bar.style.transform = `scaleX(${level.toFixed(3)})`;
  }
}
