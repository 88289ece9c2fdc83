// @ts-check
/**
 * vitrine-dom.js: build DOM without ever parsing markup, for every Vitrine page and the widget.
 *
 * Most text on these pages was typed by someone else (shoppers' names and chat, page titles,
 * catalog entries). `h()` only ever sets textContent, properties and attributes, so a chat line
 * `<img src=x onerror=...>` stays text; `href` and `src` pass through `safeUrl()`. Nothing in
 * Vitrine's pages uses innerHTML.
 */

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * A URL from the server, if it is safe to put in href/src: https, or http on localhost only.
 * Returns the normalised string, or null (javascript:, data:, relative junk, credentials...).
 */
export function safeUrl(value) {
  if (typeof value !== "string" || value.length > 2048) return null;
  let url;
  try {
    url = new URL(value); // absolute URLs only: no base
  } catch {
    return null;
  }
  if (url.username || url.password) return null;
  if (url.protocol === "https:") return url.href;
  if (url.protocol === "http:" && LOCAL_HOSTS.has(url.hostname)) return url.href;
  return null;
}

/**
 * h("button", { class: "end", type: "button", onclick: fn, "aria-label": "End" }, "text", child)
 * Props: class, text (textContent), dataset, on<event> listeners (never attributes), href/src
 * (dropped unless safeUrl accepts them), booleans (hidden, disabled, muted...: the property, and
 * the attribute when true), everything else as an attribute. Null, undefined and false are skipped.
 * Children: nodes, or strings appended as text nodes.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (/^on/i.test(key)) {
      if (typeof value === "function") el.addEventListener(key.slice(2), value);
    } else if (key === "href" || key === "src") {
      const url = safeUrl(value);
      if (url) el.setAttribute(key, url);
    } else if (value === true) {
      if (key in el) el[key] = true;
      el.setAttribute(key, "");
    } else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child)); // a string becomes a text node
  }
}

/** Replace an element's children (nodes or strings, never markup). */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A link opening in a new tab when the URL is safe, else the text alone. */
export function link(url, text, className = "") {
  const href = safeUrl(url);
  if (!href) return h("span", { class: className, text });
  return h("a", { class: className, href, target: "_blank", rel: "noopener noreferrer", text });
}
