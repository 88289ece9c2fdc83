/**
 * player-state.js: a show's visible state (pins, sold out, deal, pinned message, slow mode) as log
 * entries change it. The live player folds each new entry into the state it joined with; the
 * replay folds the log up to the video's position to show what was pinned at that moment.
 */

const MAX_PINNED = 3;

export function emptyState() {
  return { pinned: [], sold_out: [], deal: null, pinned_message: null, slow_mode_s: 0 };
}

/** The state a `joined.live` (LiveState) describes. */
export function stateOf(live) {
  return { ...emptyState(), ...(live || {}) };
}

/** Fold one log entry into `state`; returns which part changed: "products", "message", "slow" or null. */
export function applyEntry(state, entry) {
  if (entry.kind === "product" && entry.product) {
    const { action, card } = entry.product;
    if (action === "pin") state.pinned = [...state.pinned.filter((c) => c.sku !== card.sku), card].slice(-MAX_PINNED);
    else if (action === "unpin") state.pinned = state.pinned.filter((c) => c.sku !== card.sku);
    else if (action === "sold_out") state.sold_out = [...new Set([...state.sold_out, card.sku])];
    else if (action === "in_stock") state.sold_out = state.sold_out.filter((sku) => sku !== card.sku);
    return "products";
  }
  if (entry.kind === "deal" && entry.deal) {
    state.deal = entry.deal.action === "end" ? null : entry.deal.deal; // any other action: the deal as it is now
    return "products";
  }
  if (entry.kind === "moderation" && entry.moderation) {
    const { action, seq, seconds } = entry.moderation;
    if (action === "slow_mode") {
      state.slow_mode_s = seconds || 0;
      return "slow";
    }
    if (action === "pin_message") state.pinned_message = seq;
    else if (action === "unpin_message" || (action === "delete" && seq === state.pinned_message)) {
      state.pinned_message = null;
    } else return null;
    return "message";
  }
  return null;
}

/**
 * The server's clock as seen from here: deals end at a server time, and a phone's clock may be off.
 * Every live log entry is stamped by the server as it happens, so (local now - at_ms) is the skew
 * plus that entry's delivery time; the smallest one seen is the best estimate of the skew.
 */
export class ServerClock {
  constructor() {
    this.skewMs = null;
  }

  observe(atMs) {
    const sample = Date.now() - atMs;
    if (Number.isFinite(sample) && (this.skewMs === null || sample < this.skewMs)) this.skewMs = sample;
  }

  now() {
    return Date.now() - (this.skewMs ?? 0);
  }
}
