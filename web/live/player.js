/**
 * player.js: the live show player, for watch.html and for the one-line embed (widget.js with
 * data-show, inside a <vitrine-live> shadow root on the shop's page).
 *
 *   import { mount } from "https://VITRINE_HOST/live/player.js";
 *   const player = mount(container, { base: "https://VITRINE_HOST", shop, show });
 *
 * It follows the show through its life: scheduled (title, start time, products; it checks every
 * ~5 s), live (player-live.js) and ended (replay.js). Everything comes from the public
 * /v1/live/{shop}/{show} API, which allows the shop's embed origins (CORS).
 *
 * In an embed (`cart: true`) product cards get an "Add to cart" button that dispatches
 * `vitrine:add-to-cart` { sku, show, title, price, currency, url } on the page's document, as the
 * consult widget does; on watch.html there is no shop cart to add to, so only "Buy" links show.
 */

import { h, setChildren } from "../vitrine-dom.js";
import { LiveView } from "./player-live.js";
import { productCard } from "./player-view.js";
import { ReplayView } from "./replay.js";
import { formatWhen, setPlayerLanguage, t, viewerLocale } from "./player-strings.js";

const POLL_MS = 5000; // a scheduled show: how often to look whether it started
const ENDING_POLL_MS = 1000; // the show just ended: its replay is ready within seconds
const MAX_RETRY_MS = 30_000;

/** Mount the player in `root` (an element or a shadow root). Returns it; `destroy()` removes it. */
export function mount(root, options) {
  const player = new Player(root, options);
  player.start();
  return player;
}

class Player {
  /**
   * @param {Element|ShadowRoot} root
   * @param {object} o
   * @param {string} o.base    the Vitrine server's origin
   * @param {string} o.shop
   * @param {string} o.show    the show id
   * @param {string} [o.lang]  the viewer's language (default: the browser's)
   * @param {Element} [o.host] where add-to-cart events start (they bubble to the document)
   * @param {Promise} [o.styles] resolves once the stylesheet is in (no flash of unstyled player)
   * @param {boolean} [o.cart=false] show "Add to cart" (the page is the shop's)
   * @param {function} [o.onShow] called with the show (ShowView) each time it is drawn
   */
  constructor(root, { base, shop, show, lang = null, host = null, styles = null, cart = false, onShow = null }) {
    this.base = String(base).replace(/\/+$/, "");
    this.shop = shop;
    this.showId = show;
    this.host = host;
    this.cart = cart;
    this.onShow = onShow;
    setPlayerLanguage(lang);
    this.locale = viewerLocale(lang);
    this.el = h("div", { class: "vl", lang: this.locale, hidden: true });
    root.append(this.el);
    const reveal = () => { this.el.hidden = false; };
    Promise.resolve(styles).then(reveal, reveal);
    this.view = null;
    this._timer = null;
    this._failures = 0;
    this._motion = matchMedia("(prefers-reduced-motion: reduce)");
  }

  start() {
    if (!this.shop || !this.showId) {
      this._message(t("missing_params"));
      return;
    }
    this._message(t("loading"));
    this.reload();
  }

  destroy() {
    clearTimeout(this._timer);
    if (this.view && this.view.destroy) this.view.destroy();
    this.view = null;
    this.el.remove();
  }

  /** GET a path of the show's public API; throws an Error with `status` and `code` when refused. */
  async api(path = "") {
    const url = `${this.base}/v1/live/${encodeURIComponent(this.shop)}/${encodeURIComponent(this.showId)}${path}`;
    const response = await fetch(url, { cache: "no-store", credentials: "omit" });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw Object.assign(new Error((body && body.message) || `HTTP ${response.status}`),
        { status: response.status, code: body && body.code });
    }
    return body;
  }

  /** Ask for the show and draw whatever state it is in now. */
  async reload() {
    clearTimeout(this._timer);
    let show;
    try {
      show = await this.api();
    } catch (err) {
      if (err.status === 404) {
        this._switch(null);
        this._message(t("not_found"));
        return;
      }
      this._failures += 1; // a weak network: keep trying, more slowly each time
      if (this._failures > 1) this._message(t("load_failed"));
      this._later(() => this.reload(), Math.min(MAX_RETRY_MS, 1000 * 2 ** this._failures));
      return;
    }
    this._failures = 0;
    this._render(show);
  }

  _render(show) {
    if (this.onShow) this.onShow(show);
    if (show.state === "live") {
      this._switch(new LiveView(this._context(), show));
      this.view.start();
    } else if (show.state === "ended") {
      this._switch(new ReplayView(this._context(), show));
      this.view.start();
    } else {
      this._switch(null);
      this._scheduled(show);
      this._later(() => this._poll(show.state), POLL_MS);
    }
  }

  /** Poll until the show leaves `state` (scheduled, or live while it ends), then draw it. */
  async _poll(state) {
    let show = null;
    try {
      show = await this.api();
    } catch (err) {
      if (err.status === 404) return this.reload(); // deleted meanwhile: say so
    }
    if (show && show.state !== state) this._render(show);
    else this._later(() => this._poll(state), state === "live" ? ENDING_POLL_MS : POLL_MS);
  }

  _later(fn, ms) {
    clearTimeout(this._timer);
    // Jitter: a thousand viewers waiting for the same show must not ask in the same second.
    this._timer = setTimeout(fn, ms * (0.8 + Math.random() * 0.4));
  }

  _switch(view) {
    if (this.view && this.view.destroy) this.view.destroy();
    this.view = view;
    if (view) setChildren(this.el, view.el);
  }

  _message(text) {
    setChildren(this.el, h("p", { class: "vl-message", role: "status", text }));
  }

  /** What the live and replay views need from the player. */
  _context() {
    return {
      base: this.base,
      showId: this.showId,
      locale: this.locale,
      api: (path) => this.api(path),
      addToCart: this.cart ? (card, price) => this._addToCart(card, price) : null,
      reducedMotion: () => this._motion.matches,
      reload: () => this.reload(),
      ended: () => this._later(() => this._poll("live"), ENDING_POLL_MS),
    };
  }

  _addToCart(card, price) {
    const detail = { sku: card.sku, show: this.showId, title: card.title, price, currency: card.currency,
      url: card.url };
    // From the <vitrine-live> element it bubbles out of the shadow root up to the shop's document.
    (this.host || document).dispatchEvent(new CustomEvent("vitrine:add-to-cart",
      { detail, bubbles: true, composed: true }));
  }

  _scheduled(show) {
    const when = show.scheduled_at_ms ? t("starts_at", { when: formatWhen(this.locale, show.scheduled_at_ms) })
      : t("starts_soon");
    const ctx = this._context();
    setChildren(this.el, h("section", { class: "vl-scheduled" },
      h("span", { class: "vl-badge", text: t("scheduled_badge") }),
      h("h1", { class: "vl-title", text: show.title }),
      h("p", { class: "vl-when", text: when }),
      h("p", { class: "vl-hint", text: t("waiting_live") }),
      show.products.length ? h("h2", { class: "vl-heading", text: t("products_heading") }) : null,
      h("div", { class: "vl-products" }, show.products.map((card) => productCard(card, {
        locale: this.locale, onCart: ctx.addToCart })))));
  }
}
