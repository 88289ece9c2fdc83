/**
 * console-model.js: the live show as the console knows it: the LiveState from `joined.live`,
 * kept current by the room log's entries (vitrine/live/models.py), never refetched.
 *
 * The log is the single source of truth. `joined.live` is the state as of the join; every later
 * `log` entry is applied on top of it in seq order. `history` entries are older than the join,
 * so they only fill the chat timeline (and who is muted or banned, which LiveState does not
 * carry): replaying their pins or deals would undo newer state.
 */

const MAX_TIMELINE = 500; // an all-day show: keep the newest lines, the CSV export has them all
const TIMELINE_KINDS = new Set(["chat", "product", "deal", "moderation", "show"]);
const PEOPLE_ACTIONS = new Set(["mute", "unmute", "ban", "unban"]);

export class ShowModel {
  constructor() {
    // What this page has seen, kept across reconnects: LiveState does not carry it.
    this.timeline = new Map(); // seq -> entry, for the chat column
    this.deleted = new Set();
    this.reactions = {}; // a running tally per reaction since the page opened
    this.muted = new Map(); // identity -> muted until (server ms)
    this.banned = new Set();
    this._peopleSeq = new Map(); // identity -> seq of the newest mute/ban entry applied
    this.skewMs = null; // local clock minus server clock (plus the smallest delivery delay seen)
    this.reset(null);
  }

  /** The show as of a join (`joined.live`, null before joining). */
  reset(live) {
    const state = live || {};
    this.pinned = state.pinned || [];
    this.soldOut = new Set(state.sold_out || []);
    this.deal = state.deal || null;
    this.pinnedMessage = state.pinned_message || null;
    this.slowModeS = state.slow_mode_s || 0;
    this.viewers = state.viewers || 0;
    this.likes = state.likes || 0;
  }

  /** The server's clock, as best this page knows it: deals end and shows start by it. */
  serverNow() {
    return Date.now() - (this.skewMs || 0);
  }

  stats({ viewers, likes }) {
    this.viewers = viewers;
    this.likes = likes;
  }

  /**
   * Apply one live log entry. Returns what changed, for the console to redraw just that:
   * a subset of "chat" (the timeline), "pinned", "products", "deal", "slow", "reactions", "people".
   */
  apply(entry) {
    const lag = Date.now() - entry.at_ms;
    this.skewMs = this.skewMs === null ? lag : Math.min(this.skewMs, lag);
    const changed = new Set();
    if (TIMELINE_KINDS.has(entry.kind)) {
      this._remember(entry);
      changed.add("chat");
    }
    const apply = {
      reactions: () => this._react(entry.reactions, changed),
      moderation: () => this._moderate(entry, changed),
      product: () => this._product(entry.product, changed),
      deal: () => this._deal(entry.deal, changed),
    }[entry.kind];
    if (apply) apply();
    return changed;
  }

  /** Older entries (a `history` answer): they fill the timeline, and who is muted or banned. */
  addHistory(entries) {
    for (const entry of entries) {
      if (TIMELINE_KINDS.has(entry.kind)) this._remember(entry);
      if (entry.kind === "moderation" && PEOPLE_ACTIONS.has(entry.moderation.action)) this._person(entry);
    }
  }

  /** The timeline in seq order. */
  lines() {
    return [...this.timeline.values()].sort((a, b) => a.seq - b.seq);
  }

  isMuted(identity) {
    return (this.muted.get(identity) || 0) > this.serverNow();
  }

  /** The running deal, unless its time is up (the server sends no entry when a deal expires). */
  liveDeal() {
    return this.deal && this.deal.ends_at_ms > this.serverNow() ? this.deal : null;
  }

  _remember(entry) {
    if (this.deleted.has(entry.seq)) return;
    this.timeline.set(entry.seq, entry);
    if (this.timeline.size > MAX_TIMELINE) {
      const oldest = Math.min(...this.timeline.keys());
      if (oldest !== this.pinnedMessage) this.timeline.delete(oldest);
    }
  }

  _react(counts, changed) {
    for (const [kind, n] of Object.entries(counts || {})) this.reactions[kind] = (this.reactions[kind] || 0) + n;
    changed.add("reactions");
  }

  _moderate(entry, changed) {
    const m = entry.moderation;
    if (PEOPLE_ACTIONS.has(m.action)) {
      this._person(entry);
      changed.add("people");
    } else if (m.action === "delete") {
      this.deleted.add(m.seq);
      this.timeline.delete(m.seq);
      if (this.pinnedMessage === m.seq) this.pinnedMessage = null;
      changed.add("pinned");
    } else if (m.action === "pin_message" || m.action === "unpin_message") {
      this.pinnedMessage = m.action === "pin_message" ? m.seq : null;
      changed.add("pinned");
    } else if (m.action === "slow_mode") {
      this.slowModeS = m.seconds || 0;
      changed.add("slow");
    }
  }

  /** A mute or ban, unless a newer one about the same viewer was applied (history can arrive late). */
  _person({ seq, at_ms: atMs, moderation: m }) {
    if ((this._peopleSeq.get(m.identity) || 0) > seq) return;
    this._peopleSeq.set(m.identity, seq);
    if (m.action === "mute") this.muted.set(m.identity, atMs + (m.seconds || 0) * 1000);
    else if (m.action === "unmute") this.muted.delete(m.identity);
    else if (m.action === "ban") this.banned.add(m.identity);
    else this.banned.delete(m.identity);
  }

  _product({ action, card }, changed) {
    if (action === "pin") this.pinned = [...this.pinned.filter((c) => c.sku !== card.sku), card];
    else if (action === "unpin") this.pinned = this.pinned.filter((c) => c.sku !== card.sku);
    else if (action === "sold_out") this.soldOut.add(card.sku);
    else if (action === "in_stock") this.soldOut.delete(card.sku);
    changed.add("products");
  }

  _deal({ action, deal }, changed) {
    if (action === "start" || action === "update") this.deal = deal; // update: stock went down
    else if (this.deal && this.deal.card.sku === deal.card.sku) this.deal = null;
    changed.add("deal");
  }
}
