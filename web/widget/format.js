/**
 * format.js: times, waits and prices for the shopper, in the shopper's own language and time zone.
 */

import { formatPrice as sharedPrice } from "../vitrine-format.js";

/** The shopper's IANA time zone as the browser knows it ("UTC" if it does not say). */
export function shopperTimeZone() {
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    return typeof zone === "string" && zone && zone.length <= 64 ? zone : "UTC";
  } catch {
    return "UTC";
  }
}

function dateFormat(lang, options) {
  try {
    return new Intl.DateTimeFormat(lang, { timeZone: shopperTimeZone(), ...options });
  } catch {
    return new Intl.DateTimeFormat("en", options);
  }
}

function sameLocalDay(a, b) {
  const f = dateFormat("en", { year: "numeric", month: "2-digit", day: "2-digit" });
  return f.format(a) === f.format(b);
}

/**
 * When the shop next opens, as a phrase that fits "Closed · opens {when}": the time alone
 * today, the weekday and time within the week, and the date as well further out.
 */
export function formatOpening(lang, utcMs, now = Date.now()) {
  const at = new Date(utcMs);
  const time = { hour: "numeric", minute: "2-digit" };
  if (sameLocalDay(at, new Date(now))) return dateFormat(lang, time).format(at);
  if (utcMs - now < 6 * 86_400_000) return dateFormat(lang, { weekday: "long", ...time }).format(at);
  return dateFormat(lang, { weekday: "short", day: "numeric", month: "short", ...time }).format(at);
}

/** A callback slot: weekday, date and time, always all three, in the shopper's zone. */
export function formatSlot(lang, utcMs) {
  return dateFormat(lang, { weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit" })
    .format(new Date(utcMs));
}

/** The key and vars for a wait estimate in seconds (null: unknown). */
export function waitPhrase(t, waitS) {
  if (typeof waitS !== "number" || !Number.isFinite(waitS) || waitS < 0) return "";
  if (waitS === 0) return t("status_no_wait");
  if (waitS < 60) return t("status_wait_lt1");
  return t("status_wait_min", { n: Math.round(waitS / 60) });
}

/** A price in the card's own currency ("129.90", "EUR" -> "129,90 €" in French). */
export function formatPrice(lang, price, currency) {
  return sharedPrice(price, currency, lang);
}
