/**
 * controls.js: steering the buyer's camera from the console: front/rear, torch, zoom, and the
 * requests for a full-resolution photo or a server snapshot.
 *
 * What the controls offer follows the buyer's last `capabilities` report: a control the camera
 * does not have is disabled with a visible explanation (phones do not always report everything,
 * so "Ask anyway" still sends the request). Each `result` the buyer's page sends back is shown
 * next to its control, with the reason when it could not be done. A photo or snapshot request
 * keeps its button disabled until its artifact arrives, the buyer reports a failure, or it times out.
 */

import { t } from "./strings.js";

const REQUEST_TIMEOUT_MS = 90_000;
const CONTROL_NAMES = { camera: "control_camera", torch: "control_torch", zoom: "control_zoom", photo: "control_photo" };

/** A request id the protocol accepts (^[A-Za-z0-9_-]{1,64}$). */
export function requestId(prefix) {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const facingName = (facing) => t(facing === "user" ? "facing_front" : facing === "environment" ? "facing_rear" : "facing_unknown");

export class CameraControls {
  /**
   * @param {HTMLElement} root  the controls panel (#controls)
   * @param {object} hooks
   * @param {(body: object) => boolean} hooks.send  send an inspect body; false when not connected
   * @param {(text: string, kind?: string) => void} hooks.say  the console's status line
   */
  constructor(root, { send, say }) {
    this.root = root;
    this.send = send;
    this.say = say;
    this.caps = null;
    this.available = false; // joined, with the buyer in the room
    this.paused = false;
    this.torchWanted = false;
    this.pending = new Map(); // request id -> { kind, timer }
    this.lastFacing = null;
    const $ = (selector) => root.querySelector(selector);
    this.el = {
      summary: $("#caps-summary"), torch: $("#torch"), zoom: $("#zoom"), zoomValue: $("#zoom-value"),
      photo: $("#take-photo"), snapshot: $("#snapshot"), captureState: $("#capture-state"),
      facings: [...root.querySelectorAll("button.facing")],
    };
    this.rows = Object.fromEntries([...root.querySelectorAll(".control-row")].map((row) => [row.dataset.control, row]));
    for (const button of this.el.facings) button.addEventListener("click", () => this._camera(button.dataset.facing));
    this.el.torch.addEventListener("click", () => this._torch(!this.torchWanted));
    this.el.zoom.addEventListener("input", () => { this.el.zoomValue.textContent = `${this.el.zoom.value}×`; });
    this.el.zoom.addEventListener("change", () => this._zoom(Number(this.el.zoom.value)));
    this.rows.camera.querySelector(".ask-anyway").addEventListener("click",
      () => this._camera(this.lastFacing === "user" || (this.caps && this.caps.facing === "user") ? "environment" : "user"));
    this.rows.torch.querySelector(".ask-anyway").addEventListener("click", () => this._torch(!this.torchWanted));
    this.rows.zoom.querySelector(".ask-anyway").addEventListener("click", () => this._zoom(2));
    this.el.photo.addEventListener("click", () => this.request("photo"));
    this.el.snapshot.addEventListener("click", () => this.request("snapshot"));
    this.render();
  }

  setAvailable(available) {
    this.available = available;
    this.render();
  }

  setPaused(paused) {
    this.paused = paused;
    this.render();
  }

  /** The buyer's `capabilities` report. */
  setCaps(caps) {
    this.caps = caps;
    this.render();
  }

  /** The buyer's `result` for one control. */
  onResult(result) {
    const row = this.rows[result.control];
    if (row) {
      const out = row.querySelector(".control-result");
      out.dataset.ok = String(Boolean(result.ok));
      out.textContent = result.ok ? this._done(result.control)
        : t("not_done", { reason: result.reason || t("no_reason_phone") });
    }
    if (result.control === "torch" && !result.ok) this.torchWanted = false;
    if (result.control === "photo" && !result.ok && result.request) {
      this._settle(result.request, t("photo_failed", { reason: result.reason || t("no_reason") }));
    }
    this.render();
  }

  /** An artifact was stored: settles the request it answers. True when it answered one of ours. */
  onArtifact(artifact) {
    if (!artifact.request || !this.pending.has(artifact.request)) return false;
    const { kind } = this.pending.get(artifact.request);
    this._settle(artifact.request, t(kind === "photo" ? "photo_received" : "snapshot_received",
      { size: `${artifact.width || "?"}×${artifact.height || "?"}` }), "ok");
    return true;
  }

  /** The server refused an inspect message: a pending snapshot (the server's own work) fails with it. */
  onRefused(error) {
    const snapshot = [...this.pending].find(([, p]) => p.kind === "snapshot");
    if (snapshot) this._settle(snapshot[0], t("snapshot_failed", { reason: error.message || error.code }));
  }

  /** Ask for a full-resolution photo (the buyer's phone) or a snapshot (the server decodes the video). */
  request(kind) {
    const id = requestId(kind === "photo" ? "ph" : "sn");
    if (!this.send({ action: kind, request: id })) {
      this.say(t("request_not_sent"), "warn");
      return null;
    }
    const timer = setTimeout(() => this._settle(id, t(kind === "photo" ? "no_photo" : "no_snapshot",
      { n: REQUEST_TIMEOUT_MS / 1000 })), REQUEST_TIMEOUT_MS);
    this.pending.set(id, { kind, timer });
    this.el.captureState.textContent = t(kind === "photo" ? "waiting_photo" : "waiting_snapshot");
    this.render();
    return id;
  }

  _settle(id, text, kind = "error") {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    this.el.captureState.textContent = text;
    this.el.captureState.dataset.kind = kind;
    if (kind === "error") this.say(text, "error");
    this.render();
  }

  _done(control) {
    if (control === "camera") return t("switched_camera", { facing: facingName(this.lastFacing) });
    if (control === "torch") return t(this.torchWanted ? "torch_on_done" : "torch_off_done");
    if (control === "zoom") return t("zoomed", { level: this.el.zoom.value });
    return t("control_done", { control: CONTROL_NAMES[control] ? t(CONTROL_NAMES[control]) : control });
  }

  _sent(body, row) {
    if (this.send(body)) {
      const out = this.rows[row].querySelector(".control-result");
      out.textContent = t("asked");
      delete out.dataset.ok;
      return true;
    }
    this.say(t("not_sent"), "warn");
    return false;
  }

  _camera(facing) {
    this.lastFacing = facing;
    this._sent({ action: "camera", facing }, "camera");
  }

  _torch(on) {
    if (this._sent({ action: "torch", on }, "torch")) this.torchWanted = on;
    this.render();
  }

  _zoom(level) {
    this._sent({ action: "zoom", level }, "zoom");
  }

  _row(name, supported, note) {
    const row = this.rows[name];
    row.dataset.supported = this.caps ? String(supported) : "unknown";
    const noteEl = row.querySelector(".control-note");
    noteEl.textContent = note || "";
    noteEl.hidden = !note;
    row.querySelector(".ask-anyway").hidden = !(this.caps && !supported && this.available);
    return this.available && this.caps && supported;
  }

  render() {
    const caps = this.caps;
    this.root.dataset.caps = caps ? "1" : "0";
    if (!caps) {
      this.el.summary.textContent = t(this.available ? "caps_waiting" : "caps_none");
    } else {
      const parts = [t("caps_facing", { facing: facingName(caps.facing) }), t("caps_cameras", { n: caps.cameras })];
      if (caps.photo_width) parts.push(t("caps_photos", { size: `${caps.photo_width}×${caps.photo_height}` }));
      if (caps.video_width) parts.push(t("caps_video", { size: `${caps.video_width}×${caps.video_height}` }));
      this.el.summary.textContent = t("caps_summary", { parts: parts.join(" · ") });
    }
    const waiting = caps ? null : t("caps_waiting_note");
    const cameraOk = this._row("camera", Boolean(caps && caps.cameras >= 2),
      waiting || (caps.cameras >= 2 ? null : t("one_camera")));
    for (const button of this.el.facings) {
      button.disabled = !cameraOk;
      button.setAttribute("aria-pressed", String(Boolean(caps && caps.facing === button.dataset.facing)));
    }
    const torchOk = this._row("torch", Boolean(caps && caps.torch),
      waiting || (caps.torch ? null : t("no_torch")));
    this.el.torch.disabled = !torchOk;
    this.el.torch.setAttribute("aria-pressed", String(this.torchWanted));
    this.el.torch.textContent = t(this.torchWanted ? "torch_off" : "torch_on");
    const zoom = caps && caps.zoom;
    const zoomOk = this._row("zoom", Boolean(zoom), waiting || (zoom ? null : t("no_zoom")));
    this.el.zoom.disabled = !zoomOk;
    if (zoom && (this.el.zoom.min !== String(zoom.min) || this.el.zoom.max !== String(zoom.max))) {
      this.el.zoom.min = String(zoom.min);
      this.el.zoom.max = String(zoom.max);
      this.el.zoom.step = String(zoom.step || (zoom.max - zoom.min) / 20);
      this.el.zoom.value = String(zoom.min);
      this.el.zoomValue.textContent = `${zoom.min}×`;
    }
    const busy = (kind) => [...this.pending.values()].some((p) => p.kind === kind);
    this.el.photo.disabled = !this.available || this.paused || busy("photo");
    this.el.snapshot.disabled = !this.available || this.paused || busy("snapshot");
    this.el.photo.title = this.paused ? t("paused_badge") : "";
  }
}
