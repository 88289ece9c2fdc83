/**
 * live.js: the buyer in the inspection's room: knock, wait to be admitted, send the camera, and do
 * what the inspector asks (vitrine/inspect/protocol.py): prompts, camera switch, torch, zoom,
 * full-resolution photos, marks over a frozen copy of the preview. Every attempt is answered with a
 * `result`, and the camera is described (`capabilities`) after every (re)start and (re)join.
 *
 * The page acts on the room's log entries, so what the inspector sent while the phone was changing
 * network arrives after the reconnect (VitrineRoom catches up by itself). Each reconnect joins with
 * a fresh token (`refreshToken`) on a fresh peer connection, with a new evidence channel.
 */

import { VitrineRoom } from "../vitrine-client.js";
import { h } from "../vitrine-dom.js";
import { sendEncoding } from "./camera.js";
import { MarkedFrame } from "./marks.js";
import { capturePhoto, EvidenceLink } from "./photo.js";

const FINAL_JOIN_ERRORS = new Set(["case_closed", "consent_required", "invalid_token", "token_expired", "case_not_found",
  "link_expired"]);
const $ = (id) => document.getElementById(id);

export class LiveRoom {
  /**
   * @param {object} deps
   * @param {import("./api.js").BuyerApi} deps.api
   * @param {import("./camera.js").Camera} deps.camera
   * @param {import("./view.js").View} deps.view
   * @param {(kind: "ended"|"denied"|"problem"|"consent", detail: any) => void} deps.onEnd  the session is over
   *        for this page: ended (detail: the verdict or null), denied, problem (detail: a code), consent
   *        (the consent must be given again)
   */
  constructor({ api, camera, view, onEnd }) {
    this.api = api;
    this.camera = camera;
    this.view = view;
    this.onEnd = onEnd;
    this.room = null;
    this.over = false;
    this.evidence = new EvidenceLink();
    this.marked = new MarkedFrame($("marked"));
    this.preview = $("preview");
    this._chain = Promise.resolve(); // the inspector's requests run one at a time, in order
    this._photos = new Set(); // requests already answered
    this._lastError = null;
    this._joinedOnce = false;
    this._bindControls();
  }

  // -- joining and leaving -----------------------------------------------------------------------

  async join() {
    this._close();
    this.over = false;
    this._joinedOnce = false;
    this._lastError = null;
    this.showPreview();
    this._waiting("connecting");
    let token;
    try {
      token = await this.api.join();
    } catch (err) {
      this._refused(err.code);
      return;
    }
    const room = new VitrineRoom();
    this.room = room;
    this._wire(room);
    room.connect({
      url: window.location.origin, token, stream: this.camera.stream(), reconnect: true,
      refreshToken: () => this._refresh(), encoding: sendEncoding,
    }).catch((err) => {
      if (this.room === room && !this.over) this._lost(err.code);
    });
  }

  /** The buyer leaves (the camera is stopped by the caller). */
  leave() {
    this.over = true;
    this._close();
  }

  _close() {
    const room = this.room;
    this.room = null;
    if (room) room.close();
    this.marked.clear();
    $("marks-note").hidden = true;
    $("recording").hidden = true;
    this.view.banner(null);
  }

  async _refresh() {
    try {
      return await this.api.join();
    } catch (err) {
      if (FINAL_JOIN_ERRORS.has(err.code)) err.final = true;
      throw err;
    }
  }

  _end(kind, detail = null) {
    if (this.over) return;
    this.over = true;
    this._close();
    this.onEnd(kind, detail);
  }

  _refused(code) {
    if (code === "case_closed") this._end("ended", null);
    else if (code === "consent_required") this._end("consent");
    else if (code === "link_expired" || code === "invalid_token" || code === "token_expired") this._end("problem", "session_expired");
    else this._end("problem", code);
  }

  /** The room is gone without a word: ended if the case closed, else "connection lost". */
  async _lost(code) {
    if (this.over) return;
    if (FINAL_JOIN_ERRORS.has(code)) {
      this._refused(code);
      return;
    }
    try {
      const session = await this.api.session();
      if (session.state === "closed") {
        this._end("ended", null);
        return;
      }
    } catch (err) {
      if (FINAL_JOIN_ERRORS.has(err.code)) {
        this._refused(err.code);
        return;
      }
    }
    this._end("problem", "lost");
  }

