/**
 * app.js: the storefront "video consult" widget, mounted by widget.js into an open shadow root.
 *
 *   launcher (status from GET /v1/consult/{shop}/status, every 30 s while idle)
 *     -> intro (why camera and microphone) -> device check (preview, mic level, audio only)
 *     -> waiting (position and wait pushed live; cancel) -> call (call.js) -> rating -> thanks
 *   closed / no_answer -> leave a message or book a callback -> request saved
 *
 * The desk socket protocol is vitrine/consult/protocol.py; DeskSocket (vitrine-client.js) keeps the socket alive and
 * resumes the ticket after a drop. The ticket token lives in sessionStorage only (so a shopper
 * who opens another product page keeps their place) and is never logged.
 * Nothing from the server or the shopper is ever parsed as HTML (see dom.js).
 */

import { CallSession } from "./call.js";
import { ContactForm } from "./contact.js";
import { DeskSocket, deskUrl } from "../vitrine-desk.js";
import { h, icon, setChildren } from "./dom.js";
import { formatOpening, shopperTimeZone, waitPhrase } from "./format.js";
import { pickLanguage, translator } from "./i18n.js";
import { DeviceCheck } from "./precall.js";
import * as views from "./views.js";

const STATUS_REFRESH_MS = 30_000;
const ERROR_VISIBLE_MS = 8_000;

/** Shown while the panel is open; the panel's X minimizes (keeps the state) in these. */
const ACTIVE = new Set(["connecting", "waiting", "call"]);

/** Mount the widget; returns the API widget.js exposes as window.VitrineConsult. */
export function mount(shadowRoot, options) {
  const app = new ConsultApp(shadowRoot, options);
  app.start();
  return { open: () => app.openPanel(), close: () => app.closePanel(), setProduct: (sku) => app.setProduct(sku) };
}

class ConsultApp {
  constructor(shadowRoot, { shop, sku = null, lang = null, name = null, base, host, styles = null,
    launcher = true }) {
    this.shadowRoot = shadowRoot;
    this.shop = shop;
    this.sku = sku;
    this.name = (name || "").trim().slice(0, 64) || null;
    this.base = base;
    this.host = host;
    this.styles = styles;
    this.showLauncher = launcher;
    this.lang = pickLanguage(lang);
    this.t = translator(this.lang);

    this.state = "idle";
    this.panelOpen = false;
    this.status = null;
    this.statusFailures = 0;
    this.statusSeen = false; // the launcher shows once the server has answered for this shop
    this.statusTimer = null;
    this.desk = null;
    this.intent = "call"; // "message": the shopper only wants to leave a message
    this.audioOnly = false; // the shopper's choice, sent as context.audio_only
    this.call = null;
    this.position = null;
    this.stars = 0;
    this.errorTimer = null;
    this.tokenKey = `vitrine-consult:${shop}:ticket`;
    this.audioKey = `vitrine-consult:${shop}:audio-only`;
  }

  // -- building -------------------------------------------------------------------------

