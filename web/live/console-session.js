/**
 * console-session.js: the console's session in the show's room, as its host: one VitrineRoom
 * at a time (a new one when the seller starts or stops sending media), feeding the ShowModel.
 *
 * Events (CustomEvent detail):
 *   connection  { state: "connecting" | "ok" | "reconnecting" | "down", attempt }
 *   changed     { changed: Set of what to redraw (see ShowModel.apply, plus "all"), entry }
 *   error       { code, message, ref } from the server
 *   remote      { stream } the stream the room sends us (OBS), or null when it went
 *   leave       { reason } the server ended this session (the show ended, another console took over)
 */

import { VitrineRoom } from "../vitrine-client.js";

export class LiveSession extends EventTarget {
  /** @param {import("./console-model.js").ShowModel} model */
  constructor(model) {
    super();
    this.model = model;
    this.room = null;
    this.joined = false;
    this.publishing = false; // this session sends the seller's camera or screen
    this._asked = new Set(); // seqs already asked for with `history`
  }

  /** Join with a host token; `stream` is the seller's media, or null to run the show without sending any. */
  async connect(token, stream) {
    this.close();
    const room = new VitrineRoom();
    this.room = room;
    this.publishing = Boolean(stream);
    this._wire(room);
    this._emit("connection", { state: "connecting" });
    await room.connect({ url: window.location.origin, token, stream, publish: Boolean(stream), reconnect: true });
  }

  /** Leave (safe to call when not joined). */
  close() {
    const room = this.room;
    this.room = null;
    this.joined = false;
    if (room) room.close();
  }

  /** Run `send(room)` when joined; false when not connected (nothing was sent). */
  send(send) {
    if (!this.joined || !this.room) return false;
    send(this.room);
    return true;
  }

  /** A chat line older than what the page holds (a pinned message): fetched once. */
  fetchLine(seq) {
    if (this._asked.has(seq)) return;
    this._asked.add(seq);
    this.send((room) => room.requestHistory({ after: seq - 1, limit: 1 }));
  }

  _wire(room) {
    const on = (type, handler) => room.addEventListener(type, ({ detail }) => this.room === room && handler(detail));
    const changed = (what, entry = null) => this._emit("changed", { changed: new Set(what), entry });
    on("joined", (joined) => {
      this.joined = true;
      this.model.reset(joined.live);
      room.requestHistory({ limit: 100 });
      this._emit("connection", { state: "ok" });
      changed(["all"]);
    });
    on("log", (entry) => changed(this.model.apply(entry), entry));
    on("history", ({ entries }) => {
      this.model.addHistory(entries);
      changed(["chat", "people"]);
    });
    on("live", (stats) => {
      this.model.stats(stats);
      changed(["stats"]);
    });
    on("error", (error) => this._emit("error", error));
    on("track", ({ stream }) => this._emit("remote", { stream }));
    on("trackended", () => {
      if (room.remoteTracks.size === 0) this._emit("remote", { stream: null });
    });
    on("leave", ({ reason, code }) => {
      this.joined = false;
      this._emit("leave", { reason, code });
    });
    on("reconnecting", ({ attempt }) => {
      this.joined = false;
      this._emit("connection", { state: "reconnecting", attempt });
      changed(["all"]);
    });
    on("close", () => {
      this.joined = false;
      this._emit("connection", { state: "down" });
      changed(["all"]);
    });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
