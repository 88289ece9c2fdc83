// @ts-check
/**
 * vitrine-client.js: the browser side of Vitrine's WebSocket signaling (/v1/rtc). The consult
 * desk socket (`DeskSocket`, /v1/consult/...) is in vitrine-desk.js.
 * The consult widget, the agent console, the call page, the live pages and the inspection pages
 * (web/inspect.html, web/inspector.html) all use it.
 *
 * A small, dependency-free ES module. `VitrineRoom` mirrors vitrine/client.py (the
 * Python client) and speaks the protocol defined once in vitrine/protocol.py:
 *
 *   1. open ws(s)://HOST/v1/rtc and send `join` with the token and the tracks
 *      this client means to publish;
 *   2. receive `joined` (room snapshot, grants, ICE servers, event seq);
 *   3. answer every server `offer`, one at a time and in order. Its `mids`
 *      table says what each m-line is: "send" m-lines get our local track of
 *      that kind attached (sendonly), "recv" m-lines carry a remote track
 *      (track_sid, participant_sid);
 *   4. trickle our ICE candidates, then `candidate: null` at end of gathering
 *      (the server puts its own candidates in its SDP and never trickles);
 *   5. `ping` every 10 s (the server drops sockets idle for 30 s); `leave` to go;
 *   6. apply room `event`s in `seq` order (one per room change, numbered per room). An event ahead of a
 *      missing one waits up to 1 s for it (two servers' events can cross); if it stays missing (lost on
 *      the way), or a `seq` comes at or before the last one applied (the numbering restarted), send
 *      `resync` and replace the room state with its answer (`resync`: participants, tracks, seq, log_seq,
 *      live, knocks, read now), then apply the events after its `seq`. A gap in the log (`log_seq` ahead)
 *      is filled with `history`.
 *
 * Usage:
 *
 *   import { VitrineRoom } from "/vitrine-client.js";
 *   const room = new VitrineRoom();
 *   room.addEventListener("track", (e) => attach(e.detail.track, e.detail.trackSid));
 *   await room.connect({ token, stream });   // resolves with the `joined` message
 *   ...
 *   await room.replaceTrack("video", screenTrack);  // flip camera or share screen, no renegotiation
 *   room.close();
 *
 * A phone that changes network: `connect({ token, stream, reconnect: true, refreshToken })` joins
 * again on a fresh peer connection with the token `refreshToken()` resolves to (a join token is
 * short-lived or single-purpose: a knock's token must not be replayed once admitted).
 * `encoding: (track) => ({ scaleResolutionDownBy, maxBitrate })` sets the sender's encoding for each
 * local track attached or replaced (e.g. capture at full resolution, send a smaller video).
 * `setSending(kind, false)` stops sending a kind (pause) without renegotiating; true resumes.
 * `inspect(body)` sends an inspection action (vitrine/inspect/protocol.py); it comes back as `log`.
 *
 * Events (all CustomEvents; the payload is in `event.detail`):
 *   joined       the `joined` message (room, participant, grants, participants, tracks, seq)
 *   participant  { action: "joined" | "left", participant, seq, resync } (`resync: true`: a resync found it)
 *   roomevent    every room `event` message, once each, in seq order; a change that lost events hid comes
 *                as the event it would have been, with `resync: true` and the snapshot's seq
 *   resync       the `resync` answer, after its changes were emitted (`participants`/`tracks` are now its)
 *   track        { track, kind, trackSid, participantSid, mid, stream } a remote track arrived;
 *                `stream` is one MediaStream per remote participant (audio and video together)
 *   trackended   { track, kind, trackSid, participantSid, mid } a remote track went away
 *   connectionstate  { state } the RTCPeerConnection's connectionState
 *   error        { code, message, ref } from the server, or a local failure (code "client_error")
 *   leave        { reason, reconnect, code } the server ended the session (code: "banned", "show_ended",
 *                "replaced", "denied" or null)
 *   log          a room log entry { seq, kind, participant, at_ms, <body> }, each once, in seq order
 *                (after a reconnect, the entries missed meanwhile come first, fetched by `history`);
 *                kind is chat (text), reactions, moderation, product, deal or show (a live show), or
 *                inspect (an inspection's action: vitrine/inspect/protocol.py)
 *   chat         the same, for chat lines only { seq, participant, text, at_ms }
 *   history      { entries, last_seq } the answer to requestHistory() (older lines for a late joiner)
 *   live         { viewers, likes } a live show's counts, every few seconds while they change
 *   queued       { position } the server's media worker is busy connecting other joins: this one waits its
 *                turn, first come first served (position 1: next; told again every few seconds); `joined` follows
 *   waiting      { knock } a `needs_admit` token knocked: `joined` follows an admit, `leave` (code "denied") a no;
 *                the connection is set up meanwhile (the server's offer is answered), but nothing reaches the room
 *   knock        { knock, ended } to room admins: someone knocks (ended absent), or the knock was settled
 *                ("admitted", "denied", "left"); the same knock may come twice (also in `joined.knocks`)
 *   reconnecting { attempt, delayMs } the session dropped; joining again (with `reconnect: true`)
 *   reconnected  the new `joined` message after a reconnect; remote tracks arrive again as `track`
 *   datachannel  { channel } the server opened an RTCDataChannel on this peer connection (e.g. the
 *                inspection's "evidence" channel); after a reconnect it comes again, on the new connection
 *   close        { code, reason } the socket closed (always the last event)
 *
 * The token is a credential: this module never logs it, and it leaves the
 * browser only inside the `join` message.
 */

