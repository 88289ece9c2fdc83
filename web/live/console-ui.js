/**
 * console-ui.js: small pieces the live console's panels share: formatting, the status line,
 * the confirm dialog and copy to the clipboard.
 */

import { cached, formatDuration as duration, formatPrice } from "../vitrine-format.js";
import { i18n } from "./console-strings.js";

export { duration };

/** A price in the console's locale ("€12.50", "12,50 €"). */
export function money(price, currency) {
  return formatPrice(price, currency, i18n.locale);
}

/** "14:05" for a chat line. */
export function clock(ms) {
  return cached(`clock:${i18n.locale}`, () => new Intl.DateTimeFormat(i18n.locale, { hour: "2-digit", minute: "2-digit" }))
    .format(ms);
}

/** A date and time in the console's locale. */
export function dateTime(ms) {
  return cached(`datetime:${i18n.locale}`, () => new Intl.DateTimeFormat(i18n.locale, { dateStyle: "medium",
    timeStyle: "short" })).format(ms);
}

/** A count in the console's locale. */
export function count(n) {
  return cached(`number:${i18n.locale}`, () => new Intl.NumberFormat(i18n.locale)).format(Number(n) || 0);
}

/** A `datetime-local` value ("2025-03-04T18:30") for epoch ms, in the seller's zone. */
export function toLocalInput(ms) {
  if (ms === null || ms === undefined) return "";
  const offsetMs = new Date(ms).getTimezoneOffset() * 60_000;
  return new Date(ms - offsetMs).toISOString().slice(0, 16);
}

/** Epoch ms for a `datetime-local` value (read as the seller's local time), or null when empty. */
export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The one status line under the top bar: server errors and progress, never a modal, so a seller
 * mid-show is never blocked. A message fades after a while unless it is `sticky`.
 */
export class StatusLine {
  constructor(el) {
    this.el = el;
    this._timer = null;
  }

  show(text, kind = "info", { sticky = false } = {}) {
    clearTimeout(this._timer);
    this.el.textContent = text;
    this.el.dataset.kind = kind;
    this.el.hidden = false;
    if (!sticky) this._timer = setTimeout(() => this.clear(), kind === "error" ? 12_000 : 6000);
  }

  error(err, prefix = "") {
    const text = err && err.code ? `${err.message} (${err.code})` : String(err && err.message ? err.message : err);
    this.show(prefix ? `${prefix}: ${text}` : text, "error");
  }

  clear() {
    clearTimeout(this._timer);
    this.el.hidden = true;
    this.el.textContent = "";
  }
}

/**
 * Ask before something that cannot be undone (end the show, ban a viewer, rotate the key).
 * A <dialog> rather than window.confirm(): it does not freeze the page, so chat and the
 * timers keep running while the seller decides. Resolves true only for the confirm button.
 */
export function confirmAction(dialog, { title, text, action }) {
  const ok = dialog.querySelector(".confirm-ok");
  const cancel = dialog.querySelector(".confirm-cancel");
  dialog.querySelector(".confirm-title").textContent = title;
  dialog.querySelector(".confirm-text").textContent = text;
  ok.textContent = action;
  return new Promise((resolve) => {
    const done = (answer) => {
      ok.removeEventListener("click", yes);
      cancel.removeEventListener("click", no);
      dialog.removeEventListener("close", no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener("click", yes);
    cancel.addEventListener("click", no);
    dialog.addEventListener("close", no); // Escape
    dialog.showModal();
    cancel.focus();
  });
}

/** Copy an input's value; the Clipboard API needs a secure context, else fall back to a selection copy. */
export async function copyValue(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    const type = input.type;
    input.type = "text"; // a password field cannot be selected for copying
    input.select();
    const copied = document.execCommand("copy");
    input.type = type;
    input.setSelectionRange(0, 0);
    return copied;
  }
}
