/**
 * player-view.js: the pieces the live player and the replay draw with: product cards, the deal,
 * chat lines and the chat list, floating reactions. Text always goes in as text (h()).
 */

import { h, setChildren } from "../vitrine-dom.js";
import { REACTIONS, formatClock, formatPrice, t } from "./player-strings.js";

const MAX_CHAT_LINES = 200;
const MAX_FLOATS = 24;
const EMOJI = Object.fromEntries(REACTIONS.map(([key, emoji]) => [key, emoji]));

/**
 * A product card: image, title, price, "Buy" (the shop's page, new tab) and, in an embed,
 * "Add to cart" (the shop's own cart, through the vitrine:add-to-cart event).
 * `deal` is the running deal when it is on this product: its price is the one shown.
 */
export function productCard(card, { locale, soldOut = false, deal = null, onOpen = null, onCart = null }) {
  const price = deal ? deal.price : card.price;
  const image = card.image_url ? h("img", { class: "vl-card-img", src: card.image_url, alt: "", loading: "lazy",
    onerror: (e) => { e.target.hidden = true; } }) : null;
  const buy = h("a", { class: "vl-buy", href: card.url, target: "_blank", rel: "noopener noreferrer",
    "aria-label": t("buy_aria", { title: card.title }), text: t("buy"), onclick: () => onOpen && onOpen(card) });
  const cart = onCart ? h("button", { class: "vl-cart", type: "button", disabled: soldOut, text: t("add_to_cart"),
    onclick: (e) => {
      onCart(card, price);
      e.currentTarget.textContent = t("added");
    } }) : null;
  return h("article", { class: `vl-card${soldOut ? " is-sold-out" : ""}`, dataset: { sku: card.sku } },
    image,
    h("div", { class: "vl-card-body" },
      h("h3", { class: "vl-card-title", text: card.title }),
      h("p", { class: "vl-card-price" },
        h("span", { class: "vl-price", text: formatPrice(locale, price, card.currency) }),
        deal ? h("s", { class: "vl-was", text: formatPrice(locale, card.price, card.currency) }) : null,
        soldOut ? h("span", { class: "vl-sold-out", text: t("sold_out") }) : null),
      h("div", { class: "vl-card-actions" }, soldOut ? null : buy, cart)));
}

/** The running deal: its price against the card's, the stock left, and the countdown (`tick` updates it). */
export function dealBox(deal, locale) {
  const { card } = deal;
  const price = formatPrice(locale, deal.price, card.currency);
  const was = formatPrice(locale, card.price, card.currency);
  const clock = h("span", { class: "vl-deal-clock", role: "timer" });
  const el = h("section", { class: "vl-deal", "aria-label": t("deal_aria", { title: card.title, price, was }) },
    h("span", { class: "vl-deal-badge", text: t("deal_heading") }),
    h("span", { class: "vl-deal-title", text: card.title }),
    h("span", { class: "vl-deal-price", text: price }),
    h("s", { class: "vl-was", text: was }),
    deal.stock !== null && deal.stock !== undefined
      ? h("span", { class: "vl-deal-stock", text: t("deal_left", { n: deal.stock }) }) : null,
    clock);
  return {
    el,
    /** Show the time left; false once it is over. */
    tick(remainingMs) {
      clock.textContent = t("deal_ends_in", { time: formatClock(remainingMs) });
      return remainingMs > 0;
    },
  };
}

export function chatLine(entry) {
  const who = entry.participant || {};
  const isHost = who.role === "host";
  return h("li", { class: `vl-line${isHost ? " is-host" : ""}`, dataset: { seq: String(entry.seq) } },
    h("span", { class: "vl-line-name", text: who.name || t(isHost ? "host" : "anonymous") }),
    isHost && who.name ? h("span", { class: "vl-host-badge", text: t("host") }) : null,
    h("span", { class: "vl-line-text", text: entry.text || "" }));
}

/**
 * The chat as a list of at most `max` lines (a long show must not grow the DOM without end), kept
 * scrolled to the newest line unless the viewer scrolled up to read.
 */
export class ChatList {
  constructor(label) {
    this.max = MAX_CHAT_LINES;
    this.el = h("ol", { class: "vl-chat", "aria-label": label, "aria-live": "polite", tabindex: "0" });
  }

  add(entries) {
    const stick = this._atBottom();
    for (const entry of entries) {
      if (entry.kind !== "chat" || this.el.querySelector(`[data-seq="${entry.seq}"]`)) continue;
      this.el.append(chatLine(entry));
    }
    while (this.el.childElementCount > this.max) this.el.firstElementChild.remove();
    if (stick) this.el.scrollTop = this.el.scrollHeight;
  }

  remove(seq) {
    const line = this.el.querySelector(`[data-seq="${Number(seq)}"]`);
    if (line) line.remove();
  }

  /** Exactly these lines (the replay rebuilds after a seek back). */
  set(entries) {
    setChildren(this.el);
    this.add(entries);
    this.el.scrollTop = this.el.scrollHeight;
  }

  _atBottom() {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 48;
  }
}

/** Float a burst of reactions up the stage; one still emoji when the viewer prefers reduced motion. */
export function floatReactions(layer, counts, reducedMotion) {
  for (const [reaction, n] of Object.entries(counts || {})) {
    const emoji = EMOJI[reaction];
    if (!emoji) continue;
    for (let i = 0; i < Math.min(n, reducedMotion ? 1 : 6); i += 1) {
      if (layer.childElementCount >= MAX_FLOATS) return;
      const float = h("span", { class: "vl-float", text: emoji });
      // CSSOM, not a style attribute: the watch page's CSP forbids inline styles.
      float.style.setProperty("--vl-x", `${Math.round(Math.random() * 60 - 30)}px`);
      float.style.setProperty("--vl-delay", `${i * 120}ms`);
      float.addEventListener("animationend", () => float.remove());
      setTimeout(() => float.remove(), 4000); // no animation to end it (reduced motion, hidden tab)
      layer.append(float);
    }
  }
}

/** The reaction buttons; `onReact(key)` on a tap. */
export function reactionBar(onReact) {
  return h("div", { class: "vl-reactions", role: "group", "aria-label": t("reactions_label") },
    REACTIONS.map(([key, emoji, label]) => h("button", { class: "vl-react", type: "button", dataset: { reaction: key },
      "aria-label": t("react_aria", { reaction: t(label) }), onclick: () => onReact(key) }, emoji)));
}

/** A short inline notice that clears itself (errors like "slow mode"), or stays (`sticky`). */
export class Notice {
  constructor(className = "vl-notice") {
    this.el = h("p", { class: className, role: "status", "aria-live": "polite", hidden: true });
    this._timer = null;
  }

  show(text, { sticky = false, ms = 6000 } = {}) {
    clearTimeout(this._timer);
    this.el.textContent = text;
    this.el.hidden = false;
    if (!sticky) this._timer = setTimeout(() => this.clear(), ms);
  }

  clear() {
    clearTimeout(this._timer);
    this.el.hidden = true;
    this.el.textContent = "";
  }
}