  start() {
    const t = this.t;
    this.ui = views.shell(t, this.lang);
    this.v = {
      intro: views.intro(t),
      check: views.check(t),
      waiting: views.waiting(t),
      unavailable: views.unavailable(t, { name: this.name }),
      ended: views.ended(t),
    };
    for (const view of Object.values(this.v)) this.ui.body.append(view.el);
    this.check = new DeviceCheck(t, this.v.check);
    this.contact = new ContactForm(t, this.lang, this.v.unavailable, (message) => this._deskSend(message));
    this.shadowRoot.append(this.ui.root);
    this._wire();

    // Reveal only once our stylesheet is in: no flash of unstyled widget on the shop page.
    Promise.resolve(this.styles).then(() => { this.ui.root.hidden = false; },
      () => console.warn("vitrine consult: widget.css did not load"));

    this._renderLauncher();
    this._refreshStatus();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this._statusWanted()) this._refreshStatus();
    });
    window.addEventListener("pagehide", () => {
      if (this.call) this.call.end(); // the desk keeps the ticket for a while: the next page resumes it
    });

    if (this._storedToken()) this._resume();
  }

  _wire() {
    const { ui, v } = this;
    ui.launcher.addEventListener("click", () => (this.panelOpen ? this.closePanel() : this.openPanel()));
    ui.close.addEventListener("click", () => this.closePanel());
    ui.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closePanel();
    });

    v.intro.proceed.addEventListener("click", () => this._deviceCheck());
    v.intro.message.addEventListener("click", () => this._messageOnly());

    v.check.audioOnly.addEventListener("change", () => this.check.setAudioOnly(v.check.audioOnly.checked));
    v.check.retry.addEventListener("click", () => this._deviceCheck());
    v.check.joinAudio.addEventListener("click", () => {
      v.check.audioOnly.checked = true;
      this._deviceCheck();
    });
    v.check.message.addEventListener("click", () => this._messageOnly());
    v.check.start.addEventListener("click", () => this._enterQueue());

    v.waiting.cancel.addEventListener("click", () => {
      this._deskSend({ type: "cancel" });
      this._reset();
    });

    v.unavailable.done.addEventListener("click", () => this.closePanel());

    const e = v.ended;
    e.stars.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-stars]");
      if (!button) return;
      this.stars = Number(button.dataset.stars);
      for (const b of e.stars.querySelectorAll("button")) {
        const on = Number(b.dataset.stars) <= this.stars;
        b.classList.toggle("vt-on", on);
        b.setAttribute("aria-pressed", String(Number(b.dataset.stars) === this.stars));
      }
      e.submit.disabled = false;
    });
    e.submit.addEventListener("click", () => {
      if (!this.stars) return;
      const comment = e.comment.value.trim().slice(0, views.MAX_TEXT);
      e.submit.disabled = true;
      this._deskSend({ type: "rate", stars: this.stars, ...(comment ? { comment } : {}) });
    });
    e.skip.addEventListener("click", () => this.closePanel());
    e.done.addEventListener("click", () => this.closePanel());
  }

  // -- public ---------------------------------------------------------------------------

  openPanel() {
    if (this.state === "idle") {
      if (this._unstaffed()) this._messageOnly(); // straight to message / callback
      else this._setState("intro");
    }
    this.panelOpen = true;
    this.ui.panel.hidden = false;
    this._render();
    const focusable = this.ui.panel.querySelector(".vt-view:not([hidden]) button:not([disabled]):not([hidden])");
    (focusable || this.ui.close).focus({ preventScroll: true });
  }

  closePanel() {
    if (!this.panelOpen) return;
    this.panelOpen = false;
    this.ui.panel.hidden = true;
    if (!ACTIVE.has(this.state)) this._reset(); // waiting and in-call are only minimized
    this._render();
    this.ui.launcher.focus({ preventScroll: true });
  }

  setProduct(sku) {
    this.sku = sku ? String(sku).slice(0, 64) : null;
  }

  // -- flow ------------------------------------------------------------------------------

  _deviceCheck() {
    this._setState("check");
    this.check.start().then(() => this._render());
  }

  _enterQueue() {
    this.intent = "call";
    this.audioOnly = this.check.audioOnly;
    this._storeAudioOnly(this.audioOnly);
    this._setState("connecting");
    this._openDesk();
  }

  /**
   * Leave a message or book a callback without a call: `enter` with intent "message" is answered
   * with `message` and the callback slots, and never queues the shopper or rings an agent.
   */
  _messageOnly() {
    this.intent = "message";
    this.check.release();
    this._setState("unavailable");
    this._closeDesk(); // a socket opened for a call would have entered the queue
    this._openDesk();
  }

  /** Closed, or nobody at the desk: `enter` is answered with `closed`/`no_answer` and slots. */
  _unstaffed() {
    return Boolean(this.status && !this.status.accepting);
  }

  _resume() {
    this.intent = "call";
    this.audioOnly = this._storedAudioOnly();
    this._setState("connecting");
    this._openDesk();
    this.openPanel();
  }

  _openDesk() {
    if (this.desk) return;
    const desk = new DeskSocket(deskUrl(this.base, "shopper"), { hello: () => this._hello(), queue: true });
    this.desk = desk;
    desk.addEventListener("message", ({ detail }) => desk === this.desk && this._onDesk(detail));
    desk.addEventListener("state", ({ detail }) => {
      if (desk !== this.desk) return;
      this.ui.banner.hidden = detail.state !== "reconnecting" || !ACTIVE.has(this.state);
    });
    desk.addEventListener("refused", () => {
      if (desk !== this.desk) return;
      this._showError("error_unavailable");
      this._closeDesk();
      if (ACTIVE.has(this.state)) this._setState("intro");
    });
    desk.open();
  }

  _hello() {
    const token = this._storedToken();
    if (token) return { type: "resume", token };
    const intent = this.intent === "message" ? "message" : "call";
    return { type: "enter", shop: this.shop, context: this._context(), intent };
  }

  _context() {
    const context = {
      language: this.lang,
      timezone: shopperTimeZone(),
      page_url: String(location.href).slice(0, 2048),
      page_title: String(document.title || "").slice(0, 200) || null,
      audio_only: Boolean(this.audioOnly),
    };
    if (this.sku) context.sku = String(this.sku).slice(0, 64);
    if (this.name) context.name = this.name;
    return context;
  }

  _deskSend(message) {
    if (!this.desk) this._openDesk();
    this.desk.send(message); // kept until the socket is back if it is down
  }

  _closeDesk() {
    if (this.desk) this.desk.close();
    this.desk = null;
    this.ui.banner.hidden = true;
  }

  // -- server messages ----------------------------------------------------------------------

  _onDesk(m) {
    switch (m.type) {
      case "ticket":
        this._storeToken(m.token);
        this._onPosition(m);
        break;
      case "position":
        if (this.intent !== "message") this._onPosition(m);
        break;
      case "closed":
      case "no_answer":
      case "message":
        this._onUnavailable(m);
        break;
      case "call_ringing":
        this._onCallRinging(m.setup || {});
        break;
      case "call_started":
        this._onCallStarted(m.setup || {});
        break;
      case "chat":
        if (this.call) this.call.onChat(m.line);
        break;
      case "product":
        if (this.call) this.call.onProduct(m.card);
        break;
      case "call_ended":
        this._onCallEnded();
        break;
      case "request_saved":
        this._onRequestSaved(m.request || {});
        break;
      case "rated":
        this._storeToken(null);
        this.v.ended.rating.hidden = true;
        this.v.ended.thanks.hidden = false;
        this.v.ended.done.focus({ preventScroll: true });
        this._closeDesk();
        break;
      case "error":
        this._onServerError(m);
        break;
      default:
        break; // newer message types are ignored
    }
  }

  _onPosition({ position, wait_s: waitS, ringing }) {
    if (this.state === "connecting" || this.state === "check" || this.state === "intro") this._setState("waiting");
    if (this.state !== "waiting") return;
    this.position = position;
    const w = this.v.waiting;
    const pos = ringing ? this.t("wait_ringing")
      : position === 1 ? this.t("wait_next")
        : Number.isInteger(position) && position > 1 ? this.t("wait_position", { n: position }) : "";
    w.position.textContent = pos;
    w.position.dataset.position = String(position ?? "");
    w.wait.textContent = ringing ? "" : (waitPhrase(this.t, waitS) || this.t("wait_unknown"));
    this._renderLauncher();
  }

  _onUnavailable(m) {
    this._storeToken(null); // a no_answer ends the ticket
    this._dropCall();
    this.check.release();
    if (this.state !== "unavailable") this._setState("unavailable");
    this.contact.update(m);
    if (!this.panelOpen && m.type === "no_answer") this.openPanel();
  }

  /**
   * `call_ringing`: an agent is being rung. Connect to the call's room now with the preview's media; the token
   * knocks, so the connection is set up while nothing of ours reaches the agent. The accept only admits it,
   * and a ring that passes on keeps it for the next agent.
   */
  _onCallRinging(setup) {
    if (this.call && !this.call.ended && this.call.setup && this.call.setup.room === setup.room) return;
    this._dropCall();
    const call = this._newCall();
    call.prepare(setup, this.check.take(), this.audioOnly);
  }

  _onCallStarted(setup) {
    const call = this.call;
    if (call && call.started && call.setup && call.setup.call === setup.call && !call.ended) return;
    if (call && !call.ended && call.setup && call.setup.room === setup.room) {
      call.start(setup, null, this.audioOnly); // connected while it rang: the accept has admitted it
    } else {
      this._dropCall();
      const fresh = this._newCall();
      const stream = this.check.take(); // the call owns it now (null after a page change: it asks again)
      fresh.start(setup, stream, this.audioOnly); // first: the join leaves before any layout work
    }
    this.ui.body.append(this.call.el);
    this._setState("call");
    if (!this.panelOpen) this.openPanel();
  }

  _newCall() {
    const call = new CallSession({ t: this.t, lang: this.lang, base: this.base, name: this.name, host: this.host,
      send: (message) => this._deskSend(message), onError: (key) => this._showError(key) });
    this.call = call;
    call.endButton.addEventListener("click", () => {
      this._deskSend({ type: "end_call" });
      this._onCallEnded();
    });
    return call;
  }

  /** The call (or the connection made while it rang) is over: leave its room, release its camera. */
  _dropCall() {
    if (!this.call) return;
    this.call.end();
    this.call.el.remove();
    this.call = null;
  }

  _onCallEnded() {
    if (this.state !== "call" || !this.call) {
      // Resumed (another page) after the call ended: the rating is still to give.
      if (this.state === "connecting" || this.state === "waiting") this._showRating(null);
      return;
    }
    this._showRating(this.call);
  }

  _showRating(call) {
    if (call) call.end();
    this.stars = 0;
    const e = this.v.ended;
    e.rating.hidden = false;
    e.thanks.hidden = true;
    e.submit.disabled = true;
    e.comment.value = "";
    for (const b of e.stars.querySelectorAll("button")) {
      b.classList.remove("vt-on");
      b.setAttribute("aria-pressed", "false");
    }
    // The products shown stay within reach after the call.
    if (call && call.cards.childElementCount) {
      setChildren(e.products, h("h4", { text: this.t("products") }), call.cards);
    } else e.products.replaceChildren();
    if (call) call.el.remove();
    this._setState("ended");
    if (!this.panelOpen) this.openPanel(); // ended while minimized: the rating is in the panel
  }

  _onRequestSaved(request) {
    this._storeToken(null);
    this.contact.saved(request);
    this._closeDesk();
  }

  _onServerError({ code, ref }) {
    if (ref === "resume") {
      // The ticket is gone (expired, or the server restarted): start over quietly.
      this._storeToken(null);
      this._closeDesk();
      if (ACTIVE.has(this.state)) {
        this._setState("idle");
        this.closePanel();
      }
      return;
    }
    this._showError(code === "rate_limited" ? "error_busy"
      : ["shop_not_found", "permission_denied", "origin_not_allowed"].includes(code) ? "error_unavailable"
        : "error_generic", code);
    if (ref === "enter") {
      this._closeDesk();
      if (this.state === "connecting") this._setState(this.check.stream ? "check" : "intro");
    }
    if (ref === "leave_message" || ref === "book_callback") this.contact.failed();
    if (ref === "rate") this.v.ended.submit.disabled = false;
  }

  // -- rendering ----------------------------------------------------------------------------

  _setState(state) {
    if (state !== this.state) this._hideError();
    if (this.state === "check" && !["check", "connecting", "waiting"].includes(state)) this.check.release();
    if (state === "unavailable" && this.state !== "unavailable") this.contact.reset();
    this.state = state;
    this._render();
  }

  _render() {
    const { ui, v, state } = this;
    const show = { intro: "intro", check: "check", connecting: "waiting", waiting: "waiting",
      unavailable: "unavailable", ended: "ended" }[state];
    for (const [name, view] of Object.entries(v)) view.el.hidden = name !== show;
    if (this.call) this.call.el.hidden = state !== "call";
    if (state === "connecting") {
      v.waiting.position.textContent = this.t("connecting");
      v.waiting.wait.textContent = "";
    }
    ui.panel.dataset.state = state;
    ui.root.dataset.state = state;
    ui.root.dataset.panel = this.panelOpen ? "open" : "closed";
    ui.launcher.setAttribute("aria-expanded", String(this.panelOpen));
    const minimize = ACTIVE.has(state);
    const label = this.t(minimize ? "minimize" : "close");
    ui.close.setAttribute("aria-label", label);
    ui.close.title = label;
    setChildren(ui.close, icon(minimize ? "minimize" : "close"));
    ui.title.textContent = this.status && this.status.name ? this.t("title_shop", { shop: this.status.name })
      : this.t("title");
    this._renderLauncher();
  }

  _renderLauncher() {
    const { ui, status, state } = this;
    let text = "";
    let open = "unknown";
    if (state === "waiting") {
      text = this.position === 1 ? this.t("status_next")
        : this.position > 1 ? this.t("status_in_line", { n: this.position }) : this.t("wait_heading");
    } else if (state === "connecting") text = this.t("connecting");
    else if (state === "call") text = this.t("status_in_call");
    else if (status) {
      open = status.accepting ? "true" : "false";
      if (status.open && !status.accepting) {
        text = this.t("status_message"); // open, but nobody online
      } else if (status.open) {
        text = waitPhrase(this.t, status.wait_s) || this.t("status_open");
      } else {
        text = status.next_opening_utc_ms
          ? this.t("status_opens", { when: formatOpening(this.lang, status.next_opening_utc_ms) })
          : `${this.t("status_closed")} · ${this.t("status_message")}`;
      }
    }
    if (ui.status.textContent !== text) {
      ui.status.textContent = text;
      if (state !== "idle") ui.launcherLive.textContent = text;
    }
    ui.status.hidden = !text;
    ui.launcher.hidden = !this.showLauncher || (!this.statusSeen && state === "idle");
    ui.launcher.querySelector(".vt-dot").dataset.open = ACTIVE.has(state) ? "active" : open;
  }

  _showError(key, code = null) {
    const el = this.ui.error;
    el.textContent = this.t(key);
    if (code) el.dataset.code = code;
    else delete el.dataset.code;
    el.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => this._hideError(), ERROR_VISIBLE_MS);
  }

  _hideError() {
    clearTimeout(this.errorTimer);
    this.ui.error.hidden = true;
  }

  // -- shop status --------------------------------------------------------------------------

  _statusWanted() {
    return this.state === "idle" || this.state === "intro" || this.state === "check";
  }

  async _refreshStatus() {
    clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(() => this._refreshStatus(), STATUS_REFRESH_MS);
    if (!this._statusWanted() || document.hidden) return;
    try {
      const url = new URL(`/v1/consult/${encodeURIComponent(this.shop)}/status`, this.base);
      const response = await fetch(url, { credentials: "omit", cache: "no-store" });
      if (!response.ok) throw new Error(String(response.status));
      const status = await response.json();
      if (!status || typeof status.open !== "boolean") throw new Error("not a status");
      this.status = status;
      this.statusSeen = true;
      this.statusFailures = 0;
    } catch {
      // Unreachable, an unknown shop, or a page origin the shop does not allow (the browser hides which:
      // no CORS header on the refusal). No button that cannot work; say why once, retry quietly.
      if (!this.statusSeen && this.statusFailures === 0) {
        console.warn(`vitrine consult: no status for shop ${JSON.stringify(this.shop)} from ${this.base}`
          + " (is the server up, the shop id right, and this page's origin in the shop's allowed_origins?)");
      }
      this.statusFailures += 1;
      if (this.statusFailures >= 2) this.status = null; // stale: show no wait or hours we cannot vouch for
    }
    this._render();
  }

  // -- bookkeeping ----------------------------------------------------------------------------

  /** Back to the launcher: media released, socket closed, ticket forgotten. */
  _reset() {
    this.check.release();
    this._closeDesk();
    this._storeToken(null);
    this._dropCall();
    this.intent = "call";
    this.position = null;
    this.state = "idle";
    if (this.panelOpen) {
      this.panelOpen = false;
      this.ui.panel.hidden = true;
    }
    this._render();
    this._refreshStatus();
  }

  _storedToken() {
    try {
      return sessionStorage.getItem(this.tokenKey);
    } catch {
      return this._memoryToken || null; // storage blocked (privacy mode, sandboxed frame): memory only
    }
  }

  _storeToken(token) {
    this._memoryToken = token || null;
    try {
      if (token) sessionStorage.setItem(this.tokenKey, token);
      else sessionStorage.removeItem(this.tokenKey);
    } catch {
      /* memory only */
    }
  }

  _storeAudioOnly(value) {
    try {
      sessionStorage.setItem(this.audioKey, value ? "1" : "0");
    } catch {
      /* not important */
    }
  }

  _storedAudioOnly() {
    try {
      return sessionStorage.getItem(this.audioKey) === "1";
    } catch {
      return false;
    }
  }
}
