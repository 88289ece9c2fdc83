/**
 * render.js: DOM building and formatting for the agent console.
 *
 * Everything that reaches the page from the server (names, chat, notes, page
 * titles: most of it typed by shoppers) goes through `h()`, which only ever
 * sets textContent and attributes; nothing is parsed as HTML. Links and images
 * are only rendered for https: URLs (http: on localhost), see `safeUrl()`.
 */

// -- DOM: the shared builders ------------------------------------------------------------

import { h, link, safeUrl } from "../vitrine-dom.js";
import { cached, formatDuration as duration, formatPrice } from "../vitrine-format.js";
import { i18n, t } from "./strings.js";

export { duration, h, link, safeUrl };

/** A cached Intl formatter for the console's current locale (it follows the language switch). */
function formatter(key, make) {
  return cached(`${i18n.locale}|${key}`, make);
}

// -- formatting --------------------------------------------------------------------------

/** Whether the browser knows this IANA time zone. */
export function zoneOk(timeZone) {
  if (typeof timeZone !== "string" || !timeZone) return false;
  try {
    formatter(`zone:${timeZone}`, () => new Intl.DateTimeFormat("en", { timeZone }));
    return true;
  } catch {
    return false;
  }
}

/** "14:05 GMT+2" on the wall clock of `timeZone` (the agent's own zone when undefined). */
export function clockIn(timeZone, ms = Date.now()) {
  const zone = timeZone && zoneOk(timeZone) ? timeZone : undefined;
  if (timeZone && !zone) return "?";
  return formatter(`clock:${zone || ""}`, () => new Intl.DateTimeFormat(i18n.locale, {
    hour: "2-digit", minute: "2-digit", timeZoneName: "short", timeZone: zone,
  })).format(ms);
}

/** "Tue 3 Mar, 14:30 GMT+1" in `timeZone` (the agent's own zone when undefined). */
export function dateTimeIn(ms, timeZone) {
  const zone = timeZone && zoneOk(timeZone) ? timeZone : undefined;
  return formatter(`dt:${zone || ""}`, () => new Intl.DateTimeFormat(i18n.locale, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short", timeZone: zone,
  })).format(ms);
}

/** A short local date and time for lists: today "14:05", else "3 Mar 14:05". */
export function when(ms) {
  const date = new Date(ms);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const options = sameDay ? { hour: "2-digit", minute: "2-digit" }
    : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return formatter(`when:${sameDay}`, () => new Intl.DateTimeFormat(i18n.locale, options)).format(date);
}

/** A count in the console's locale. */
export function number(n) {
  return formatter("number", () => new Intl.NumberFormat(i18n.locale)).format(Number(n) || 0);
}

/** A ProductCard's price in its currency, in the agent's locale. The price is exact text. */
export function price(card) {
  return formatPrice(card.price, card.currency, i18n.locale);
}

/** "French" for "fr" (falls back to the tag), in the console's language ("法语"). */
export function languageName(tag) {
  try {
    const names = formatter("lang", () => new Intl.DisplayNames(i18n.locale, { type: "language" }));
    return names.of(tag) || tag;
  } catch {
    return tag;
  }
}

export function shopperName(context) {
  return (context && context.name) || t("shopper");
}

/** An agent's status as the console shows it ("available", "接待中"); an unknown one as it comes. */
export function statusLabel(status) {
  return ["offline", "available", "away", "busy", "wrap_up"].includes(status) ? t(`status_${status}`) : status;
}

function seconds(ms) {
  return t("seconds", { n: Math.ceil(Math.max(0, ms) / 1000) });
}

// -- live values: a timer updates these in place --------------------------------------------

/** A span showing the time since `sinceMs`, ticking (see tick()). */
export function since(sinceMs, className = "waited") {
  return h("span", { class: className, dataset: { sinceMs: String(sinceMs) }, text: duration(Date.now() - sinceMs) });
}

/** A span showing the time left until `deadlineMs`, ticking. */
export function countdown(deadlineMs, className = "countdown") {
  const left = Math.max(0, deadlineMs - Date.now());
  return h("span", { class: className, dataset: { deadlineMs: String(deadlineMs) }, text: seconds(left) });
}

/** A span showing the wall clock in `timeZone`, refreshed by refreshClocks(). */
export function clock(timeZone, className = "local-time") {
  return h("span", { class: className, dataset: { tz: timeZone || "UTC" }, title: t("shopper_time", { zone: timeZone }),
    text: clockIn(timeZone || "UTC") });
}

/** Update every ticking duration and countdown under `root`. */
export function tick(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("[data-since-ms]")) {
    el.textContent = duration(now - Number(el.dataset.sinceMs));
  }
  for (const el of root.querySelectorAll("[data-deadline-ms]")) {
    el.textContent = seconds(Number(el.dataset.deadlineMs) - now);
  }
}

