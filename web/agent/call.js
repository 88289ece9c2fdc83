/**
 * call.js: the in-call panel (#call: video, controls, chat, product cards, private notes)
 * and the wrap-up panel (#wrapup) of the agent console.
 *
 * The desk decides when a call starts and ends (call_started / call_ended); this module
 * shows it, sends what the agent does (chat, note, end_call, wrap_up) through `send`, and
 * runs the media through CallMedia.
 */

import { CallMedia } from "./media.js";
import * as R from "./render.js";
import { t } from "./strings.js";

const NOTES_DEBOUNCE_MS = 1000;
const WRAPUP_KEY = "vitrine.agent.wrapup";
const ENDED_BY = { shopper: "ended_by_shopper", agent: "ended_by_agent", disconnect: "ended_by_disconnect" };

const $ = (selector) => document.querySelector(selector);

export class CallPanel {
  /**
   * @param {object} hooks
   * @param {(message: object) => boolean} hooks.send  send on the desk socket; false (and a notice) when down
   * @param {(message: object) => boolean} hooks.trySend  the same, silently
   * @param {() => void} hooks.changed  the call or wrap-up started or ended (re-render what depends on it)
   */
  constructor({ send, trySend, changed }) {
    this.send = send;
    this.trySend = trySend;
    this.changed = changed;
    this.call = null;   // { id, setup, context, startedAt, media, notesTimer, notesDirty, pendingChat }
    this.wrapup = null; // { ticket, notes, summary } while the wrap-up panel is open
    this.lastWrapup = null;
    this.shown = new Set(); // SKUs shown in the current call
    this.ui = {
      call: $("#call"), peer: $("#call .peer"), timer: $("#call-timer"), state: $("#call-state"),
      context: $("#call .call-context"), remote: $("#call video.remote"), local: $("#call video.local"),
      audioOnly: $("#call .audio-only"), mute: $("#mute"), camera: $("#camera"), share: $("#share-screen"),
      enableSound: $("#enable-sound"), endCall: $("#end-call"), message: $("#call-message"),
      chatLog: $("#chat-log"), chatForm: $("#chat-form"), chatInput: $("#chat-input"),
      notes: $("#notes"), notesState: $("#notes-state"),
      wrapup: $("#wrapup"), wrapupSummary: $("#wrapup .wrapup-summary"), wrapupNotes: $("#wrapup-notes"),
      wrapupSubmit: $("#wrapup-submit"),
    };
    this._wire();
  }

  get active() {
    return Boolean(this.call);
  }

  // -- desk pushes ----------------------------------------------------------------------------

  async start({ setup, context }, agentName) {
    if (this.call && this.call.id === setup.call) return; // re-sent after a reconnect: already in it
    this.teardown();
    const ui = this.ui;
    const ctx = context || {};
    const call = this.call = {
      id: setup.call, setup, context: ctx, startedAt: Date.now(), media: null,
      notesTimer: null, notesDirty: false, pendingChat: [],
    };
    this.shown.clear();
    ui.chatLog.replaceChildren();
    ui.notes.value = "";
    ui.notesState.textContent = "";
    ui.peer.textContent = setup.peer_name || R.shopperName(ctx);
    ui.context.replaceChildren(R.contextFacts(ctx));
    ui.timer.dataset.sinceMs = String(call.startedAt);
    R.tick(ui.call);
    ui.state.textContent = "";
    ui.audioOnly.hidden = !setup.audio_only;
    ui.call.classList.toggle("audio-only-call", Boolean(setup.audio_only));
    for (const button of [ui.mute, ui.camera, ui.share]) {
      button.setAttribute("aria-pressed", "false");
      button.disabled = false;
    }
    this.relabel();
    ui.endCall.disabled = false;
    ui.enableSound.hidden = true;
    ui.message.hidden = true;
    ui.call.hidden = false;
    this._hideWrapup();
    this.changed();
    ui.chatInput.focus();

    const media = call.media = new CallMedia({ localVideo: ui.local, remoteVideo: ui.remote });
    media.addEventListener("message", ({ detail }) => {
      if (this.call !== call) return;
      if (detail.state) { // "connected", "connecting": the header's state line, in the current language
        ui.state.dataset.state = detail.state;
        ui.state.textContent = detail.text;
        ui.state.dataset.kind = detail.kind;
      } else {
        this.message(detail.text, detail.kind);
      }
    });
    media.addEventListener("sound-blocked", () => { ui.enableSound.hidden = false; });
    media.addEventListener("share", ({ detail }) => {
      ui.share.setAttribute("aria-pressed", String(detail.sharing));
      this.relabel();
    });
    try {
      await media.start(setup, agentName);
    } catch (err) {
      if (this.call === call) this.message(t("media_failed_start", { error: err.message }), "error");
    }
  }

