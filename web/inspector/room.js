/**
 * room.js: the inspector's session in the case's room: one VitrineRoom (it receives the buyer's camera;
 * its own audio m-line is reserved at the join, so the connection is up before the buyer is admitted
 * and the microphone starts at once when the seller talks), the knocks at the door, and the room log as one stream of entries,
 * each delivered once whether it came live, from the history asked for at the first join, or from
 * VitrineRoom's catch-up after a reconnect.
 *
 * Events (CustomEvent detail):
 *   connection  { state: "connecting" | "ok" | "reconnecting" | "down" }
 *   entry       { entry, replay } a log entry (replay: from the history, already past)
 *   knocks      { knocks } the knocks waiting now (Map id -> Knock)
 *   people      {} the participants changed (room.participants)
 *   media       { stream } the buyer's media stream, or null when it went away
 *   refused     { code, message } the server refused something this console sent
 *   leave       { code, reason } the server ended this session
 */

import { VitrineRoom } from "../vitrine-client.js";

export class InspectorRoom extends EventTarget {
  constructor() {
    super();
    this.room = null;
    this.knocks = new Map();
    this._seen = new Set(); // log seqs delivered
    this._lastSeq = null; // the newest seq delivered, to resume from after a new connect()
    this._mic = null; // the seller's microphone, once they have talked
  }

  get joined() {
    return Boolean(this.room && this.room.joined);
  }

  get participants() {
    return this.room ? [...this.room.participants.values()] : [];
  }

  /** Join with an inspector token; `refreshToken` gives a fresh one for each reconnect. */
  async connect(token, refreshToken) {
    this.close();
    const room = new VitrineRoom();
    this.room = room;
    this._wire(room);
    this._emit("connection", { state: "connecting" });
    await room.connect({ url: window.location.origin, token, reconnect: true, refreshToken, reserve: ["audio"] });
  }

  close() {
    const room = this.room;
    this.room = null;
    if (room) room.close();
    if (this._mic) this._mic.stop();
    this._mic = null;
  }

  /**
   * Talk to the buyer (true) or stop (false): the microphone opens on the first use and goes on the
   * reserved m-line, without renegotiating. False when not joined; rejects if the microphone is refused.
   */
  async talk(on) {
    if (!this.joined) return false;
    if (on && !this._mic) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
      this._mic = stream.getAudioTracks()[0];
      await this.room.replaceTrack("audio", this._mic);
    }
    if (this._mic) await this.room.setSending("audio", on);
    return true;
  }

  /** Send an inspect body; false when not joined (nothing was sent). */
  inspect(body) {
    return this.joined ? this.room.inspect(body) : false;
  }

  chat(text) {
    if (!this.joined) return false;
    this.room.sendChat(text);
    return true;
  }

  admit(knockId, admit) {
    if (!this.joined) return false;
    this.room.admit(knockId, admit);
    return true;
  }

  _wire(room) {
    const on = (type, handler) => room.addEventListener(type, ({ detail }) => {
      if (this.room === room) handler(detail);
    });
    let asked = false;
    on("joined", (joined) => {
      this.knocks.clear();
      for (const knock of joined.knocks || []) this.knocks.set(knock.id, knock);
      this._emit("knocks", { knocks: this.knocks });
      this._emit("connection", { state: "ok" });
      this._emit("people", {});
      if (!asked) { // this room's own reconnects catch up by themselves (VitrineRoom)
        asked = true;
        room.requestHistory(this._lastSeq === null ? { limit: 200 } : { after: this._lastSeq, limit: 200 });
      }
    });
    on("knock", ({ knock, ended }) => {
      if (ended) this.knocks.delete(knock.id);
      else this.knocks.set(knock.id, knock);
      this._emit("knocks", { knocks: this.knocks });
    });
    on("participant", () => this._emit("people", {}));
    on("log", (entry) => this._deliver(entry, false));
    on("history", ({ entries }) => {
      for (const entry of entries) this._deliver(entry, true);
    });
    on("track", ({ stream }) => this._emit("media", { stream }));
    on("trackended", () => {
      if (room.remoteTracks.size === 0) this._emit("media", { stream: null });
    });
    on("error", (error) => this._emit("refused", error));
    on("leave", ({ code, reason }) => this._emit("leave", { code, reason }));
    on("reconnecting", () => this._emit("connection", { state: "reconnecting" }));
    on("close", () => this._emit("connection", { state: "down" }));
  }

  _deliver(entry, replay) {
    if (this._seen.has(entry.seq)) return;
    this._seen.add(entry.seq);
    this._lastSeq = Math.max(this._lastSeq || 0, entry.seq);
    this._emit("entry", { entry, replay });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
