// @ts-check
/**
 * vitrine-format.js: the locale formatting every Vitrine page shares (widget, consoles, player).
 *
 * Prices arrive as exact decimal text with an ISO 4217 code; they are shown in the reader's locale,
 * and an unknown currency code is shown as given rather than failing. Intl formatters are costly
 * to build, so each is built once per key.
 */

const formatters = new Map();

/** The formatter stored under `key`, built by `make()` the first time. */
export function cached(key, make) {
  if (!formatters.has(key)) formatters.set(key, make());
  return formatters.get(key);
}

/** "129.90", "EUR" -> "€129.90" (or "129,90 €" in French); `locale` undefined: the browser's. */
export function formatPrice(price, currency, locale = undefined) {
  const amount = Number(price);
  const code = String(currency).toUpperCase();
  if (!Number.isFinite(amount)) return `${price} ${currency}`.trim();
  try {
    return cached(`price:${locale}:${code}`, () => new Intl.NumberFormat(locale, { style: "currency", currency: code }))
      .format(amount);
  } catch {
    return `${price} ${currency}`.trim();
  }
}

/** "0:07", "12:30", "1:02:03": a duration, a countdown or a position in a replay. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}