  /** The call controls' labels follow their state and the console's language. */
  relabel() {
    const ui = this.ui;
    const pressed = (button) => button.getAttribute("aria-pressed") === "true";
    ui.mute.textContent = t(pressed(ui.mute) ? "unmute" : "mute");
    ui.camera.textContent = t(pressed(ui.camera) ? "camera_on" : "camera_off");
    ui.share.textContent = t(pressed(ui.share) ? "stop_sharing" : "share_screen");
    if (ui.state.dataset.state) ui.state.textContent = t(`media_${ui.state.dataset.state}`);
  }

  /** The console's language changed: the labels and the shopper's facts are drawn again. */
  redraw() {
    this.relabel();
    if (this.call) this.ui.context.replaceChildren(R.contextFacts(this.call.context));
  }

  chat(line) {
    if (!this.call) return;
    const log = this.ui.chatLog;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const node = R.chatLine(line);
    // Our own lines come back from the desk in order: each replaces the oldest pending copy.
    const pending = line.sender === "agent" ? this.call.pendingChat.shift() : null;
    if (pending) pending.el.replaceWith(node);
    else log.append(node);
    if (atBottom || line.sender === "agent") log.scrollTop = log.scrollHeight;
  }

  product(card) {
    if (!this.call) return;
    this.shown.add(card.sku);
    this.ui.chatLog.append(R.productLine(card));
    this.ui.chatLog.scrollTop = this.ui.chatLog.scrollHeight;
    this.changed();
  }

  ended({ call: ticket, ended_by, talk_ms }) {
    const call = this.call;
    const notes = call && call.id === ticket ? this.ui.notes.value : "";
    const who = call ? this.ui.peer.textContent : t("ended_by_shopper");
    if (call && call.id === ticket && call.notesDirty) this.flushNotes();
    this.teardown();
    const by = ENDED_BY[ended_by] ? t(ENDED_BY[ended_by]) : ended_by;
    this.showWrapup({ ticket, notes, summary: t("call_summary", { who, by, time: R.duration(talk_ms) }) });
  }

  /** The desk says this agent is no longer in a call: it ended while the desk socket was down. */
  lost(status) {
    const call = this.call;
    if (!call) return;
    const notes = this.ui.notes.value;
    const who = this.ui.peer.textContent;
    this.teardown();
    if (status === "wrap_up") {
      this.showWrapup({ ticket: call.id, notes, summary: t("call_lost_summary", { who }) });
    }
  }

  /** A desk error about something this panel sent. */
  error(ref, text) {
    if (ref === "chat" && this.call && this.call.pendingChat.length) {
      const { el } = this.call.pendingChat.shift();
      el.classList.replace("pending", "failed");
      el.title = t("not_sent", { text });
    } else if (ref === "end_call") {
      this.ui.endCall.disabled = false;
    } else if (ref === "wrap_up" && this.lastWrapup && !this.wrapup) {
      this.showWrapup(this.lastWrapup);
    }
  }

  /** Notes typed while the desk socket was down go out once it is back. */
  reconnected() {
    if (this.call && this.call.notesDirty) this.flushNotes();
  }

  message(text, kind = "") {
    this.ui.message.textContent = text;
    this.ui.message.dataset.kind = kind;
    this.ui.message.hidden = false;
  }

  /** Release the media and hide the call panel. Safe to call more than once. */
  teardown() {
    const call = this.call;
    if (!call) return;
    clearTimeout(call.notesTimer);
    if (call.media) call.media.close();
    this.call = null;
    this.shown.clear();
    delete this.ui.timer.dataset.sinceMs;
    delete this.ui.state.dataset.state;
    this.ui.call.hidden = true;
    this.changed();
  }

  // -- notes ------------------------------------------------------------------------------------

  flushNotes() {
    const call = this.call;
    if (!call) return;
    clearTimeout(call.notesTimer);
    call.notesTimer = null;
    if (!call.notesDirty) return;
    if (this.trySend({ type: "note", text: this.ui.notes.value })) {
      call.notesDirty = false;
      this.ui.notesState.textContent = t("notes_saved");
    } else {
      this.ui.notesState.textContent = t("notes_offline");
    }
  }

  // -- wrap-up ----------------------------------------------------------------------------------

