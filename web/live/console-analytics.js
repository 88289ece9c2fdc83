/**
 * console-analytics.js: the show's numbers once it has ended (Analytics in vitrine/live/models.py),
 * the chat export and the link to the replay.
 */

import { h, safeUrl } from "../vitrine-dom.js";
import { t } from "./console-strings.js";
import { count, dateTime, duration } from "./console-ui.js";

/** [metric, key of its label, format]. */
const METRICS = [
  ["peak_viewers", "peak_viewers", count],
  ["average_viewers", "average_viewers", (v) => count(Math.round(v * 10) / 10)],
  ["watch_time_s", "watch_time", (s) => duration(s * 1000)],
  ["viewer_sessions", "viewer_sessions", count],
  ["messages", "messages", count],
  ["likes", "likes", count],
  ["product_clicks", "product_clicks", count],
  ["add_to_cart", "added_to_cart", count],
  ["duration_s", "show_length", (s) => duration(s * 1000)],
];

/**
 * @param {object} ui  summary, numbers, clicks, clicksEmpty, viewer
 * @param {object} view  the ConsoleView of the ended show
 */
export function drawAnalytics(ui, view) {
  const numbers = view.analytics || {};
  const show = view.show;
  ui.summary.textContent = show.started_at_ms && show.ended_at_ms
    ? t("ran_for", { title: show.title, time: duration(show.ended_at_ms - show.started_at_ms),
      when: dateTime(show.ended_at_ms) })
    : t("has_ended", { title: show.title });
  ui.numbers.replaceChildren(...METRICS.map(([key, label, format]) => h("div", { class: "metric",
    dataset: { metric: key } }, h("dt", { text: t(label) }), h("dd", { text: format(numbers[key] || 0) }))));
  const titles = new Map([...view.catalog, ...view.products].map((c) => [c.sku, c.title]));
  const rows = Object.entries(numbers.clicks_by_sku || {}).sort((a, b) => b[1] - a[1]);
  ui.clicks.replaceChildren(...rows.map(([sku, n]) => h("tr", { dataset: { sku } },
    h("th", { scope: "row" }, titles.get(sku) || sku, " ", h("code", { class: "sku", text: sku })),
    h("td", { text: count(n) }))));
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
