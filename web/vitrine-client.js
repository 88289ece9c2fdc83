/**
 * vitrine-client.js: the browser side of Vitrine's WebSocket signaling (/v1/rtc).
 *
 * A small, dependency-free ES module. It mirrors vitrine/client.py (the Python
 * client) and speaks the protocol defined once in vitrine/protocol.py:
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
 *   5. `ping` every 10 s (the server drops sockets idle for 30 s); `leave` to go.
 *
 * Usage:
 *
 *   import { VitrineRoom } from "/vitrine-client.js";
 *   const room = new VitrineRoom();
 *   room.addEventListener("track", (e) => attach(e.detail.track, e.detail.trackSid));
 *   await room.connect({ token, stream });   // resolves with the `joined` message
 *   ...
 *   room.close();
 *
 * Events (all CustomEvents; the payload is in `event.detail`):
 *   joined       the `joined` message (room, participant, grants, participants, tracks, seq)
 *   participant  { action: "joined" | "left", participant, seq }
 *   roomevent    every room `event` message as received (plus `gap: true` if a seq was skipped)
 *   track        { track, kind, trackSid, participantSid, mid, stream } a remote track arrived;
 *                `stream` is one MediaStream per remote participant (audio and video together)
 *   trackended   { track, kind, trackSid, participantSid, mid } a remote track went away
 *   connectionstate  { state } the RTCPeerConnection's connectionState
 *   error        { code, message, ref } from the server, or a local failure (code "client_error")
 *   leave        { reason, reconnect } the server ended the session
 *   close        { code, reason } the socket closed (always the last event)
 *
 * The token is a credential: this module never logs it, and it leaves the
 * browser only inside the `join` message.
 */

export const PROTOCOL_VERSION = 1;

/** Ping well inside the server's 30 s idle timeout. */
const PING_INTERVAL_MS = 10_000;

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
    /** Other participants by sid, kept current from the snapshot and room events. */
    this.participants = new Map();
    /** Remote tracks we receive, by mid: { track, kind, trackSid, participantSid, mid }. */
    this.remoteTracks = new Map();
    /** The last room event seq seen. */
    this.seq = 0;
    /** The RTCPeerConnection, created once joined. */
    this.pc = null;

    this._ws = null;
    this._localTracks = [];
    this._mids = {};
    this._streams = new Map(); // participant sid -> MediaStream of their tracks
    this._negotiation = Promise.resolve(); // server offers are handled one at a time, in order
    this._pingTimer = null;
    this._closed = false;
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
   */
  connect({ url, token, stream = null, name = null, publish = "auto" } = {}) {
    if (this._ws) throw new Error("connect() may be called once per VitrineRoom");
    if (!token) throw new Error("a join token is required");

    const grants = tokenGrants(token);
    const mayPublish = publish === "auto" ? !(grants && grants.can_publish === false) : Boolean(publish);
    this._localTracks = mayPublish && stream ? stream.getTracks().filter((t) => t.kind in SOURCE_OF_KIND) : [];

    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn, value) => {
        if (!settled) {
          settled = true;
          fn(value);
        }
      };

      const ws = new WebSocket(signalingUrl(url));
      this._ws = ws;

      ws.addEventListener("open", () => {
        const join = {
          type: "join",
          v: PROTOCOL_VERSION,
          token,
          publish: this._localTracks.map((t) => ({ kind: t.kind, source: SOURCE_OF_KIND[t.kind] })),
        };
        if (name) join.name = name;
        this._send(join);
        this._pingTimer = setInterval(() => this._send({ type: "ping" }), PING_INTERVAL_MS);
      });

      ws.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          this._emit("error", { code: "client_error", message: "the server sent a frame that is not JSON" });
          return;
        }
        if (message.type === "joined") {
          this._onJoined(message);
          settle(resolve, message);
        } else if (message.type === "error" && !this.joined && message.ref === "join") {
          // A refused join: the socket stays open, but this room object is done.
          this._emit("error", message);
          settle(reject, Object.assign(new Error(message.message), { code: message.code }));
          this.close();
        } else {
          this._onMessage(message);
        }
      });

      ws.addEventListener("error", () => {
        settle(reject, Object.assign(new Error("the signaling connection failed"), { code: "socket_error" }));
      });

      ws.addEventListener("close", (event) => {
        settle(reject, Object.assign(new Error(`the signaling connection closed (${event.code})`),
          { code: "socket_closed" }));
        this._teardown();
        this._emit("close", { code: event.code, reason: event.reason });
      });
    });
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

  _onJoined(message) {
    this.joined = message;
    this.grants = message.grants;
    this.participant = message.participant;
    this.seq = message.seq;
    for (const p of message.participants) {
      if (p.sid !== message.participant.sid) this.participants.set(p.sid, p);
    }
    this._createPeerConnection(message.ice_servers || []);
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
        this._onRoomEvent(message);
        break;
      case "error":
        this._emit("error", message);
        break;
      case "leave":
        this._emit("leave", { reason: message.reason, reconnect: Boolean(message.reconnect) });
        break;
      case "pong":
      case "candidate": // the server never trickles, but a null end-of-candidates is harmless
        break;
      default:
        break; // newer server message types are ignored, not fatal
    }
  }

  _onRoomEvent(message) {
    const gap = this.seq !== 0 && message.seq !== this.seq + 1;
    if (gap) console.warn(`vitrine: room event seq jumped from ${this.seq} to ${message.seq}`);
    this.seq = Math.max(this.seq, message.seq);
    const p = message.participant;
    if (message.event === "participant_joined" && p && (!this.participant || p.sid !== this.participant.sid)) {
      this.participants.set(p.sid, p);
      this._emit("participant", { action: "joined", participant: p, seq: message.seq });
    } else if (message.event === "participant_left" && p) {
      this.participants.delete(p.sid);
      this._emit("participant", { action: "left", participant: p, seq: message.seq });
    }
    this._emit("roomevent", gap ? { ...message, gap: true } : message);
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

    pc.addEventListener("connectionstatechange", () => {
      this._emit("connectionstate", { state: pc.connectionState });
    });
  }

  /** Answer one server offer: attach local tracks to "send" m-lines, then answer. */
  async _answer(message) {
    const pc = this.pc;
    if (!pc || this._closed) return;
    // The mids table describes the whole session as of this offer.
    this._mids = message.mids || {};
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });

    const attached = new Set(pc.getSenders().map((s) => s.track).filter(Boolean));
    const unattached = this._localTracks.filter((t) => !attached.has(t));
    for (const transceiver of pc.getTransceivers()) {
      const info = this._mids[transceiver.mid];
      if (!info || info.direction !== "send" || transceiver.sender.track) continue;
      const index = unattached.findIndex((t) => t.kind === info.kind);
      if (index < 0) continue;
      const [track] = unattached.splice(index, 1);
      await transceiver.sender.replaceTrack(track);
      transceiver.direction = "sendonly";
    }

    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this._send({ type: "answer", sdp: pc.localDescription.sdp });
    this._dropEndedRemoteTracks();
  }

  _onTrack(event) {
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

  _send(message) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(message));
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _teardown() {
    if (this._closed) return;
    this._closed = true;
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    if (this.pc) {
      this.pc.close();
      this._emit("connectionstate", { state: "closed" });
    }
  }
}