/** Update every shopper wall clock under `root`. */
export function refreshClocks(root = document) {
  for (const el of root.querySelectorAll("[data-tz]")) el.textContent = clockIn(el.dataset.tz);
}

// -- panels ------------------------------------------------------------------------------------

/** Who the shopper is and where they are: shared by the queue, the ring and the call header. */
export function contextFacts(context) {
  const ctx = context || {};
  const facts = h("dl", { class: "facts" });
  const add = (label, ...value) => facts.append(h("dt", { text: label }), h("dd", {}, ...value));
  add(t("fact_language"), h("span", { class: "lang", title: languageName(ctx.language || "en"),
    text: (ctx.language || "en").toUpperCase() }), " ", languageName(ctx.language || "en"));
  const zone = ctx.timezone && ctx.timezone !== "UTC" ? h("span", { class: "tz", text: ` ${ctx.timezone}` }) : null;
  add(t("fact_local_time"), clock(ctx.timezone), zone); // the clock already says "UTC"
  if (ctx.sku) add(t("fact_product"), h("code", { class: "sku", text: ctx.sku }));
  if (ctx.page_title || ctx.page_url) add(t("fact_page"), link(ctx.page_url, ctx.page_title || ctx.page_url, "page"));
  if (ctx.audio_only) add(t("fact_media"), t("audio_only"));
  return facts;
}

export function renderQueue(list, { entries, total, receivedAt, agentsById, me }) {
  const items = entries.map((entry) => {
    const ctx = entry.context || {};
    const ringing = entry.ringing_agent
      ? h("span", { class: "ringing-tag", text: entry.ringing_agent === me ? t("ringing_you")
        : t("ringing_agent", { name: (agentsById.get(entry.ringing_agent) || {}).display_name || entry.ringing_agent }) })
      : null;
    return h("li", { class: entry.ringing_agent ? "entry ringing" : "entry", dataset: { ticket: entry.ticket } },
      h("span", { class: "pos", title: t("position"), text: String(entry.position) }),
      h("div", { class: "who" },
        h("span", { class: "name", text: shopperName(ctx) }),
        h("span", { class: "lang", title: languageName(ctx.language || "en"), text: (ctx.language || "en").toUpperCase() }),
        ringing),
      h("div", { class: "what" },
        clock(ctx.timezone),
        ctx.sku ? h("code", { class: "sku", text: ctx.sku }) : null,
        ctx.page_title || ctx.page_url ? link(ctx.page_url, ctx.page_title || ctx.page_url, "page") : null),
      since(receivedAt - entry.waited_ms));
  });
  list.replaceChildren(...items);
  const more = total - entries.length;
  if (more > 0) list.append(h("li", { class: "more", text: t("more_waiting", { n: more }) }));
}

export function renderAgents(list, agents, me) {
  list.replaceChildren(...agents.map((agent) => h("li", { class: "agent", dataset: { agent: agent.id } },
    h("span", { class: "badge", dataset: { status: agent.status }, text: statusLabel(agent.status) }),
    h("span", { class: "name", text: agent.display_name }),
    agent.id === me ? h("span", { class: "you", text: t("you_mark") }) : null,
    h("span", { class: "langs", text: (agent.languages || []).join(" ").toUpperCase() }))));
}

export function renderCatalog(list, catalog, { inCall, shown, filter, onShow }) {
  const needle = (filter || "").trim().toLowerCase();
  const matches = catalog.filter((card) => !needle || card.sku.toLowerCase().includes(needle)
    || card.title.toLowerCase().includes(needle));
  list.replaceChildren(...matches.map((card) => {
    const image = safeUrl(card.image_url)
      ? h("img", { src: card.image_url, alt: "", loading: "lazy", referrerpolicy: "no-referrer" })
      : h("span", { class: "noimg", "aria-hidden": "true" });
    return h("li", { class: shown.has(card.sku) ? "product shown" : "product", dataset: { sku: card.sku } },
      image,
      h("div", { class: "info" },
        link(card.url, card.title, "title"),
        h("span", { class: "meta" }, h("span", { class: "price", text: price(card) }), " ",
          h("code", { class: "sku", text: card.sku }))),
      h("button", { type: "button", class: "show", dataset: { sku: card.sku }, disabled: !inCall,
        title: t(inCall ? "show_product_title" : "show_product_disabled"),
        onclick: () => onShow(card.sku), text: t(shown.has(card.sku) ? "shown" : "show") }));
  }));
}

export function chatLine(line, { pending = false } = {}) {
  const who = line.sender === "agent" ? (line.name || t("you")) : (line.name || t("shopper"));
  return h("li", { class: `line ${line.sender === "agent" ? "mine" : "theirs"}${pending ? " pending" : ""}` },
    h("time", { text: when(line.at_ms || Date.now()) }),
    h("span", { class: "sender", text: who }),
    h("span", { class: "text", text: line.text }));
}

