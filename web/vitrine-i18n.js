// @ts-check
/**
 * vitrine-i18n.js: the one string-table mechanism every Vitrine page shares (widget, buyer's inspect
 * page, live player, and the agent, live-selling and inspector consoles).
 *
 * Each page keeps its own tables, a plain object per language in its folder's strings file:
 *
 *   { en: { key: "Text with {name}", count: { one: "1 item", other: "{n} items" } }, zh: { ... } }
 *
 * English is the reference: a key missing from a language falls back to it, so a page never shows a
 * raw key. A value is a string, or { one, other, ... } for counts (picked with Intl.PluralRules from
 * `n`). The results are plain text: they reach the page through textContent and attributes only.
 *
 * The language is negotiated once: an explicit choice (the embed's data-lang, a link's ?lang=, or the
 * console's remembered switch), then navigator.languages, then a default. Tags are matched on their
 * primary subtag, so zh-CN, zh-Hans and zh-TW all read the zh table (there is one Chinese for now).
 */

export const DEFAULT_LANG = "en";

/** Where the consoles remember the language picked with their switch (one choice for every console). */
export const STORAGE_KEY = "vitrine.lang";

/** Scripts written right to left: <html dir> follows the language. */
const RTL = new Set(["ar", "fa", "he", "ur", "yi"]);

/** "zh-Hans-CN", "ZH_tw", " en " -> "zh", "zh", "en"; "" for anything that is no tag. */
export function primaryTag(tag) {
  return String(tag || "").trim().toLowerCase().split(/[-_]/)[0];
}

/** The navigator's languages (the first is the user's first choice); empty outside a browser. */
export function browserLanguages() {
  if (typeof navigator === "undefined") return [];
  if (navigator.languages && navigator.languages.length) return [...navigator.languages];
  return navigator.language ? [navigator.language] : [];
}

/**
 * The first of `explicit` (a choice, or a list of them), then `preferred` (default: the browser's
 * languages), whose primary tag is in `supported`; else `fallback`.
 * @param {string[]} supported   languages with a table ("en", "zh", ...)
 * @param {object} [o]
 * @param {string|null|Array<string|null|undefined>} [o.explicit]
 * @param {readonly string[]} [o.preferred]
 * @param {string} [o.fallback]
 * @returns {string}
 */
export function negotiate(supported, { explicit = null, preferred = undefined, fallback = DEFAULT_LANG } = {}) {
  const wanted = [...[explicit].flat(), ...(preferred === undefined ? browserLanguages() : preferred)];
  for (const tag of wanted) {
    const lang = primaryTag(tag);
    if (lang && supported.includes(lang)) return lang;
  }
  return supported.includes(fallback) ? fallback : supported[0];
}

/**
 * The tag Intl formats with for `lang`: the browser's own variant when it has one ("zh-CN", "en-GB",
 * "fr-CA"), so dates and numbers read as the user expects; else the language itself.
 * @param {string} lang
 * @param {readonly string[]} [preferred]
 */
export function formatLocale(lang, preferred = browserLanguages()) {
  for (const tag of preferred) {
    if (primaryTag(tag) !== lang) continue;
    try {
      const [known] = Intl.NumberFormat.supportedLocalesOf([tag]);
      if (known) return known;
    } catch {
      /* not a language tag: try the next */
    }
  }
  return lang;
}

/**
 * t(key, vars) for `lang` over `tables`: "{name}" placeholders filled from vars, counts by vars.n,
 * English for a key the language lacks. A key no table has is a bug: it is reported on the console
 * and shown as nothing rather than as the raw key.
 * @param {Record<string, Record<string, any>>} tables
 * @param {string} lang
 * @returns {(key: string, vars?: Record<string, any>) => string}
 */
export function translator(tables, lang, fallback = DEFAULT_LANG) {
  const table = tables[lang] || tables[fallback];
  const reference = tables[fallback] || {};
  let plural = null;
  try {
    plural = new Intl.PluralRules(tables[lang] ? lang : fallback);
  } catch {
    plural = null;
  }
  return (key, vars = {}) => {
    let value = table[key] ?? reference[key];
    if (value === undefined || value === null) {
      console.warn(`vitrine i18n: no text for ${JSON.stringify(key)}`);
      return "";
    }
    if (typeof value === "object") {
      const n = vars.n;
      const form = plural && n !== undefined && n !== null ? plural.select(Number(n)) : "other";
      value = value[form] ?? value.other;
    }
    return String(value).replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  };
}

/** Which data-* attribute names the key of an element's text ("text") or of one of its attributes. */
export const DOM_KEYS = { text: "i18n", placeholder: "i18n-placeholder", title: "i18n-title", "aria-label": "i18n-aria-label" };

/**
 * Fill the translatable elements under `root`: data-i18n="key" sets the text, data-i18n-placeholder,
 * data-i18n-title and data-i18n-aria-label set those attributes (`names` renames the data
 * attributes). An element keeps the text it has when no table holds its key.
 * @param {ParentNode} root
 * @param {(key: string, vars?: Record<string, any>) => string} t
 * @param {Record<string, string>} [names]
 */
