/**
 * console-setup.js: what the seller sets up: the show's title, schedule and products (saved
 * with PATCH /v1/live/console), and the OBS settings (WHIP URL, stream key, rotation), and
 * the wait for OBS to start the show.
 */

import { h } from "../vitrine-dom.js";
import { productRow } from "./console-live.js";
import { t } from "./console-strings.js";
import { copyValue, fromLocalInput, toLocalInput } from "./console-ui.js";

export class DetailsForm {
  /**
   * @param {object} ui  form, title, schedule, list, pick, add, save, state, error (elements of live.html)
   * @param {(changes: object) => Promise<void>} save  PATCH; rejects with an ApiError
   */
  constructor(ui, save) {
    this.ui = ui;
    this.saveChanges = save;
    this.skus = [];
    this.cards = new Map(); // sku -> card, from the catalog and the show's own cards
    this.catalog = new Set(); // the SKUs that may be added
    this.dirty = false;
    ui.form.addEventListener("input", () => this._touched());
    ui.add.addEventListener("click", () => {
      if (!ui.pick.value) return;
      this.skus.push(ui.pick.value);
      this._touched();
      this._drawProducts();
    });
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._save();
    });
  }

  /** Show the server's view of the show; a draft the seller is editing is kept unless `force`. */
  fill(view, { force = false } = {}) {
    this.cards = new Map([...view.catalog, ...view.products].map((c) => [c.sku, c]));
    this.catalog = new Set(view.catalog.map((c) => c.sku));
    const ended = view.show.state === "ended";
    for (const el of this.ui.form.elements) el.disabled = ended;
    if (this.dirty && !force) {
      this._drawProducts();
      return;
    }
    this.dirty = false;
    this.ui.title.value = view.show.title;
    this.ui.schedule.value = toLocalInput(view.show.scheduled_at_ms);
    this.skus = [...view.show.products];
    this._drawProducts();
  }

  _touched() {
    this.dirty = true;
    this.ui.state.textContent = t("unsaved");
    this.ui.error.hidden = true;
  }

  _drawProducts() {
    const { list, pick, add } = this.ui;
    const move = (index, by) => {
      const [sku] = this.skus.splice(index, 1);
      this.skus.splice(index + by, 0, sku);
      this._touched();
      this._drawProducts();
    };
    list.replaceChildren(...this.skus.map((sku, i) => {
      const card = this.cards.get(sku) || { sku, title: t("not_in_catalog", { sku }) };
      const button = (label, text, disabled, onclick) => h("button", { type: "button", class: "small",
        "aria-label": t("control_label", { action: label, title: card.title }),
        title: t("control_label", { action: label, title: card.title }), text, disabled, onclick });
      return productRow(card,
        button(t("move_up"), "↑", i === 0, () => move(i, -1)),
        button(t("move_down"), "↓", i === this.skus.length - 1, () => move(i, 1)),
        button(t("remove"), t("remove"), false, () => {
          this.skus.splice(i, 1);
          this._touched();
          this._drawProducts();
        }));
    }));
    const chosen = new Set(this.skus);
    const left = [...this.cards.values()].filter((c) => !chosen.has(c.sku) && this.catalog.has(c.sku));
    pick.replaceChildren(...left.map((c) => h("option", { value: c.sku, text: `${c.title} (${c.sku})` })));
    if (!left.length) pick.append(h("option", { value: "", text: t("all_in_show") }));
    pick.disabled = add.disabled = left.length === 0 || this.ui.title.disabled;
    this.ui.count.textContent = String(this.skus.length);
  }

  async _save() {
    const ui = this.ui;
    ui.save.disabled = true;
    ui.state.textContent = t("saving");
    ui.error.hidden = true;
    try {
      await this.saveChanges({ title: ui.title.value.trim(), scheduled_at_ms: fromLocalInput(ui.schedule.value),
        products: [...this.skus] });
      this.dirty = false; // the caller refilled the form from the saved view
      ui.state.textContent = t("saved");
    } catch (err) {
      ui.state.textContent = t("not_saved");
      ui.error.textContent = `${err.message} (${err.code || "error"})`;
      ui.error.dataset.code = err.code || "error";
      ui.error.hidden = false;
    } finally {
      ui.save.disabled = ui.title.disabled;
    }
  }
}

export class ObsPanel {
  /**
   * @param {object} ui  url, key, show, copyUrl, copyKey, rotate, state
   * @param {() => Promise<void>} rotate  asks, then rotates the key (the caller refills the panel)
   */
  constructor(ui, rotate) {
    this.ui = ui;
    ui.show.addEventListener("click", () => {
      const shown = ui.key.type === "password";
      ui.key.type = shown ? "text" : "password";
      ui.show.setAttribute("aria-pressed", String(shown));
      ui.show.textContent = t(shown ? "hide_key" : "show_key");
    });
    const copier = (button, input) => button.addEventListener("click", async () => {
      button.textContent = t((await copyValue(input)) ? "copied" : "copy_failed");
      setTimeout(() => { button.textContent = t("copy"); }, 2000);
    });
    copier(ui.copyUrl, ui.url);
    copier(ui.copyKey, ui.key);
    ui.rotate.addEventListener("click", async () => {
      ui.rotate.disabled = true;
      try {
        await rotate();
      } finally {
        ui.rotate.disabled = false;
      }
    });
  }

  fill(view) {
    this.ui.url.value = view.whip_url;
    this.ui.key.value = view.stream_key;
  }

  waiting(text) {
    this.ui.state.textContent = text;
  }
}

/**
 * OBS starts the show itself, by publishing with the stream key: nothing tells this page, so it
 * polls the console view until the show is no longer scheduled, then hands that view over once.
 */
export class ObsWatcher {
  /**
   * @param {() => Promise<object>} read  GET /v1/live/console
   * @param {(view: object) => void} started  the show went live (or ended) meanwhile
   * @param {(err: Error) => void} failed  a poll failed (the next one tries again)
   */
  constructor(read, started, failed, periodMs = 2000) {
    Object.assign(this, { read, started, failed, periodMs });
    this._timer = null;
    this._busy = false;
  }

  start() {
    if (!this._timer) this._timer = setInterval(() => this._poll(), this.periodMs);
  }

  stop() {
    clearInterval(this._timer);
    this._timer = null;
  }

  async _poll() {
    if (this._busy) return;
    this._busy = true;
    try {
      const view = await this.read();
      if (this._timer && view.show.state !== "scheduled") {
        this.stop();
        this.started(view);
      }
    } catch (err) {
      this.failed(err);
    } finally {
      this._busy = false;
    }
  }
}