export function productLine(card) {
  return h("li", { class: "line product-shown" },
    h("time", { text: when(Date.now()) }),
    h("span", { class: "sender", text: t("shown") }),
    h("span", { class: "text" }, link(card.url, card.title), ` · ${price(card)}`));
}

const OUTCOME_LABEL = { answered: "outcome_answered", missed: "outcome_missed", abandoned: "outcome_abandoned" };
const ENDED_BY = { shopper: "ended_by_shopper", agent: "ended_by_agent", disconnect: "ended_by_disconnect" };

export function renderHistory(list, calls, { agentsById, open }) {
  list.replaceChildren(...calls.map((call) => {
    const ctx = call.context || {};
    const stars = call.rating ? "★".repeat(call.rating) + "☆".repeat(5 - call.rating) : "";
    const transcript = h("ol", { class: "transcript" },
      ...(call.chat || []).map((line) => chatLine(line)));
    if (!(call.chat || []).length) transcript.append(h("li", { class: "none", text: t("no_chat") }));
    const details = h("details", { class: "call", dataset: { id: call.id, outcome: call.outcome }, open: open.has(call.id) },
      h("summary", {},
        h("time", { text: when(call.queued_ms) }),
        h("span", { class: "name", text: shopperName(ctx) }),
        h("span", { class: "outcome", dataset: { outcome: call.outcome },
          text: OUTCOME_LABEL[call.outcome] ? t(OUTCOME_LABEL[call.outcome]) : call.outcome }),
        h("span", { class: "wait", title: t("waited"), text: t("wait_time", { time: duration(call.wait_ms) }) }),
        h("span", { class: "talk", title: t("talk_time"),
          text: call.talk_ms != null ? t("talk", { time: duration(call.talk_ms) }) : "" }),
        h("span", { class: "rating", title: call.rating ? t("rating_of", { n: call.rating }) : t("not_rated"), text: stars })),
      h("div", { class: "detail" },
        h("p", { class: "by" }, call.agent
          ? t("by_agent", { name: (agentsById.get(call.agent) || {}).display_name || call.agent }) : t("no_agent"),
        call.ended_by
          ? t("ended_by_label", { by: ENDED_BY[call.ended_by] ? t(ENDED_BY[call.ended_by]) : call.ended_by }) : ""),
        (call.products_shown || []).length
          ? h("p", { class: "products" }, t("shown_list"),
            (call.products_shown || []).map((p) => `${p.title} (${p.sku})`).join(", "))
          : null,
        (call.added_to_cart || []).length
          ? h("p", { class: "cart" }, t("added_to_cart"), call.added_to_cart.join(", ")) : null,
        call.comment ? h("blockquote", { class: "comment", text: call.comment }) : null,
        call.notes ? h("p", { class: "notes" }, h("strong", { text: t("notes_label") }), call.notes) : null,
        call.wrap_up ? h("p", { class: "notes" }, h("strong", { text: t("wrapup_label") }), call.wrap_up) : null,
        transcript));
    details.addEventListener("toggle", () => (details.open ? open.add(call.id) : open.delete(call.id)));
    return details;
  }));
}

export function renderRequests(list, requests, { pending, onResolve }) {
  list.replaceChildren(...requests.filter((r) => !r.resolved_ms).map((request) => {
    const ctx = request.context || {};
    const slot = request.slot_utc_ms != null
      ? h("p", { class: "slot" },
        h("strong", { text: t("call_back") }),
        h("span", { class: "slot-local", title: t("your_time"), text: dateTimeIn(request.slot_utc_ms) }),
        h("span", { class: "slot-shopper", title: t("shopper_time", { zone: ctx.timezone || "UTC" }),
          text: t("shopper_slot", { when: dateTimeIn(request.slot_utc_ms, ctx.timezone || "UTC") }) }))
      : null;
    return h("li", { class: "request", dataset: { id: request.id, kind: request.kind } },
      h("div", { class: "head" },
        h("span", { class: "kind", text: t(request.kind === "callback" ? "kind_callback" : "kind_message") }),
        h("span", { class: "name", text: request.name }),
        h("span", { class: "contact", text: request.contact }),
        h("time", { text: when(request.created_ms) })),
      slot,
      request.text ? h("p", { class: "text", text: request.text }) : null,
      h("p", { class: "ctx" },
        h("span", { class: "lang", text: (ctx.language || "en").toUpperCase() }), " ",
        ctx.sku ? h("code", { class: "sku", text: ctx.sku }) : null, " ",
        ctx.page_title || ctx.page_url ? link(ctx.page_url, ctx.page_title || ctx.page_url, "page") : null),
      h("button", { type: "button", class: "resolve", disabled: pending.has(request.id),
        onclick: () => onResolve(request.id), text: t(pending.has(request.id) ? "resolving" : "resolve") }));
  }));
}
