/**
 * view.js: what the buyer's page shows: the current state (body[data-state] and the one section
 * whose data-view lists it), every text in the case's language, the banner, short notices, and the
 * friendly pages for a link or a session that cannot be used.
 *
 * Texts come from strings.js and reach the page through textContent only. An element with
 * data-t="key" shows that key; data-t-aria and data-t-placeholder set those attributes.
 */

import { setDocumentLanguage, translateDom } from "../vitrine-i18n.js";
import { pickLanguage, translator } from "./strings.js";

/** The data attributes naming this page's keys (data-t="key", data-t-aria, data-t-placeholder). */
const KEYS = { text: "t", "aria-label": "t-aria", placeholder: "t-placeholder" };

/** The page each refusal shows: [heading key, body key, may the person retry?]. */
const PROBLEMS = {
  link_used: ["link_used_heading", "link_used_body", false],
  link_expired: ["link_expired_heading", "link_expired_body", false],
  invalid_token: ["link_invalid_heading", "link_invalid_body", false],
  no_link: ["link_invalid_heading", "link_invalid_body", false],
  token_expired: ["session_expired_heading", "link_expired_body", false],
  session_expired: ["session_expired_heading", "link_expired_body", false],
  case_closed: ["closed_heading", "closed_body", false],
  case_not_found: ["link_invalid_heading", "link_invalid_body", false],
  replaced: ["replaced_heading", "replaced_body", false],
  lost: ["lost_heading", "lost_body", true],
  network: ["lost_heading", "error_network", true],
  rate_limited: ["lost_heading", "error_busy", true],
};

export class View {
  constructor() {
    this.lang = pickLanguage(navigator.languages || [], navigator.language);
    this.t = translator(this.lang);
    this._toastTimer = null;
    this.applyStrings();
  }

  setLanguage(lang) {
    this.lang = pickLanguage(lang, navigator.languages || []);
    this.t = translator(this.lang);
    setDocumentLanguage(this.lang);
    this.applyStrings();
  }

  applyStrings(root = document) {
    translateDom(root, this.t, KEYS);
    document.title = this.t("page_title");
  }

  /** Show `key`'s text in `el`, and keep it on a language change. */
  text(el, key, vars) {
    if (vars) {
      delete el.dataset.t;
      el.textContent = this.t(key, vars);
    } else {
      el.dataset.t = key;
      el.textContent = this.t(key);
    }
  }

  get state() {
    return document.body.dataset.state;
  }

  /** Show the section(s) of `state`. */
  setState(state) {
    document.body.dataset.state = state;
    for (const section of document.querySelectorAll("[data-view]")) {
      section.hidden = !section.dataset.view.split(" ").includes(state);
    }
  }

  /** The banner under the header (a reconnect), or none. */
  banner(key) {
    const el = document.getElementById("banner");
    if (!key) {
      el.hidden = true;
      return;
    }
    this.text(el, key);
    el.hidden = false;
  }

  /** A short notice over the video. */
  toast(key, { ms = 4000, kind = "info" } = {}) {
    const el = document.getElementById("toast");
    clearTimeout(this._toastTimer);
    this.text(el, key);
    el.dataset.kind = kind;
    el.hidden = false;
    if (ms) this._toastTimer = setTimeout(() => { el.hidden = true; }, ms);
  }

  /**
   * The friendly page for a refusal or a failure (`code` from the server, or "lost", "no_link"...):
   * what happened and what to do, never a raw message. `retry` is offered only where it can help.
   */
  problem(code, retry = null) {
    const [heading, body, mayRetry] = PROBLEMS[code] || ["lost_heading", "error_generic", true];
    this.text(document.getElementById("problem-heading"), heading);
    this.text(document.getElementById("problem-body"), body);
    const button = document.getElementById("problem-retry");
    button.hidden = !(mayRetry && retry);
    button.disabled = false;
    button.onclick = mayRetry && retry ? () => { button.disabled = true; retry(); } : null;
    document.body.dataset.problem = code;
    this.setState("problem");
  }
}