  /** "connecting" (joining), or "waiting_heading" (knocked: the seller has to let the buyer in). */
  _waiting(key) {
    this.view.setState(key === "waiting_heading" ? "waiting" : "connecting");
    this.view.text($("waiting-heading"), key);
    $("waiting-body").hidden = key !== "waiting_heading";
  }

  // -- the room's events -------------------------------------------------------------------------

  _wire(room) {
    const on = (type, handler) => room.addEventListener(type, ({ detail }) => {
      if (this.room === room) handler(detail);
    });
    on("waiting", () => this._waiting("waiting_heading"));
    on("joined", () => this._joined(room));
    on("reconnecting", () => this.view.banner("reconnecting"));
    on("reconnected", () => this.view.banner(null));
    on("log", (entry) => this._entry(entry));
    on("history", ({ entries }) => this._restore(entries));
    on("datachannel", ({ channel }) => this.evidence.attach(channel));
    on("track", ({ kind, stream }) => {
      if (kind !== "audio") return;
      const audio = $("remote-audio");
      audio.srcObject = stream;
      audio.play().catch(() => {}); // the buyer tapped "I agree": sound is normally allowed
    });
    on("leave", ({ code }) => {
      if (code === "denied") this._end("denied");
      else if (code === "replaced") this._end("problem", "replaced");
    });
    on("error", (error) => {
      if (error.ref === "join" || error.ref === "refresh") this._lastError = error.code;
      if (error.code === "rate_limited") this.view.toast("error_busy", { kind: "error" });
      console.warn(`inspection: ${error.code}`); // never the message's token: only the code
    });
    on("close", () => this._lost(this._lastError));
  }

  _joined(room) {
    this.view.setState("live");
    this.view.banner(null);
    $("recording").hidden = false;
    this._sendCapabilities();
    if (this.camera.paused) room.inspect({ action: "pause", paused: true });
    if (!this._joinedOnce) {
      this._joinedOnce = true;
      room.requestHistory({ limit: 100 }); // the chat and the last prompt, after a reload
    }
  }

  /** After a reload: the chat so far and the last prompt; requests already made are not replayed. */
  _restore(entries) {
    let prompt = null;
    for (const entry of entries) {
      if (entry.kind === "chat") this._chatLine(entry);
      else if (entry.kind === "inspect" && entry.inspect && entry.inspect.action === "prompt") prompt = entry.inspect.text;
      else if (entry.kind === "inspect" && entry.inspect && entry.inspect.action === "case" && entry.inspect.event === "ended") {
        this._end("ended", entry.inspect.verdict || null);
        return;
      }
    }
    if (prompt) this._prompt(prompt);
  }

  _mine(entry) {
    const me = this.room && this.room.participant;
    return Boolean(me && entry.participant && entry.participant.sid === me.sid);
  }

  _entry(entry) {
    if (entry.kind === "chat") {
      this._chatLine(entry);
      return;
    }
    if (entry.kind !== "inspect" || !entry.inspect || this._mine(entry)) return;
    const body = entry.inspect;
    switch (body.action) {
      case "prompt":
        this._prompt(body.text);
        break;
      case "camera":
        this._run(() => this._switchCamera(body.facing));
        break;
      case "torch":
        this._run(async () => this._result("torch", await this.camera.torch(body.on)));
        break;
      case "zoom":
        this._run(async () => this._result("zoom", await this.camera.zoom(body.level)));
        break;
      case "photo":
        this._photo(body.request);
        break;
      case "annotate":
        this._marks(body.marks || []);
        break;
      case "clear":
        this.marked.clear();
        $("marks-note").hidden = true;
        break;
      case "case":
        if (body.event === "ended") this._end("ended", body.verdict || null);
        break;
      default:
        break; // the buyer's own reports, snapshots (the server's), artifacts: nothing to do here
    }
  }

  _run(task) {
    this._chain = this._chain.then(task).catch((err) => console.warn(`inspection: ${err && err.name}`));
  }

  _result(control, { ok, reason }, request = null) {
    const body = { action: "result", control, ok: Boolean(ok) };
    if (request) body.request = request;
    if (!ok && reason) body.reason = String(reason).slice(0, 200);
    if (this.room) this.room.inspect(body);
  }

