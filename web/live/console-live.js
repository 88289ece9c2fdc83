/**
 * console-live.js: the show's products on air (pin, unpin, sold out) and the countdown deal.
 *
 * Buttons only send: what is pinned, sold out or on deal is drawn from the ShowModel, which
 * changes when the server's log entry comes back. So two consoles (or a retried click) never
 * disagree with what viewers see.
 */

import { h, link, safeUrl } from "../vitrine-dom.js";
import { t } from "./console-strings.js";
import { duration, money } from "./console-ui.js";

const MAX_PINNED = 3; // vitrine/live/models.py MAX_PINNED

function thumb(card) {
  return safeUrl(card.image_url)
    ? h("img", { src: card.image_url, alt: "", loading: "lazy", referrerpolicy: "no-referrer" })
    : h("span", { class: "noimg", "aria-hidden": "true" });
}

function productInfo(card) {
  return h("div", { class: "info" },
    link(card.url, card.title, "title"),
    h("span", { class: "meta" },
      card.price ? h("span", { class: "price", text: money(card.price, card.currency) }) : null, " ",
      h("code", { class: "sku", text: card.sku })));
}

export function productRow(card, ...controls) {
  return h("li", { class: "product", dataset: { sku: card.sku } }, thumb(card), productInfo(card),
    h("div", { class: "controls" }, controls));
}

export class ProductsPanel {
  /** @param {{ list: Element, count: Element }} ui  @param {(action: string, sku: string) => void} send */
  constructor(ui, send) {
    this.ui = ui;
    this.send = send;
  }

  draw(cards, model, connected) {
    const pinned = new Set(model.pinned.map((c) => c.sku));
    const full = pinned.size >= MAX_PINNED;
    this.ui.count.textContent = t("pinned_count", { n: pinned.size, max: MAX_PINNED });
    this.ui.list.replaceChildren(...cards.map((card) => {
      const isPinned = pinned.has(card.sku);
      const soldOut = model.soldOut.has(card.sku);
      const row = productRow(card,
        h("button", { type: "button", class: "pin", "aria-pressed": String(isPinned),
          "aria-label": t("control_label", { action: t(isPinned ? "unpin" : "pin"), title: card.title }),
          disabled: !connected || (!isPinned && full),
          title: !isPinned && full ? t("pin_full", { max: MAX_PINNED }) : "",
          text: t(isPinned ? "unpin" : "pin"), onclick: () => this.send(isPinned ? "unpin" : "pin", card.sku) }),
        h("button", { type: "button", class: "stock", "aria-pressed": String(soldOut),
          "aria-label": t(soldOut ? "mark_in_stock" : "mark_sold_out", { title: card.title }),
          disabled: !connected, text: t(soldOut ? "back_in_stock" : "sold_out"),
          onclick: () => this.send(soldOut ? "in_stock" : "sold_out", card.sku) }));
      row.classList.toggle("pinned", isPinned);
      row.classList.toggle("sold-out", soldOut);
      return row;
    }));
  }
}

export class DealPanel {
  /**
   * @param {object} ui  running, product, now, was, countdown, stock, end, form, sku, price, stockInput, duration
   * @param {object} hooks  start({sku, price, stock, duration_s}), end()
   */
  constructor(ui, hooks) {
    this.ui = ui;
    this.cards = [];
    this.shown = null; // the deal drawn, to notice when it changes or runs out
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const details = { sku: ui.sku.value, price: ui.price.value.trim(), duration_s: Number(ui.duration.value) };
      if (ui.stockInput.value) details.stock = Number(ui.stockInput.value);
      hooks.start(details);
    });
    ui.end.addEventListener("click", () => hooks.end());
    ui.sku.addEventListener("change", () => this._placeholder());
  }

  draw(cards, model, connected) {
    const ui = this.ui;
    this.cards = cards;
    const chosen = ui.sku.value;
    ui.sku.replaceChildren(...cards.map((c) => h("option", { value: c.sku, text: `${c.title} (${c.sku})` })));
    if (cards.some((c) => c.sku === chosen)) ui.sku.value = chosen;
    this._placeholder();
    for (const el of ui.form.elements) el.disabled = !connected || cards.length === 0;
    ui.end.disabled = !connected;
    const deal = model.liveDeal();
    this.shown = deal;
    ui.running.hidden = !deal;
    ui.form.hidden = Boolean(deal);
    if (!deal) return;
    const card = deal.card;
    ui.product.replaceChildren(link(card.url, card.title));
    ui.now.textContent = money(deal.price, card.currency);
    ui.was.textContent = money(card.price, card.currency);
    ui.stock.textContent = deal.stock ? t("stock_at_start", { n: deal.stock }) : t("no_stock_limit");
    this.tick(model);
  }

  /** Every second: the countdown; a deal whose time is up disappears (the server logs no end for it). */
  tick(model) {
    const deal = model.liveDeal();
    if (deal !== this.shown) return true; // the caller redraws
    if (deal) this.ui.countdown.textContent = duration(deal.ends_at_ms - model.serverNow() + 999);
    return false;
  }

  _placeholder() {
    const card = this.cards.find((c) => c.sku === this.ui.sku.value);
    this.ui.price.placeholder = card ? t("price_now", { price: card.price }) : "";
  }
}