import { RoomState } from "./vitrine-roomstate.js";

export const PROTOCOL_VERSION = 1;

/** Ping well inside the server's 30 s idle timeout. */
const PING_INTERVAL_MS = 10_000;

/** Reconnect (opt-in): up to this many joins (same token, or refreshToken()'s), backing off from 0.5 s to 8 s. */
const MAX_RECONNECT_ATTEMPTS = 8;
const RECONNECT_BASE_DELAY_MS = 500;
const RECONNECT_MAX_DELAY_MS = 8000;

/** Where each local track kind is published from, as the protocol names it. */
const SOURCE_OF_KIND = { audio: "microphone", video: "camera" };

/**
 * Read the grants a join token claims, without verifying it (only the server
 * can). Useful to decide before joining whether to ask for a camera at all.
 * Returns null for anything that is not a readable JWT.
 */
export function tokenGrants(token) {
  try {
    const payload = String(token).trim().split(".")[1];
    if (!payload) return null;
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const claims = JSON.parse(atob(padded));
    return claims && typeof claims.grants === "object" ? claims.grants : null;
  } catch {
    return null;
  }
}

/**
 * A User Timing mark ("vitrine-room:joined", ...) at each step of a join, so an app or a benchmark
 * can see where the time to first frame goes (performance.getEntriesByType("mark")).
 */
function mark(step) {
  try {
    performance.mark(`vitrine-room:${step}`);
  } catch {
    /* marks are diagnostics only */
  }
}

/** Turn "http://host", "ws://host" or a full ".../v1/rtc" URL into the signaling URL. */
function signalingUrl(url) {
  const base = new URL(url || window.location.href, window.location.href);
  if (base.protocol === "http:") base.protocol = "ws:";
  if (base.protocol === "https:") base.protocol = "wss:";
  if (!base.pathname.endsWith("/v1/rtc")) base.pathname = "/v1/rtc";
  base.hash = "";
  base.search = "";
  return base.toString();
}

export class VitrineRoom extends EventTarget {
  constructor() {
    super();
    /** The `joined` message once admitted. */
    this.joined = null;
    /** The grants the server gave us (from `joined`). */
    this.grants = null;
    /** Our own participant view (from `joined`). */
    this.participant = null;
    /** The room's participants and tracks, from the snapshot and room events (vitrine-roomstate.js). */
    this._room = null;
    /** Remote tracks we receive, by mid: { track, kind, trackSid, participantSid, mid }. */
    this.remoteTracks = new Map();
    /** The last room log seq delivered as a `log` event (from `joined.log_seq` on). */
    this.logSeq = null;
    this._catchingUp = false;
    this._liveWhileCatchingUp = [];
    /** The RTCPeerConnection, created once joined. */
    this.pc = null;

    this._ws = null;
    this._localTracks = [];
    this._mids = {};
    this._streams = new Map(); // participant sid -> MediaStream of their tracks
    this._negotiation = Promise.resolve(); // server offers are handled one at a time, in order
    this._pingTimer = null;
    this._closed = false;
    this._options = null;
    this._attempt = 0; // reconnect attempts since the last successful join
    this._reconnectTimer = null;
    this._waiting = false; // knocked (`waiting`), not admitted yet: a drop knocks again when reconnecting
    this._pending = null; // connect()'s { resolve, reject } until it joins or gives up
    this._held = new Set(); // kinds not sent for now (setSending(kind, false))
    this._reserved = new Set(); // kinds with a send m-line and no track yet (connect's `reserve`)
  }

