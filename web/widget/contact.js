/**
 * contact.js: when the shop is closed or nobody answered: leave a message, or book a callback in
 * one of the offered slots, each shown in the shopper's own time zone.
 */

import { setChildren } from "./dom.js";
import { formatOpening, formatSlot } from "./format.js";
import { MAX_TEXT } from "./views.js";

const SLOTS_SHOWN = 12;
const CONTACT_EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const CONTACT_PHONE = /^\+?[0-9][0-9 ().-]{5,}$/;

export class ContactForm {
  /**
   * @param {Function} t
   * @param {string} lang
   * @param {object} view    views.unavailable(t, ...)
   * @param {Function} send  sends `leave_message` / `book_callback` on the desk socket
   */
  constructor(t, lang, view, send) {
    Object.assign(this, { t, lang, v: view, send });
    this.unavailable = null; // the last `closed` / `no_answer` message; null: "leave a message" by choice
    this.selected = null;
    this.expanded = false;
    this.pending = false;
    view.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._submit();
    });
    view.more.addEventListener("click", () => {
      this.expanded = true;
      this._renderSlots();
    });
  }

  /** A fresh form (the fields the shopper typed are kept). */
  reset() {
    const v = this.v;
    this.unavailable = null;
    this.selected = null;
    this.expanded = false;
    this.pending = false;
    v.saved.hidden = true;
    v.form.hidden = false;
    v.intro.hidden = false;
    v.submit.disabled = false;
    v.formError.hidden = true;
    this.render();
  }

  /** `closed` or `no_answer` arrived: its heading, next opening and slots. */
  update(message) {
    this.unavailable = message;
    if (!message.slots_utc_ms || !message.slots_utc_ms.includes(this.selected)) this.selected = null;
    this.render();
  }

  render() {
    const v = this.v;
    const m = this.unavailable;
    v.heading.textContent = this.t(!m || m.type === "message" ? "message_heading"
      : m.type === "no_answer" ? "no_answer_heading" : "closed_heading");
    const opening = m && m.next_opening_utc_ms;
    v.opening.hidden = !opening;
    v.opening.textContent = opening ? this.t("next_opening", { when: formatOpening(this.lang, opening) }) : "";
    this._renderSlots();
  }

  _renderSlots() {
    const v = this.v;
    const now = Date.now();
    const all = ((this.unavailable && this.unavailable.slots_utc_ms) || [])
      .filter((ms) => Number.isFinite(ms) && ms > now).sort((a, b) => a - b);
    const shown = this.expanded ? all : all.slice(0, SLOTS_SHOWN);
    setChildren(v.slots, shown.map((ms) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "vt-slot";
      button.dataset.slot = String(ms);
      button.textContent = formatSlot(this.lang, ms);
      button.setAttribute("aria-pressed", String(ms === this.selected));
      button.addEventListener("click", () => this._select(ms));
      return button;
    }));
    v.more.hidden = this.expanded || all.length <= SLOTS_SHOWN;
    v.slotSection.hidden = all.length === 0 || !v.saved.hidden;
    this._renderMode();
  }

  _select(ms) {
    this.selected = this.selected === ms ? null : ms;
    for (const b of this.v.slots.querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.slot) === this.selected));
    }
    this._renderMode();
  }

  _renderMode() {
    const v = this.v;
    const booking = this.selected !== null;
    v.textLabel.textContent = this.t(booking ? "form_text_optional" : "form_text");
    v.submit.textContent = booking ? `${this.t("form_book")} · ${formatSlot(this.lang, this.selected)}`
      : this.t("form_send");
  }

  _submit() {
    const v = this.v;
    if (this.pending) return;
    const name = v.name.value.trim().slice(0, 64);
    const contact = v.contact.value.trim().slice(0, 200);
    const text = v.text.value.trim().slice(0, MAX_TEXT);
    const booking = this.selected !== null;
    for (const input of [v.name, v.contact, v.text]) input.removeAttribute("aria-invalid");
    const invalid = !name ? [v.name, "form_name"]
      : !(CONTACT_EMAIL.test(contact) || CONTACT_PHONE.test(contact)) ? [v.contact, "form_invalid_contact"]
        : !booking && !text ? [v.text, "form_text"] : null;
    if (invalid) {
      const [input, key] = invalid;
      input.setAttribute("aria-invalid", "true");
      v.formError.textContent = this.t(key);
      v.formError.hidden = false;
      input.focus();
      return;
    }
    v.formError.hidden = true;
    v.submit.disabled = true;
    this.pending = true;
    this.send(booking
      ? { type: "book_callback", name, contact, slot_utc_ms: this.selected, ...(text ? { text } : {}) }
      : { type: "leave_message", name, contact, text });
  }

  /** `request_saved`: the confirmation replaces the form. */
  saved(request) {
    const v = this.v;
    this.pending = false;
    const slot = request && request.slot_utc_ms != null ? request.slot_utc_ms : null;
    v.savedText.textContent = slot !== null
      ? this.t("saved_callback", { when: formatSlot(this.lang, slot) }) : this.t("saved_message");
    v.form.hidden = true;
    v.slotSection.hidden = true;
    v.intro.hidden = true;
    v.saved.hidden = false;
    v.done.focus({ preventScroll: true });
  }

  /** The server refused the request: the shopper may correct and resend. */
  failed() {
    this.pending = false;
    this.v.submit.disabled = false;
  }
}
