/**
 * call.js: one consult call in the widget: the room (through VitrineRoom), the local controls,
 * chat, product cards and the accept-to-first-frame measurement.
 *
 * The desk socket stays in app.js; this class gets `send(message)` to reach it.
 */

import { VitrineRoom } from "../vitrine-client.js";
import { h, icon, safeUrl, setChildren } from "./dom.js";
import { countCameras, getCameraTrack, getLocalMedia, stopStream } from "./media.js";
import { card, MAX_TEXT } from "./views.js";

export class CallSession {
  /**
   * @param {object} o
   * @param {Function} o.t        translator
   * @param {string} o.lang
   * @param {string} o.base       the Vitrine origin
   * @param {string|null} o.name  the shopper's display name
   * @param {Element} o.host      the <vitrine-consult> element (add-to-cart events are dispatched on it)
   * @param {Function} o.send     send a message on the desk socket
   * @param {Function} o.onError  show an inline error (an i18n key)
   */
  constructor({ t, lang, base, name, host, send, onError }) {
    Object.assign(this, { t, lang, base, name, host, send, onError });
    this.room = null;
    this.stream = null;
    this.facing = "user";
    this.setup = null;
    this._preparing = null; // prepare()'s media, until its connection is under way
    this.started = false; // call_started came (before it, the room is only knocked at, while the agent is rung)
    this.ended = false;
    this._acceptedAt = 0;
    this._perfSent = false;
    this._watchingFrames = false;
    this._pending = []; // our own chat lines not yet echoed by the server
    this._build();
  }