  /**
   * Connect and join. Resolves with the `joined` message; rejects with an
   * Error carrying `code` if the server refuses the join or the socket fails.
   *
   * @param {object} options
   * @param {string} options.token   the join token (a credential: never logged)
   * @param {string} [options.url]   server base URL (http(s) or ws(s)); defaults to this page's origin
   * @param {MediaStream} [options.stream]  local media to publish (its audio and video tracks)
   * @param {string} [options.name]  display name shown to others
   * @param {boolean|"auto"} [options.publish="auto"]  publish the stream's tracks? "auto" does so
   *        unless the token's grants say it may not (e.g. a viewer)
   * @param {boolean} [options.reconnect=false]  when the socket drops (a phone changing network, a
   *        server asking clients to move), join again with the same token and a fresh peer
   *        connection; emits `reconnecting` { attempt, delayMs } and `reconnected` (the new `joined`).
   *        A drop while knocking (`waiting`) knocks again, and the returned promise keeps waiting.
   * @param {() => Promise<string>} [options.refreshToken]  with `reconnect`: called before each
   *        rejoin for a fresh join token. A rejection counts as a failed attempt; one whose error has
   *        `final: true` ends the room (`error` with the error's code, then `close`)
   * @param {(track: MediaStreamTrack) => object|null} [options.encoding]  encoding parameters
   *        (scaleResolutionDownBy, maxBitrate...) for the sender of each local track, applied
   *        whenever a track is attached or replaced
   * @param {string[]} [options.reserve]  kinds ("audio", "video") to negotiate a send m-line for now
   *        with nothing on it yet, so the connection is up from the join and replaceTrack(kind, track)
   *        later starts sending at once (a console's microphone, opened only when it talks)
   */
  connect({ url, token, stream = null, name = null, publish = "auto", reconnect = false, refreshToken = null,
    encoding = null, reserve = [] } = /** @type {any} */ ({})) {
    if (this._ws) throw new Error("connect() may be called once per VitrineRoom");
    if (!token) throw new Error("a join token is required");

    const grants = tokenGrants(token);
    const mayPublish = publish === "auto" ? !(grants && grants.can_publish === false) : Boolean(publish);
    this._localTracks = mayPublish && stream ? stream.getTracks().filter((t) => t.kind in SOURCE_OF_KIND) : [];
    this._reserved = new Set(mayPublish ? reserve.filter((kind) => kind in SOURCE_OF_KIND
      && !this._localTracks.some((t) => t.kind === kind)) : []);
    this._options = { url, token, name, reconnect, refreshToken, encoding };
    return new Promise((resolve, reject) => {
      this._pending = { resolve, reject };
      this._open();
    });
  }

  /** Other participants by sid, kept current from the snapshot and room events (empty until joined). */
  get participants() {
    return this._room ? this._room.participants : new Map();
  }

  /** The room's published tracks by track sid, kept current like `participants`. */
  get tracks() {
    return this._room ? this._room.tracks : new Map();
  }

  /** The last room event seq applied (0 until joined). */
  get seq() {
    return this._room ? this._room.seq : 0;
  }

  /** Settle connect()'s promise (once). */
  _settle(ok, value) {
    const pending = this._pending;
    this._pending = null;
    if (pending) (ok ? pending.resolve : pending.reject)(value);
  }