export function translateDom(root, t, names = DOM_KEYS) {
  const entries = Object.entries(names);
  const selector = entries.map(([, data]) => `[data-${data}]`).join(", ");
  for (const el of root.querySelectorAll(selector)) {
    for (const [target, data] of entries) {
      const key = el.getAttribute(`data-${data}`);
      const text = key ? t(key) : "";
      if (!text) continue;
      if (target === "text") el.textContent = text;
      else el.setAttribute(target, text);
    }
  }
}

/** <html lang dir> for `lang` (screen readers, fonts, hyphenation and line breaking follow it). */
export function setDocumentLanguage(lang, doc = typeof document === "undefined" ? null : document) {
  if (!doc) return;
  doc.documentElement.lang = lang;
  doc.documentElement.dir = RTL.has(lang) ? "rtl" : "ltr";
}

/** The language picked with a switch, if it is one of `supported` (storage may be off: private mode, policy). */
export function rememberedLanguage(supported, storageKey = STORAGE_KEY) {
  try {
    const lang = primaryTag(localStorage.getItem(storageKey));
    return supported.includes(lang) ? lang : null;
  } catch {
    return null;
  }
}

export function rememberLanguage(lang, storageKey = STORAGE_KEY) {
  try {
    localStorage.setItem(storageKey, lang);
  } catch {
    /* not remembered: the choice still holds for this page */
  }
}

/** A language's own name: "English", "中文", "español"... */
export function nativeName(lang) {
  try {
    const name = new Intl.DisplayNames([lang], { type: "language" }).of(lang);
    return name ? name.charAt(0).toLocaleUpperCase(lang) + name.slice(1) : lang;
  } catch {
    return lang;
  }
}

/**
 * A page's language: its tables, the negotiated language and its t(), the Intl locale, and a switch.
 *
 *   const i18n = pageLanguage(TABLES, { remember: true });
 *   i18n.apply();                     // <html lang dir> and the data-i18n elements
 *   i18n.bindSwitch(select);          // the <select> lists the languages; a change is remembered
 *   i18n.onChange(() => redraw());    // texts built in JS are drawn again
 */
export class PageLanguage {
  /**
   * @param {Record<string, Record<string, any>>} tables
   * @param {object} [o]
   * @param {string|null|Array<string|null|undefined>} [o.explicit]  a choice that wins over everything
   * @param {boolean} [o.remember]   read and keep the switch's choice in localStorage (the consoles)
   * @param {string} [o.storageKey]
   * @param {readonly string[]} [o.preferred]  default: navigator.languages
   */
  constructor(tables, { explicit = null, remember = false, storageKey = STORAGE_KEY, preferred = undefined } = {}) {
    this.tables = tables;
    this.languages = Object.keys(tables);
    this.remember = remember;
    this.storageKey = storageKey;
    this.preferred = preferred === undefined ? browserLanguages() : [...preferred];
    const stored = remember ? rememberedLanguage(this.languages, storageKey) : null;
    /** @type {Set<(lang: string) => void>} */
    this.listeners = new Set();
    this._use(negotiate(this.languages, { explicit: [explicit].flat().concat(stored), preferred: this.preferred }));
  }

  /** @param {string} lang */
  _use(lang) {
    this.lang = lang;
    this.locale = formatLocale(lang, this.preferred);
    this.t = translator(this.tables, lang);
  }

  /** <html lang dir> and every data-i18n element under `root`. */
  apply(root = document) {
    setDocumentLanguage(this.lang);
    translateDom(root, this.t);
  }

  /** Switch to `lang` (remembered when the page remembers), translate the page again, tell the listeners. */
  set(lang) {
    const chosen = negotiate(this.languages, { explicit: lang, preferred: [] });
    if (this.remember) rememberLanguage(chosen, this.storageKey);
    if (chosen === this.lang) return;
    this._use(chosen);
    if (typeof document !== "undefined") this.apply();
    for (const listener of this.listeners) listener(chosen);
  }

  /** @param {(lang: string) => void} listener */
  onChange(listener) {
    this.listeners.add(listener);
  }

  /**
   * Make `select` the page's language switch: one option per language, in its own name.
   * @param {HTMLSelectElement} select
   */
  bindSwitch(select) {
    select.replaceChildren(...this.languages.map((lang) => {
      const option = document.createElement("option");
      option.value = lang;
      option.lang = lang;
      option.textContent = nativeName(lang);
      return option;
    }));
    select.value = this.lang;
    select.addEventListener("change", () => this.set(select.value));
    this.onChange((lang) => { select.value = lang; });
  }
}

/** @param {ConstructorParameters<typeof PageLanguage>} args */
export function pageLanguage(...args) {
  return new PageLanguage(...args);
}
