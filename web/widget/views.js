/**
 * views.js: the widget's screens, built once with createElement (see dom.js) and then only updated
 * through textContent, attributes and `hidden`. Each builder returns { el, ...refs }.
 *
 * Class names starting with "vt-" are the contract with the tests; do not rename them lightly.
 */

import { h, icon, safeUrl } from "./dom.js";
import { formatPrice } from "./format.js";

export const MAX_TEXT = 1000; // MAX_CHAT_CHARS in vitrine/consult/models.py

export function shell(t, lang) {
  const label = h("span", { class: "vt-launcher-label", text: t("launcher") });
  const status = h("span", { class: "vt-launcher-status" });
  const launcher = h("button", { class: "vt-launcher", type: "button", "aria-expanded": "false",
    "aria-controls": "vt-panel", "aria-haspopup": "dialog", title: t("launcher_aria") },
  h("span", { class: "vt-launcher-icon" }, icon("video")),
  h("span", { class: "vt-launcher-text" }, label, status),
  h("span", { class: "vt-dot", dataset: { open: "unknown" }, "aria-hidden": "true" }));
  const launcherLive = h("span", { class: "vt-sr-only", role: "status", "aria-live": "polite" });

  const title = h("h2", { class: "vt-title", id: "vt-title", text: t("title") });
  const close = h("button", { class: "vt-close vt-icon-button", type: "button", "aria-label": t("close"),
    title: t("close") }, icon("close"));
  const error = h("p", { class: "vt-error", role: "alert", hidden: true });
  const banner = h("p", { class: "vt-banner", role: "status", hidden: true, text: t("reconnecting") });
  const body = h("div", { class: "vt-body" });
  const panel = h("section", { class: "vt-panel", id: "vt-panel", role: "dialog", "aria-labelledby": "vt-title",
    hidden: true },
  h("header", { class: "vt-header" }, title, close), banner, error, body);

  const root = h("div", { class: "vt-root", lang, dir: "ltr", hidden: true }, panel, launcher, launcherLive);
  return { root, launcher, label, status, launcherLive, panel, title, close, error, banner, body };
}

export function intro(t) {
  const proceed = h("button", { class: "vt-continue vt-primary", type: "button", text: t("intro_continue") });
  const message = h("button", { class: "vt-leave-message vt-link", type: "button", text: t("intro_message") });
  const el = h("div", { class: "vt-view vt-view-intro", hidden: true },
    h("h3", { class: "vt-heading", text: t("intro_heading") }),
    h("p", { text: t("intro_body") }),
    h("p", { class: "vt-why" }, h("span", { class: "vt-why-icons" }, icon("camera"), icon("mic")),
      h("span", { text: t("intro_why") })),
    h("div", { class: "vt-actions" }, proceed, message));
  return { el, proceed, message };
}

export function check(t) {
  const video = h("video", { class: "local", muted: true, playsinline: true, autoplay: true,
    "aria-label": t("check_preview") });
  const note = h("p", { class: "vt-preview-note", text: t("check_starting") });
  const bar = h("span", { class: "vt-level-bar" });
  const level = h("div", { class: "vt-level", role: "meter", "aria-label": t("check_level"), "aria-valuemin": "0",
    "aria-valuemax": "100", "aria-valuenow": "0", dataset: { level: "0" } }, bar);
  const audioOnly = h("input", { class: "vt-audio-only", type: "checkbox", id: "vt-audio-only" });
  const deniedText = h("p", { text: t("check_denied") });
  const retry = h("button", { class: "vt-retry", type: "button", text: t("check_retry") });
  const joinAudio = h("button", { class: "vt-join-audio", type: "button", text: t("check_join_audio") });
  const message = h("button", { class: "vt-leave-message vt-link", type: "button", text: t("intro_message") });
  const denied = h("div", { class: "vt-denied", role: "alert", hidden: true }, deniedText,
    h("div", { class: "vt-actions" }, retry, joinAudio, message));
  const start = h("button", { class: "vt-start vt-primary", type: "button", disabled: true, text: t("check_start") });
  const el = h("div", { class: "vt-view vt-view-check", hidden: true },
    h("h3", { class: "vt-heading", text: t("check_heading") }),
    h("div", { class: "vt-preview" }, video, note),
    h("div", { class: "vt-level-row" }, icon("mic"), level),
    h("label", { class: "vt-option", for: "vt-audio-only" }, audioOnly, h("span", { text: t("check_audio_only") })),
    denied, start);
  return { el, video, note, level, bar, audioOnly, denied, deniedText, retry, joinAudio, message, start };
}

