// @ts-check
/**
 * vitrine-roomstate.js: a room's participants and published tracks as `joined` and the room `event`s tell
 * them, kept whole when events are lost. `VitrineRoom` (vitrine-client.js) owns one per join; the Python
 * client's `RoomMirror` (loadtest/client.py) follows the same rules:
 *
 *   - events are applied in `seq` order; one ahead of a missing one waits up to GAP_WAIT_MS for it (two
 *     servers' events can cross on the way);
 *   - if it stays missing (lost), or an event comes at or before the last one applied (the numbering
 *     restarted), the client asks `resync`; events that come meanwhile wait for the answer;
 *   - the answer replaces the state. What it shows that no event did is applied as the event it would have
 *     been, marked `resync: true` with the answer's seq; then the waiting events after that seq.
 */

/** How long a room event ahead of a missing one waits for it before the client asks `resync`. */
export const GAP_WAIT_MS = 1000;

export class RoomState {
  /**
   * @param {any} joined  the `joined` message
   * @param {{ apply: (event: any) => void, resync: () => boolean }} hooks  `apply` hears each event applied
   *        (after the state changed), `resync` sends the request and says whether it went out
   */
  constructor(joined, { apply, resync }) {
    this.selfSid = joined.participant.sid;
    /** Other participants by sid. */
    this.participants = new Map(joined.participants.filter((p) => p.sid !== this.selfSid).map((p) => [p.sid, p]));
    /** The room's published tracks by track sid. */
    this.tracks = new Map(joined.tracks.map((t) => [t.sid, t]));
    /** The last room event seq applied. */
    this.seq = joined.seq;
    /** `resync` sent, its answer not yet here. */
    this.resyncing = false;
    this._apply = apply;
    this._sendResync = resync;
    this._ahead = new Map(); // seq -> an event waiting for one before it, or for a resync's answer
    this._gapTimer = null;
  }

  /** A room `event` message from the server. */
  take(message) {
    if (this.resyncing) { // the answer decides which of these it already covers
      this._ahead.set(message.seq, message);
      return;
    }
    if (message.seq <= this.seq) { // the numbering restarted (or a duplicate): only a snapshot is sure
      console.warn(`vitrine: room event seq went back from ${this.seq} to ${message.seq}; resyncing`);
      this.resync();
      return;
    }
    this._ahead.set(message.seq, message);
    this._release();
    this._watchGap();
  }

  /** Ask for the room as it is now (once at a time). */
  resync() {
    if (this.resyncing) return false;
    this.resyncing = this._sendResync();
    return this.resyncing;
  }

  /** The `resync` answer: replace the state, announcing what the lost events hid, then go on. */
  resynced(message) {
    const seq = message.seq;
    const participants = new Map(message.participants.filter((p) => p.sid !== this.selfSid).map((p) => [p.sid, p]));
    const tracks = new Map(message.tracks.map((t) => [t.sid, t]));
    const hidden = [
      ...[...this.tracks.values()].filter((t) => !tracks.has(t.sid))
        .map((track) => ({ event: "track_unpublished", track })),
      ...[...this.participants.values()].filter((p) => !participants.has(p.sid))
        .map((participant) => ({ event: "participant_left", participant })),
      ...[...participants.values()].filter((p) => !this.participants.has(p.sid))
        .map((participant) => ({ event: "participant_joined", participant })),
      ...[...tracks.values()].filter((t) => !this.tracks.has(t.sid))
        .map((track) => ({ event: "track_published", track })),
    ];
    this.resyncing = false;
    this.seq = seq;
    for (const change of hidden) this._applyEvent({ type: "event", seq, resync: true, ...change });
    this.participants = participants; // the same members now; the answer's views are the newest
    this.tracks = tracks;
    for (const held of [...this._ahead.keys()]) if (held <= seq) this._ahead.delete(held);
    this._release();
    this._watchGap();
  }

  /** The server refused the `resync` (rate limit): ask again after the next wait. */
  refused() {
    this.resyncing = false;
    this._watchGap();
  }

  /** This join is over: stop waiting for anything. */
  close() {
    clearTimeout(this._gapTimer);
    this._gapTimer = null;
    this._ahead.clear();
  }

  _release() {
    for (let next = this._ahead.get(this.seq + 1); next; next = this._ahead.get(this.seq + 1)) {
      this._ahead.delete(next.seq);
      this.seq = next.seq;
      this._applyEvent(next);
    }
  }

  _watchGap() {
    if (this._gapTimer || this.resyncing || this._ahead.size === 0) return;
    this._gapTimer = setTimeout(() => {
      this._gapTimer = null;
      if (this._ahead.size === 0 || this.resyncing) return;
      console.warn(`vitrine: room event ${this.seq + 1} never came; resyncing`);
      this.resync();
    }, GAP_WAIT_MS);
  }

  _applyEvent(message) {
    const p = message.participant;
    const t = message.track;
    if (message.event === "participant_joined" && p && p.sid !== this.selfSid) this.participants.set(p.sid, p);
    else if (message.event === "participant_left" && p) this.participants.delete(p.sid);
    else if (message.event === "track_published" && t) this.tracks.set(t.sid, t);
    else if (message.event === "track_unpublished" && t) this.tracks.delete(t.sid);
    this._apply(message);
  }
}