  _build() {
    const t = this.t;
    this.remote = h("video", { class: "remote", playsinline: true, autoplay: true, "aria-label": t("remote_video") });
    this.local = h("video", { class: "local", muted: true, playsinline: true, autoplay: true,
      "aria-label": t("local_video") });
    this.stateText = h("p", { class: "vt-call-state", role: "status", text: t("call_connecting") });
    this.sound = h("button", { class: "vt-sound", type: "button", hidden: true }, icon("sound"), t("sound_on"));
    this.sound.addEventListener("click", () => {
      this.remote.muted = false;
      this.remote.play().catch(() => {});
      this.sound.hidden = true;
    });
    const stage = h("div", { class: "vt-stage", dataset: { video: "none" } }, this.remote, this.stateText,
      this.local, this.sound);
    this.stage = stage;

    const control = (cls, label, ...icons) => h("button", { class: `${cls} vt-control`, type: "button",
      "aria-label": label, title: label }, icon(...icons));
    this.mute = control("vt-mute", t("mute"), "mic");
    this.mute.setAttribute("aria-pressed", "false");
    this.camera = control("vt-camera", t("camera_off"), "camera");
    this.camera.setAttribute("aria-pressed", "false");
    this.flip = control("vt-flip", t("flip"), "flip");
    this.flip.hidden = true;
    this.endButton = control("vt-end vt-danger", t("end"), "end");
    this.mute.addEventListener("click", () => this._toggle("audio"));
    this.camera.addEventListener("click", () => this._toggle("video"));
    this.flip.addEventListener("click", () => this._flip());

    this.cards = h("div", { class: "vt-cards", role: "list", "aria-label": t("products") });
    this.log = h("ol", { class: "vt-chat-log", role: "log", "aria-live": "polite", "aria-label": t("chat") });
    this.input = h("input", { class: "vt-chat-input", type: "text", maxlength: String(MAX_TEXT),
      autocomplete: "off", enterkeyhint: "send", placeholder: t("chat_placeholder"), "aria-label": t("chat") });
    const sendButton = h("button", { class: "vt-chat-send vt-icon-button", type: "submit", "aria-label": t("chat_send"),
      title: t("chat_send") }, icon("send"));
    const form = h("form", { class: "vt-chat-form" }, this.input, sendButton);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._sendChat();
    });

    this.el = h("div", { class: "vt-view vt-view-call", hidden: true }, stage,
      h("div", { class: "vt-controls" }, this.mute, this.camera, this.flip, this.endButton),
      this.cards, h("div", { class: "vt-chat" }, this.log, form));
  }

  /**
   * `call_ringing`: connect to the call's room with the knocking token while the agent is rung. The server
   * sets the connection up and keeps it apart (nothing of ours reaches the agent, we receive nothing); the
   * accept admits it, and `start` then only shows the call.
   */
  prepare(setup, stream, audioOnly) {
    this.setup = setup;
    this._preparing = this._media(stream, Boolean(audioOnly || setup.audio_only)).then((ok) => {
      if (ok) this._connect(setup); // not awaited: it resolves on the admit
    });
  }

  /** `call_started`: mark the moment; unless connected while it rang, get media and join the room. */
  async start(setup, stream, audioOnly) {
    this._acceptedAt = markTime("vitrine:accepted");
    this.started = true;
    this.setup = setup;
    this.stateText.textContent = setup.peer_name ? this.t("call_with", { name: setup.peer_name })
      : this.t("call_connecting");
    if (this._preparing) await this._preparing; // the ring's media, and its connection under way
    if (this.room) {
      this._refreshRemote(); // the agent's tracks may have come with the admit, before this message
      return;
    }
    if (await this._media(stream || this.stream, Boolean(audioOnly || setup.audio_only))) await this._connect(setup);
  }

  /** Our media for the call (asked again after a page change); false when the call ended meanwhile. */
  async _media(stream, onlyAudio) {
    if (!stream) {
      try {
        ({ stream } = await getLocalMedia({ audioOnly: onlyAudio }));
      } catch (err) {
        console.warn("vitrine consult: joining without camera or microphone:", err && err.name);
        stream = null;
      }
    }
    if (stream && onlyAudio) {
      for (const track of stream.getVideoTracks()) {
        stream.removeTrack(track);
        track.stop();
      }
    }
    if (this.ended) {
      stopStream(stream);
      return false;
    }
    this.stream = stream;
    this._showLocal();
    return true;
  }

  async _connect(setup) {
    const { stream } = this;
    const room = new VitrineRoom();
    this.room = room;
    room.addEventListener("track", () => this._refreshRemote());
    room.addEventListener("trackended", () => this._refreshRemote());
    room.addEventListener("connectionstate", ({ detail }) => {
      if (room !== this.room || this.ended) return;
      if (detail.state === "connected") {
        const peer = this.setup && this.setup.peer_name;
        this.stateText.textContent = peer ? this.t("call_with", { name: peer }) : this.t("call_connected");
      } else if (detail.state === "failed" && this.started) {
        this.onError("error_media");
      }
    });
    room.addEventListener("error", ({ detail }) => {
      if (room === this.room && !this.ended) console.warn("vitrine consult: call error:", detail && detail.code);
    });
    try {
      // reconnect: a phone that changes network joins again with a fresh peer connection.
      await room.connect({ url: this.base, token: setup.token, stream, name: this.name || null, reconnect: true });
    } catch (err) {
      if (room === this.room && !this.ended) {
        console.warn("vitrine consult: could not join the call:", err && err.code);
        if (this.started) this.onError("error_media");
        else this.room = null; // the ring's connection failed: call_started connects afresh
      }
    }
  }

  _showLocal() {
    const hasVideo = Boolean(this.stream && this.stream.getVideoTracks().length);
    this.local.srcObject = hasVideo ? this.stream : null;
    this.local.hidden = !hasVideo;
    this.local.dataset.facing = this.facing;
    this.mute.hidden = !(this.stream && this.stream.getAudioTracks().length);
    this.camera.hidden = !hasVideo;
    if (hasVideo) {
      this.local.play().catch(() => {});
      countCameras().then((n) => {
        this.flip.hidden = this.ended || n < 2 || !this.stream || !this.stream.getVideoTracks().length;
      });
    } else {
      this.flip.hidden = true;
    }
  }

  /** One MediaStream with the agent's current tracks, played by video.remote (audio included). */
  _refreshRemote() {
    if (!this.room || this.ended) return;
    const tracks = [...this.room.remoteTracks.values()].map((r) => r.track).filter((tr) => tr.readyState !== "ended");
    const hasVideo = tracks.some((tr) => tr.kind === "video");
    this.stage.dataset.video = hasVideo ? "remote" : "none";
    if (!hasVideo && tracks.length) this.stateText.textContent = this.t("call_audio_only");
    this.remote.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (!tracks.length) return;
    this.remote.play().catch((err) => {
      if (!err || err.name !== "NotAllowedError") return; // AbortError: a newer srcObject took over
      // Sound needs a user gesture in this browser: play muted now, offer a button for sound.
      this.remote.muted = true;
      this.remote.play().catch(() => {});
      this.sound.hidden = false;
    });
    if (hasVideo && this.started) this._watchFirstFrame();
  }

  /** performance.mark("vitrine:first-frame") on the agent's first painted frame, then `perf` once. */
  _watchFirstFrame() {
    if (this._perfSent || this._watchingFrames) return;
    this._watchingFrames = true;
    const video = this.remote;
    const done = () => {
      if (this._perfSent || this.ended || !(video.videoWidth > 0)) return false;
      this._perfSent = true;
      const firstFrame = markTime("vitrine:first-frame");
      const ms = Math.max(0, Math.min(600_000, firstFrame - this._acceptedAt));
      this.send({ type: "perf", accept_to_first_frame_ms: Math.round(ms * 10) / 10 });
      return true;
    };
    if (typeof video.requestVideoFrameCallback === "function") {
      const onFrame = () => {
        if (!done() && !this._perfSent && !this.ended) video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    } else {
      video.addEventListener("playing", done);
      video.addEventListener("resize", done);
    }
  }

  _toggle(kind) {
    const tracks = this.stream ? (kind === "audio" ? this.stream.getAudioTracks() : this.stream.getVideoTracks()) : [];
    if (!tracks.length) return;
    const turnOff = tracks.some((track) => track.enabled);
    for (const track of tracks) track.enabled = !turnOff; // a disabled track sends silence / black
    const button = kind === "audio" ? this.mute : this.camera;
    const label = this.t(kind === "audio" ? (turnOff ? "unmute" : "mute") : (turnOff ? "camera_on" : "camera_off"));
    button.setAttribute("aria-pressed", String(turnOff));
    button.setAttribute("aria-label", label);
    button.title = label;
    setChildren(button, turnOff ? icon(kind === "audio" ? "mic" : "camera", "slash") : icon(kind === "audio" ? "mic" : "camera"));
    if (kind === "video") this.local.classList.toggle("vt-off", turnOff);
  }

  /** Front <-> rear camera: a new track, swapped into the sender without renegotiation. */
  async _flip() {
    const old = this.stream && this.stream.getVideoTracks()[0];
    if (!old || this.flip.disabled) return;
    this.flip.disabled = true;
    const next = this.facing === "user" ? "environment" : "user";
    let track = null;
    let facing = next;
    try {
      // Many phones cannot open both cameras at once: release the current one first.
      old.stop();
      track = await getCameraTrack(next);
    } catch (err) {
      console.warn("vitrine consult: could not switch camera:", err && err.name);
      facing = this.facing;
      try {
        track = await getCameraTrack(facing); // get the old camera back
      } catch {
        track = null;
      }
      this.onError("error_generic");
    }
    if (track && !this.ended) {
      this.facing = facing;
      track.enabled = old.enabled;
      try {
        await this._replaceVideo(track);
      } catch (err) {
        console.warn("vitrine consult: could not send the new camera:", err && err.name);
      }
      this.stream.removeTrack(old);
      this.stream.addTrack(track);
      this.local.srcObject = this.stream;
      this.local.dataset.facing = this.facing;
    } else if (track) {
      track.stop();
    }
    this.flip.disabled = false;
  }

  _replaceVideo(track) {
    const room = this.room;
    if (!room) return Promise.resolve();
    if (typeof room.replaceTrack === "function") return room.replaceTrack("video", track);
    // An older vitrine-client.js: swap the sender's track on its public RTCPeerConnection.
    const sender = room.pc && room.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    return sender ? sender.replaceTrack(track) : Promise.resolve();
  }

  _sendChat() {
    const text = this.input.value.trim().slice(0, MAX_TEXT);
    if (!text || this.ended) return;
    this.send({ type: "chat", text });
    this.input.value = "";
    const line = this._line({ sender: "shopper", text });
    line.classList.add("vt-pending");
    this._pending.push(line);
  }

  /** A `chat` push. Our own lines come back from the server: confirm the pending copy instead of repeating it. */
  onChat(line) {
    if (!line || typeof line.text !== "string") return;
    if (line.sender === "shopper") {
      const index = this._pending.findIndex((el) => el.dataset.text === line.text);
      if (index >= 0) {
        const [el] = this._pending.splice(index, 1);
        el.classList.remove("vt-pending");
        return;
      }
    }
    this._line(line);
  }

  _line({ sender, name, text }) {
    const mine = sender === "shopper";
    const who = mine ? this.t("chat_you") : (name || this.t("chat_agent"));
    const el = h("li", { class: "vt-line", dataset: { sender: mine ? "shopper" : "agent" } },
      h("span", { class: "vt-line-name", text: who }), h("span", { class: "vt-line-text", text }));
    el.dataset.text = text;
    this.log.append(el);
    this.log.scrollTop = this.log.scrollHeight;
    return el;
  }

  /** A `product` push: newest first, one card per SKU. */
  onProduct(product) {
    if (!product || !product.sku) return;
    for (const old of this.cards.querySelectorAll(".vt-card")) {
      if (old.dataset.sku === String(product.sku)) old.remove();
    }
    this.cards.prepend(card(this.t, this.lang, product, (p, button) => this._addToCart(p, button)));
  }

  _addToCart(product, button) {
    this.send({ type: "add_to_cart", sku: product.sku });
    const detail = { sku: product.sku, title: product.title, price: product.price, currency: product.currency,
      url: safeUrl(product.url) };
    this.host.dispatchEvent(new CustomEvent("vitrine:add-to-cart", { detail, bubbles: true, composed: true }));
    button.textContent = this.t("card_added");
    button.classList.add("vt-added");
    setTimeout(() => {
      button.textContent = this.t("card_add");
      button.classList.remove("vt-added");
    }, 2500);
  }

  /** Leave the room and release the camera; the view stays until the app replaces it. */
  end() {
    if (this.ended) return;
    this.ended = true;
    if (this.room) this.room.close();
    this.room = null;
    stopStream(this.stream);
    this.stream = null;
    this.local.srcObject = null;
    this.remote.srcObject = null;
    this.flip.hidden = true;
  }
}

function markTime(name) {
  try {
    const mark = performance.mark(name);
    if (mark && typeof mark.startTime === "number") return mark.startTime;
  } catch {
    /* very old browsers return undefined */
  }
  return performance.now();
}