export function waiting(t) {
  const position = h("p", { class: "vt-position", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const wait = h("p", { class: "vt-wait", "aria-live": "polite", "aria-atomic": "true" });
  const cancel = h("button", { class: "vt-cancel", type: "button", text: t("cancel") });
  const el = h("div", { class: "vt-view vt-view-waiting", hidden: true },
    h("div", { class: "vt-pulse", "aria-hidden": "true" }, icon("video")),
    h("h3", { class: "vt-heading", text: t("wait_heading") }), position, wait,
    h("p", { class: "vt-hint", text: t("wait_keep_open") }),
    h("div", { class: "vt-actions" }, cancel));
  return { el, position, wait, cancel };
}

export function unavailable(t, defaults) {
  const heading = h("h3", { class: "vt-heading vt-unavailable-heading" });
  const opening = h("p", { class: "vt-next-opening", hidden: true });
  const intro = h("p", { text: t("unavailable_body") });
  const slots = h("div", { class: "vt-slots", role: "group", "aria-labelledby": "vt-slots-heading" });
  const more = h("button", { class: "vt-slots-more vt-link", type: "button", hidden: true, text: t("slots_more") });
  const slotSection = h("div", { class: "vt-slot-section", hidden: true },
    h("h4", { id: "vt-slots-heading", text: t("slots_heading") }), slots, more);

  const field = (cls, labelKey, control) => {
    const id = `vt-field-${cls}`;
    control.id = id;
    const label = h("label", { for: id, text: t(labelKey) });
    return { wrap: h("div", { class: "vt-field" }, label, control), label };
  };
  const name = h("input", { class: "vt-name", name: "name", type: "text", maxlength: "64", autocomplete: "name",
    required: true });
  name.value = defaults.name || "";
  const contact = h("input", { class: "vt-contact", name: "contact", type: "text", maxlength: "200",
    autocomplete: "email", inputmode: "email", required: true });
  const text = h("textarea", { class: "vt-text", name: "text", rows: "3", maxlength: String(MAX_TEXT) });
  const nameField = field("name", "form_name", name);
  const contactField = field("contact", "form_contact", contact);
  const textField = field("text", "form_text", text);
  const formError = h("p", { class: "vt-form-error", role: "alert", hidden: true });
  const submit = h("button", { class: "vt-send-request vt-primary", type: "submit", text: t("form_send") });
  const form = h("form", { class: "vt-message-form", novalidate: true },
    nameField.wrap, contactField.wrap, textField.wrap, formError, submit);

  const savedText = h("p", { class: "vt-saved-text" });
  const done = h("button", { class: "vt-done vt-primary", type: "button", text: t("done") });
  const saved = h("div", { class: "vt-request-saved", role: "status", hidden: true }, savedText, done);
  const el = h("div", { class: "vt-view vt-view-unavailable", hidden: true },
    heading, opening, intro, slotSection, form, saved);
  return { el, heading, opening, intro, slots, more, slotSection, form, name, contact, text,
    textLabel: textField.label, formError, submit, saved, savedText, done };
}

export function ended(t) {
  const stars = h("div", { class: "vt-stars", role: "group", "aria-labelledby": "vt-rate-heading" });
  for (let n = 1; n <= 5; n += 1) {
    stars.append(h("button", { type: "button", class: "vt-star", dataset: { stars: String(n) },
      "aria-pressed": "false", "aria-label": t("stars", { n }), title: t("stars", { n }), text: "★" }));
  }
  const comment = h("textarea", { class: "vt-comment", id: "vt-comment", rows: "2", maxlength: String(MAX_TEXT) });
  const submit = h("button", { class: "vt-rate-submit vt-primary", type: "button", disabled: true,
    text: t("rate_submit") });
  const skip = h("button", { class: "vt-skip vt-link", type: "button", text: t("skip") });
  const rating = h("div", { class: "vt-rating" },
    h("h4", { id: "vt-rate-heading", text: t("rate_heading") }), stars,
    h("label", { for: "vt-comment", text: t("comment") }), comment,
    h("div", { class: "vt-actions" }, submit, skip));
  const done = h("button", { class: "vt-done vt-primary", type: "button", text: t("done") });
  const thanks = h("div", { class: "vt-thanks", role: "status", hidden: true }, h("p", { text: t("thanks") }), done);
  const products = h("div", { class: "vt-products-after" });
  const el = h("div", { class: "vt-view vt-view-ended", hidden: true },
    h("h3", { class: "vt-heading", text: t("ended_heading") }), rating, thanks, products);
  return { el, stars, comment, submit, skip, rating, thanks, done, products };
}

/**
 * A product card from a `product` push. Only https links (http on localhost) are rendered; the link
 * opens in a new tab without handing the shop page to it.
 */
export function card(t, lang, product, onAdd) {
  const url = safeUrl(product.url);
  const image = safeUrl(product.image_url);
  const title = String(product.title || product.sku || "");
  const picture = image
    ? h("img", { class: "vt-card-image", src: image, alt: "", loading: "lazy", referrerpolicy: "no-referrer" })
    : h("div", { class: "vt-card-image vt-card-noimage", "aria-hidden": "true" });
  const heading = h("h4", { class: "vt-card-title" }, url
    ? h("a", { class: "vt-card-link", href: url, target: "_blank", rel: "noopener noreferrer", text: title })
    : title);
  const add = h("button", { class: "vt-add-to-cart vt-primary", type: "button", text: t("card_add") });
  add.addEventListener("click", () => onAdd(product, add));
  return h("article", { class: "vt-card", dataset: { sku: String(product.sku || "") }, role: "listitem" },
    picture,
    h("div", { class: "vt-card-body" }, heading,
      h("p", { class: "vt-card-price", text: formatPrice(lang, product.price, product.currency) }), add));
}
