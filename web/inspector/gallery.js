/**
 * gallery.js: the case's photos and snapshots, fetched with the console token (so as Blobs, shown
 * through blob: URLs), each with its dimensions, size, time and SHA-256. The console hashes the
 * bytes it received and says whether they match the SHA-256 the server recorded at capture.
 */

import { h } from "../vitrine-dom.js";
import { t, timeOfDay } from "./strings.js";

const SHOWN = new Set(["photo", "snapshot"]);

function bytes(n) {
  if (!(n >= 0)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

async function sha256Hex(blob) {
  if (!crypto.subtle) return null;
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class Gallery {
  /**
   * @param {HTMLElement} list  the gallery's <ul>
   * @param {HTMLElement} count
   * @param {(id: string) => Promise<Blob>} fetchArtifact
   */
  constructor(list, count, fetchArtifact) {
    this.list = list;
    this.count = count;
    this.fetchArtifact = fetchArtifact;
    this.items = new Map(); // artifact id -> <li>
    this.urls = [];
  }

  /** Show an artifact (once per id); recordings, notes and other files are left to the bundle. */
  add(artifact) {
    if (!artifact || !SHOWN.has(artifact.kind) || this.items.has(artifact.id)) return;
    const size = artifact.width && artifact.height ? `${artifact.width}×${artifact.height}` : t("size_unknown");
    const when = timeOfDay(artifact.captured_at_ms, true);
    const img = h("img", { alt: `${artifact.kind} ${size}`, loading: "lazy" });
    const open = h("a", { class: "open", target: "_blank", rel: "noopener", text: t("open_full_size"), hidden: true });
    const check = h("span", { class: "check", text: t("checking") });
    const item = h("li", {
      class: "artifact",
      dataset: { id: artifact.id, kind: artifact.kind, width: String(artifact.width || ""), height: String(artifact.height || ""), request: artifact.request || "" },
    },
    h("div", { class: "thumb" }, img),
    h("div", { class: "meta" },
      h("p", { class: "title" }, h("strong", { text: t(artifact.kind === "photo" ? "photo" : "snapshot_kind") }),
        ` · ${size} · ${bytes(artifact.bytes)} · ${when}`),
      h("p", { class: "sha", title: artifact.sha256 }, h("code", { text: `SHA-256 ${artifact.sha256.slice(0, 16)}…` }), " ", check),
      open));
    this.items.set(artifact.id, item);
    this.list.prepend(item);
    this.count.textContent = String(this.items.size);
    this._load(artifact, img, open, check, item);
  }

  async _load(artifact, img, open, check, item) {
    let blob;
    try {
      blob = await this.fetchArtifact(artifact.id);
    } catch (err) {
      check.textContent = t("load_error", { code: err.code || "error" });
      check.dataset.ok = "false";
      item.dataset.loaded = "error";
      return;
    }
    const url = URL.createObjectURL(blob);
    this.urls.push(url);
    img.src = url; // a blob: URL this page made itself (h() would refuse it as a link)
    open.href = url;
    open.hidden = false;
    img.addEventListener("load", () => { item.dataset.loaded = "1"; }, { once: true });
    img.addEventListener("error", () => { item.dataset.loaded = "error"; }, { once: true });
    try {
      const hex = await sha256Hex(blob);
      if (hex === null) {
        check.textContent = "";
      } else {
        const ok = hex === artifact.sha256;
        check.textContent = t(ok ? "hash_ok" : "hash_bad");
        check.dataset.ok = String(ok);
      }
    } catch {
      check.textContent = "";
    }
  }
}
