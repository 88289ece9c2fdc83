/**
 * console-analytics.js: the show's numbers once it has ended (Analytics in vitrine/live/models.py),
 * the chat export and the link to the replay.
 */

import { h, safeUrl } from "../vitrine-dom.js";
import { duration } from "./console-ui.js";

const METRICS = [
  ["peak_viewers", "Peak viewers", String],
  ["average_viewers", "Average viewers", (v) => (Math.round(v * 10) / 10).toString()],
  ["watch_time_s", "Watch time", (s) => duration(s * 1000)],
  ["viewer_sessions", "Viewer sessions", String],
  ["messages", "Messages", String],
  ["likes", "Likes", String],
  ["product_clicks", "Product clicks", String],
  ["add_to_cart", "Added to cart", String],
  ["duration_s", "Show length", (s) => duration(s * 1000)],
];

/**
 * @param {object} ui  summary, numbers, clicks, clicksEmpty, viewer
 * @param {object} view  the ConsoleView of the ended show
 */
export function drawAnalytics(ui, view) {
  const numbers = view.analytics || {};
  const show = view.show;
  ui.summary.textContent = show.started_at_ms && show.ended_at_ms
    ? `“${show.title}” ran for ${duration(show.ended_at_ms - show.started_at_ms)}, ended ${new Date(show.ended_at_ms)
      .toLocaleString()}.`
    : `“${show.title}” has ended.`;
  ui.numbers.replaceChildren(...METRICS.map(([key, label, format]) => h("div", { class: "metric",
    dataset: { metric: key } }, h("dt", { text: label }), h("dd", { text: format(numbers[key] || 0) }))));
  const titles = new Map([...view.catalog, ...view.products].map((c) => [c.sku, c.title]));
  const rows = Object.entries(numbers.clicks_by_sku || {}).sort((a, b) => b[1] - a[1]);
  ui.clicks.replaceChildren(...rows.map(([sku, n]) => h("tr", { dataset: { sku } },
    h("th", { scope: "row" }, titles.get(sku) || sku, " ", h("code", { class: "sku", text: sku })),
    h("td", { text: String(n) }))));
  ui.clicksEmpty.hidden = rows.length > 0;
  const viewer = safeUrl(view.viewer_url);
  ui.viewer.hidden = !viewer;
  if (viewer) ui.viewer.href = viewer;
}

/** Save a Blob as a file: a short-lived blob: URL on a download link. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { download: filename, hidden: true });
  a.href = url; // blob: URLs are not what safeUrl() is for: this one is ours
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