  /** One signaling session: a socket, a join, a peer connection. Reconnecting opens another. */
  _open() {
    const { url, token, name } = this._options;
    const ws = new WebSocket(signalingUrl(url));
    this._ws = ws;
    let failed = false;

    ws.addEventListener("open", () => {
      const join = {
        type: "join",
        v: PROTOCOL_VERSION,
        token,
        publish: [...this._localTracks.map((t) => t.kind), ...this._reserved]
          .map((kind) => ({ kind, source: SOURCE_OF_KIND[kind] })),
      };
      if (name) join.name = name;
      this._send(join);
      mark("join-sent");
      this._pingTimer = setInterval(() => this._send({ type: "ping" }), PING_INTERVAL_MS);
    });

    ws.addEventListener("message", (event) => {
      if (ws !== this._ws) return; // a socket we already replaced
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        this._emit("error", { code: "client_error", message: "the server sent a frame that is not JSON" });
        return;
      }
      if (message.type === "joined") {
        const again = this._attempt > 0;
        this._attempt = 0;
        this._waiting = false;
        this._onJoined(message);
        if (again) this._emit("reconnected", message);
        this._settle(true, message);
      } else if (message.type === "error" && !this.joined && message.ref === "join") {
        // A refused join: the socket stays open, but this room object is done.
        this._emit("error", message);
        this._settle(false, Object.assign(new Error(message.message), { code: message.code }));
        this.close();
      } else {
        this._onMessage(message);
      }
    });

    ws.addEventListener("error", () => {
      failed = true; // always followed by "close", which settles or retries
    });