  /** The video as sent: the capture scaled down by sendEncoding. */
  _sentSize() {
    const track = this.camera.video;
    if (!track) return null;
    const { width, height } = track.getSettings();
    const encoding = sendEncoding(track);
    if (!width || !height || !encoding) return null;
    const scale = encoding.scaleResolutionDownBy || 1;
    return { width: Math.max(1, Math.round(width / scale)), height: Math.max(1, Math.round(height / scale)) };
  }

  async _sendCapabilities() {
    if (!this.room || !this.camera.video) return;
    const body = await this.camera.describe(this._sentSize());
    if (this.room) this.room.inspect(body);
  }

  // -- what the inspector asks ---------------------------------------------------------------------

  _prompt(text) {
    $("prompt-text").textContent = text;
    $("prompt").hidden = false;
    if (navigator.vibrate) navigator.vibrate(120);
  }

  async _switchCamera(facing) {
    const outcome = await this.camera.switchTo(facing);
    if (outcome.track && this.room) await this.room.replaceTrack("video", outcome.track);
    if (outcome.track) this.showPreview();
    this._result("camera", outcome);
    if (outcome.ok) this.view.toast("camera_switched");
    await this._sendCapabilities();
  }

  _photo(request) {
    if (this._photos.has(request)) return;
    this._photos.add(request);
    if (this.camera.paused) {
      this._result("photo", { ok: false, reason: "the buyer has paused the video" }, request);
      return;
    }
    this.view.toast("photo_taking", { ms: 0 });
    this._run(async () => {
      try {
        const photo = await capturePhoto(this.camera.video, this.preview);
        this._flash();
        await this.evidence.send(request, photo);
        this._result("photo", { ok: true }, request);
        document.body.dataset.photosSent = String(Number(document.body.dataset.photosSent || 0) + 1);
        this.view.toast("photo_sent", { kind: "ok" });
      } catch (err) {
        this._result("photo", { ok: false, reason: (err && err.reason) || "the photo could not be taken" }, request);
        this.view.toast("photo_failed", { kind: "error" });
      }
    });
  }

  _flash() {
    const stage = this.preview.parentElement;
    stage.classList.remove("flash");
    void stage.offsetWidth; // restart the animation
    stage.classList.add("flash");
  }

  _marks(marks) {
    if (this.marked.show(this.preview, marks)) $("marks-note").hidden = false;
  }

  // -- the buyer's own controls --------------------------------------------------------------------

  showPreview() {
    if (!this.camera.video) return;
    this.preview.srcObject = new MediaStream([this.camera.video]);
    this.preview.classList.toggle("mirrored", this.camera.currentFacing === "user");
    this.preview.play().catch(() => {});
  }

  async setPaused(paused) {
    const button = $("pause");
    button.disabled = true;
    try {
      this.camera.setPaused(paused);
      if (this.room) {
        await this.room.setSending("video", !paused);
        await this.room.setSending("audio", !paused);
        if (this.room.joined) this.room.inspect({ action: "pause", paused });
      }
    } finally {
      button.disabled = false;
    }
    button.setAttribute("aria-pressed", String(paused));
    this.view.text(button, paused ? "resume" : "pause");
    $("paused-cover").hidden = !paused;
    document.body.dataset.paused = String(paused);
  }

  _chatLine(entry) {
    const mine = this._mine(entry);
    const who = mine ? this.view.t("chat_you") : this.view.t("chat_seller");
    const log = $("chat-log");
    if (log.querySelector(`[data-seq="${Number(entry.seq)}"]`)) return;
    log.append(h("li", { class: mine ? "line mine" : "line", dataset: { seq: String(Number(entry.seq)) } },
      h("span", { class: "who", text: who }), h("span", { class: "text", text: entry.text || "" })));
    log.scrollTop = log.scrollHeight;
  }

  _bindControls() {
    $("pause").addEventListener("click", () => this.setPaused(!this.camera.paused));
    $("prompt-close").addEventListener("click", () => { $("prompt").hidden = true; });
    $("chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("chat-input");
      const text = input.value.trim();
      if (!text || !this.room || !this.room.joined) return;
      this.room.sendChat(text);
      input.value = "";
    });
  }
}