  showWrapup(wrapup) {
    const ui = this.ui;
    const reopening = this.wrapup && this.wrapup.ticket === wrapup.ticket;
    this.wrapup = wrapup;
    this.lastWrapup = wrapup;
    sessionStorage.setItem(WRAPUP_KEY, wrapup.ticket);
    ui.wrapupSummary.textContent = wrapup.summary;
    if (!reopening) ui.wrapupNotes.value = wrapup.notes || "";
    ui.wrapupSubmit.disabled = false;
    ui.wrapup.hidden = false;
    this.changed();
    const focused = document.activeElement;
    if (!focused || !["INPUT", "TEXTAREA"].includes(focused.tagName)) ui.wrapupNotes.focus();
  }

  /** After a reload in wrap_up: the ticket from this tab's session, else the newest call not wrapped up. */
  recoverWrapup(history, agentId) {
    if (this.wrapup || this.call) return;
    let ticket = sessionStorage.getItem(WRAPUP_KEY);
    if (!ticket && agentId) {
      const mine = history.filter((c) => c.agent === agentId && c.outcome === "answered" && c.ended_ms && !c.wrap_up);
      mine.sort((a, b) => b.ended_ms - a.ended_ms);
      ticket = mine.length ? mine[0].id : null;
    }
    if (ticket) this.showWrapup({ ticket, notes: "", summary: t("finish_wrapup") });
  }

  submitWrapup() {
    const wrapup = this.wrapup;
    if (!wrapup) return;
    const notes = this.ui.wrapupNotes.value;
    if (!this.send({ type: "wrap_up", ticket: wrapup.ticket, notes })) return;
    this.lastWrapup = { ...wrapup, notes };
    this._hideWrapup();
    this.ui.wrapupNotes.value = "";
    this.changed();
  }

  _hideWrapup() {
    this.wrapup = null;
    sessionStorage.removeItem(WRAPUP_KEY);
    this.ui.wrapup.hidden = true;
  }

  /** Sign-out: forget everything. */
  reset() {
    this.teardown();
    this._hideWrapup();
    this.lastWrapup = null;
    this.ui.wrapupNotes.value = "";
  }

  // -- controls --------------------------------------------------------------------------------

  _wire() {
    const ui = this.ui;
    const media = () => this.call && this.call.media;

    ui.chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = ui.chatInput.value.trim();
      if (!text || !this.call) return;
      if (!this.send({ type: "chat", text })) return;
      const el = R.chatLine({ sender: "agent", name: t("you"), text, at_ms: Date.now() }, { pending: true });
      this.call.pendingChat.push({ text, el });
      ui.chatLog.append(el);
      ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
      ui.chatInput.value = "";
    });

    ui.notes.addEventListener("input", () => {
      const call = this.call;
      if (!call) return;
      call.notesDirty = true;
      ui.notesState.textContent = t("notes_editing");
      clearTimeout(call.notesTimer);
      call.notesTimer = setTimeout(() => this.flushNotes(), NOTES_DEBOUNCE_MS);
    });

    ui.mute.addEventListener("click", () => {
      const muted = media() ? media().toggleMute() : null;
      if (muted === null) return this.message(t("no_microphone"), "warn");
      ui.mute.setAttribute("aria-pressed", String(muted));
      this.relabel();
    });

    ui.camera.addEventListener("click", () => {
      const off = media() ? media().toggleCamera() : null;
      if (off === null) return this.message(t("no_camera"), "warn");
      ui.camera.setAttribute("aria-pressed", String(off));
      this.relabel();
    });

    ui.share.addEventListener("click", async () => {
      const m = media();
      if (!m) return;
      ui.share.disabled = true;
      try {
        if (m.sharing) await m.stopShare();
        else await m.startShare();
      } catch (err) {
        this.message(err.message, "warn");
      } finally {
        ui.share.disabled = false;
      }
    });

    ui.enableSound.addEventListener("click", () => {
      if (media()) media().enableSound();
      ui.enableSound.hidden = true;
    });

    ui.endCall.addEventListener("click", () => {
      if (!this.call) return;
      this.flushNotes();
      if (this.send({ type: "end_call" })) {
        ui.endCall.disabled = true;
        this.message(t("ending_call"));
      }
    });

    ui.wrapupSubmit.addEventListener("click", () => this.submitWrapup());
    ui.wrapupNotes.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.submitWrapup();
      }
    });

    window.addEventListener("beforeunload", (event) => {
      if (this.call) event.preventDefault(); // closing the tab would drop the shopper
    });
    window.addEventListener("pagehide", () => {
      if (this.call && this.call.media) this.call.media.close();
    });
  }
}