    ws.addEventListener("close", (event) => {
      if (ws !== this._ws) return;
      // 1000 is a deliberate end (left, denied, or the room closed); anything else may be a network change.
      const retry = this._options.reconnect && !this._closed && event.code !== 1000
        && (this.joined || this._waiting || this._attempt > 0) && this._attempt < MAX_RECONNECT_ATTEMPTS;
      if (retry) {
        this._reconnectSoon();
        return;
      }
      this._settle(false, failed && !this.joined
        ? Object.assign(new Error("the signaling connection failed"), { code: "socket_error" })
        : Object.assign(new Error(`the signaling connection closed (${event.code})`), { code: "socket_closed" }));
      this._teardown();
      this._emit("close", { code: event.code, reason: event.reason });
    });
  }

  /** Drop the failed session (its peer connection and remote tracks), then join again with backoff. */
  _reconnectSoon() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    for (const remote of this.remoteTracks.values()) this._emit("trackended", remote);
    this.remoteTracks.clear();
    this._streams.clear();
    this._forgetRoom();
    if (this.pc) this.pc.close();
    this.pc = null;
    this.joined = null;
    this._waiting = false;
    this._negotiation = Promise.resolve();
    this._attempt += 1;
    const delay = Math.min(RECONNECT_MAX_DELAY_MS, RECONNECT_BASE_DELAY_MS * 2 ** (this._attempt - 1));
    this._emit("reconnecting", { attempt: this._attempt, delayMs: delay });
    this._reconnectTimer = setTimeout(() => this._rejoin(), delay);
  }

  /** One reconnect attempt: a fresh token when the app gives one, then a new session. */
  async _rejoin() {
    if (this._closed) return;
    const { refreshToken } = this._options;
    if (refreshToken) {
      let token;
      try {
        token = await refreshToken();
      } catch (err) {
        if (this._closed) return;
        const code = (err && err.code) || "client_error";
        this._emit("error", { code, message: (err && err.message) || "could not get a new join token", ref: "join" });
        if ((err && err.final) || this._attempt >= MAX_RECONNECT_ATTEMPTS) {
          this._settle(false, Object.assign(new Error((err && err.message) || "reconnecting failed"), { code }));
          this._teardown();
          this._emit("close", { code: 1000, reason: code });
        } else {
          this._reconnectSoon();
        }
        return;
      }
      if (this._closed) return;
      if (token) this._options.token = token;
    }
    this._open(); // a failed attempt closes, and schedules the next
  }

  /**
   * Send `track` instead of the local track of its kind, without renegotiating: a
   * front/rear camera flip, or a screen share in place of the camera. The server
   * forwards whatever arrives on the m-line, so the other side just sees new frames.
   * Resolves false if nothing of that kind is being published.
   */
  async replaceTrack(kind, track) {
    const index = this._localTracks.findIndex((t) => t.kind === kind);
    if (index < 0 && this._reserved.has(kind)) { // the reserved m-line gets its first track
      this._reserved.delete(kind);
      this._localTracks.push(track);
      const sender = this.sender(kind);
      if (sender && !this._held.has(kind)) {
        await sender.replaceTrack(track);
        await this._applyEncoding(sender, track);
      }
      return true;
    }
    if (index < 0) return false;
    const old = this._localTracks[index];
    this._localTracks[index] = track;
    const sender = this.pc && this.pc.getSenders().find((s) => s.track === old);
    if (sender) {
      await sender.replaceTrack(track);
      await this._applyEncoding(sender, track);
    }
    return true;
  }

  /**
   * The RTCRtpSender that sends our local track of `kind` (also while that kind is held by
   * setSending), or null before the server's offer gave it an m-line.
   */
  sender(kind) {
    if (!this.pc) return null;
    for (const transceiver of this.pc.getTransceivers()) {
      const info = this._mids[transceiver.mid];
      if (info && info.direction === "send" && info.kind === kind && transceiver.currentDirection !== "stopped") {
        return transceiver.sender;
      }
    }
    return null;
  }

  /**
   * Stop sending `kind` (`on` false: the sender carries no track, so nothing leaves the device) or
   * send it again, without renegotiating; it holds across reconnects. Resolves true when a sender
   * was changed now.
   */
  async setSending(kind, on) {
    if (on) this._held.delete(kind);
    else this._held.add(kind);
    const track = this._localTracks.find((t) => t.kind === kind) || null;
    const sender = this.sender(kind);
    if (!sender) return false;
    await sender.replaceTrack(on ? track : null);
    if (on && track) await this._applyEncoding(sender, track);
    return true;
  }

  /** Send an inspection action (vitrine/inspect/protocol.py); false when not connected (not sent). */
  inspect(body) {
    return this._send({ type: "inspect", body });
  }

  /** Apply the `encoding` option's parameters for `track` to `sender`; a failure is reported, not thrown. */
  async _applyEncoding(sender, track) {
    const encoding = this._options && this._options.encoding;
    const wanted = encoding && track ? encoding(track) : null;
    if (!wanted) return;
    try {
      const params = sender.getParameters();
      if (!params.encodings || params.encodings.length === 0) return; // not negotiated yet: the answer applies it
      for (const [key, value] of Object.entries(wanted)) {
        if (value === undefined || value === null) delete params.encodings[0][key];
        else params.encodings[0][key] = value;
      }
      await sender.setParameters(params);
    } catch (err) {
      this._emit("error", { code: "client_error", message: `could not set the sender's encoding: ${err}` });
    }
  }

  /** Leave the room and release the connection. Safe to call more than once. */
  close() {
    if (this._closed) return;
    const ws = this._ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.joined) {
      this._send({ type: "leave" });
      // The server answers `leave` by closing the socket; close it ourselves if it does not.
      setTimeout(() => ws.readyState !== WebSocket.CLOSED && ws.close(1000), 2000);
    } else if (ws && ws.readyState !== WebSocket.CLOSED) {
      ws.close(1000); // not joined (yet): there is nothing to leave
    }
    this._teardown();
  }

  // -- incoming ----------------------------------------------------------------

  /** Say something in the room's chat (needs the `can_chat` grant); it comes back as a `chat` event. */
  sendChat(text) {
    this._send({ type: "chat", text: String(text) });
  }

  /** Ask for the log after `after` (a seq), or the newest `limit` entries; answered by a `history` event. */
  requestHistory({ after = null, limit = 50 } = {}) {
    this._send(after === null ? { type: "history", limit } : { type: "history", after, limit });
  }

  /** A room admin lets a knock in (`admit` true) or turns it away. */
  admit(knock, admit = true) {
    this._send({ type: "admit", knock, admit });
  }

  /** A live show: react (like, love, fire, clap, wow, laugh); reactions come back summed as `log` entries. */
  react(reaction = "like") {
    this._send({ type: "react", reaction });
  }

  /** A live show: count a product card's link opened ("open") or added to the cart ("add_to_cart"). */
  click(sku, action = "open") {
    this._send({ type: "click", sku, action });
  }

  /** A live show's host: pin, unpin, sold_out or in_stock one of the show's products. */
  product(action, sku) {
    this._send({ type: "product", action, sku });
  }

  /** A live show's host: start a deal { sku, price, stock, duration_s }, or end the running one. */
  deal(action, details = {}) {
    this._send({ type: "deal", action, ...details });
  }

  /** A live show's host: delete/pin_message { seq }, mute { identity, seconds }, ban/unban { identity },
   *  slow_mode { seconds }, unmute { identity }, unpin_message. */
  moderate(action, details = {}) {
    this._send({ type: "moderate", action, ...details });
  }

  _onLog(entries) {
    for (const entry of entries) {
      if (this.logSeq !== null && entry.seq <= this.logSeq) continue; // already delivered
      this.logSeq = entry.seq;
      this._emit("log", entry);
      if (entry.kind === "chat") this._emit("chat", entry);
    }
  }

  _onJoined(message) {
    const missed = this.logSeq !== null && message.log_seq > this.logSeq;
    if (this.logSeq === null) this.logSeq = message.log_seq || 0;
    if (missed) { // rejoined: catch up on what was said meanwhile, before the live lines
      this._catchingUp = true;
      this.requestHistory({ after: this.logSeq, limit: 200 });
    }
    mark("joined");
    this.joined = message;
    this.grants = message.grants;
    this.participant = message.participant;
    this._forgetRoom();
    this._room = new RoomState(message, {
      apply: (event) => this._onRoomEvent(event),
      resync: () => this._send({ type: "resync" }),
    });
    if (!this.pc) this._createPeerConnection(message.ice_servers || []); // a knocker's is up already
    this._emit("joined", message);
  }

  _onMessage(message) {
    switch (message.type) {
      case "offer":
        // Chain: each offer is answered only after the previous one is done.
        this._negotiation = this._negotiation
          .then(() => this._answer(message))
          .catch((err) => this._emit("error", { code: "client_error", message: `could not answer an offer: ${err}` }));
        break;
      case "event":
        if (this._room) this._room.take(message); // applied in seq order: `_onRoomEvent`
        break;
      case "resync":
        this._onResync(message);
        break;
      case "error":
        if (message.ref === "resync" && this._room) this._room.refused(); // rate-limited: it asks again later
        this._emit("error", message);
        break;
      case "leave":
        this._emit("leave", { reason: message.reason, reconnect: Boolean(message.reconnect), code: message.code || null });
        break;
      case "log":
        if (this._catchingUp) this._liveWhileCatchingUp.push(message.entry); // after the missed lines
        else this._onLog([message.entry]);
        break;
      case "live":
        this._emit("live", { viewers: message.viewers, likes: message.likes });
        break;
      case "waiting":
        // The server sets up our connection while we wait (its offer follows); nothing of ours reaches
        // the room, and we receive nothing, until we are admitted.
        this._waiting = true;
        if (!this.pc) this._createPeerConnection(message.ice_servers || []);
        this._emit("waiting", { knock: message.knock });
        break;
      case "knock":
        this._emit("knock", { knock: message.knock, ended: message.ended || null });
        break;
      case "queued":
        this._emit("queued", { position: message.position });
        break;
      case "history":
        if (this._catchingUp) {
          this._catchingUp = false;
          this._onLog(message.entries); // the entries missed while reconnecting, as `log` events
          this._onLog(this._liveWhileCatchingUp.splice(0));
        } else {
          this._emit("history", message);
        }
        break;
      case "pong":
      case "candidate": // the server never trickles, but a null end-of-candidates is harmless
        break;
      default:
        break; // newer server message types are ignored, not fatal
    }
  }

  /** Ask for the room as it is now (`resync`); done by itself on a lost event. False: not sent. */
  resync() {
    return this._room ? this._room.resync() : false;
  }

  _forgetRoom() {
    if (this._room) this._room.close();
    this._room = null;
  }

  /** A room event, applied to `participants`/`tracks` in seq order (or found by a resync: `resync: true`). */
  _onRoomEvent(message) {
    const p = message.participant;
    const resync = Boolean(message.resync);
    if (message.event === "participant_joined" && p && (!this.participant || p.sid !== this.participant.sid)) {
      this._emit("participant", { action: "joined", participant: p, seq: message.seq, resync });
    } else if (message.event === "participant_left" && p) {
      this._emit("participant", { action: "left", participant: p, seq: message.seq, resync });
    }
    this._emit("roomevent", message);
  }

  /** The `resync` answer: the room state is replaced (announcing what lost events hid), then a log gap filled. */
  _onResync(message) {
    if (!this._room) return;
    this._room.resynced(message);
    if (this.logSeq !== null && message.log_seq > this.logSeq && !this._catchingUp) {
      this._catchingUp = true; // log entries went missing too: fetch them before the live ones
      this.requestHistory({ after: this.logSeq, limit: 200 });
    }
    this._emit("resync", message);
  }

  // -- WebRTC --------------------------------------------------------------------

  _createPeerConnection(iceServers) {
    const pc = new RTCPeerConnection({
      iceServers: iceServers.map(({ urls, username, credential }) => ({ urls, username, credential })),
      bundlePolicy: "max-bundle",
    });
    this.pc = pc;

    pc.addEventListener("icecandidate", (event) => {
      const c = event.candidate;
      if (c === null) {
        this._send({ type: "candidate", candidate: null }); // end of gathering
        return;
      }
      if (!c.candidate) return; // some browsers signal the end with an empty candidate too
      const candidate = { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex };
      if (c.usernameFragment) candidate.usernameFragment = c.usernameFragment;
      this._send({ type: "candidate", candidate });
    });

    pc.addEventListener("track", (event) => this._onTrack(event));
    pc.addEventListener("datachannel", (event) => {
      if (pc === this.pc) this._emit("datachannel", { channel: event.channel });
    });

    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") mark("connected");
      this._emit("connectionstate", { state: pc.connectionState });
    });
  }

  /** Answer one server offer: attach local tracks to "send" m-lines, then answer. */
  async _answer(message) {
    mark("offer");
    const pc = this.pc;
    if (!pc || this._closed) return;
    // The mids table describes the whole session as of this offer.
    this._mids = message.mids || {};
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });

    const attached = new Set(pc.getSenders().map((s) => s.track).filter(Boolean));
    const unattached = this._localTracks.filter((t) => !attached.has(t));
    const fresh = [];
    for (const transceiver of pc.getTransceivers()) {
      const info = this._mids[transceiver.mid];
      if (!info || info.direction !== "send" || transceiver.sender.track) continue;
      const index = unattached.findIndex((t) => t.kind === info.kind);
      if (index < 0) {
        if (this._reserved.has(info.kind)) transceiver.direction = "sendonly"; // kept for a later track
        continue;
      }
      transceiver.direction = "sendonly";
      if (this._held.has(info.kind)) continue; // paused: the m-line sends, but no track yet
      const [track] = unattached.splice(index, 1);
      await transceiver.sender.replaceTrack(track);
      fresh.push([transceiver.sender, track]);
    }

    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this._send({ type: "answer", sdp: pc.localDescription.sdp });
    mark("answer-sent");
    for (const [sender, track] of fresh) await this._applyEncoding(sender, track);
    this._dropEndedRemoteTracks();
  }

  _onTrack(event) {
    mark(`track-${event.track.kind}`);
    const transceiver = event.transceiver;
    const mid = transceiver.mid;
    const info = this._mids[mid] || {};
    const participantSid = info.participant_sid || null;
    const trackSid = info.track_sid || null;
    const remote = { track: event.track, kind: event.track.kind, trackSid, participantSid, mid };
    this.remoteTracks.set(mid, remote);

    // Group each participant's tracks into one MediaStream (the server gives
    // every forwarded track its own stream id).
    const key = participantSid || `mid:${mid}`;
    let stream = this._streams.get(key);
    if (!stream) {
      stream = new MediaStream();
      this._streams.set(key, stream);
    }
    if (!stream.getTracks().includes(event.track)) stream.addTrack(event.track);
    this._emit("track", { ...remote, stream });
  }

  /** After a renegotiation, report remote tracks whose m-line no longer carries them. */
  _dropEndedRemoteTracks() {
    for (const [mid, remote] of this.remoteTracks) {
      const info = this._mids[mid];
      if (info && info.direction === "recv" && info.track_sid === remote.trackSid) continue;
      this.remoteTracks.delete(mid);
      const stream = this._streams.get(remote.participantSid || `mid:${mid}`);
      if (stream) stream.removeTrack(remote.track);
      this._emit("trackended", remote);
    }
  }

  // -- plumbing -------------------------------------------------------------------

  /** True when the message went out on an open socket. */
  _send(message) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    this._ws.send(JSON.stringify(message));
    return true;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _teardown() {
    if (this._closed) return;
    this._closed = true;
    this._waiting = false;
    clearTimeout(this._reconnectTimer);
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    if (this._room) this._room.close(); // kept, as it was last: nothing changes it any more
    if (this.pc) {
      this.pc.close();
      this._emit("connectionstate", { state: "closed" });
    }
  }
}
