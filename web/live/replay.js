/**
 * replay.js: an ended show. The recording (when there is one) with the chat in sync: a line shows
 * once the video reaches the moment it was said, and seeking back hides it again. Chapters jump to
 * each product pin; the products pinned at the current moment show over the video, and reactions
 * float at their times while it plays.
 *
 * The recording has one part per media worker the show was on (a worker restart or failure moves
 * the room mid-show), played one after the other in one <video>. Everything follows the wall clock:
 * the moment on screen is the current part's start plus its currentTime, so the chat, pins and
 * reactions stay in sync across parts and skip the gap between them. Positions are kept as ms
 * since the first part's start (replay.started_at_ms), which is what a log entry's at_ms becomes.
 */

import { h, safeUrl, setChildren } from "../vitrine-dom.js";
import { ChatList, floatReactions, productCard } from "./player-view.js";
import { applyEntry, emptyState } from "./player-state.js";
import { formatClock, t } from "./player-strings.js";

const PAGE = 1000; // log entries per request (the server's maximum)
const MAX_TRANSCRIPT_LINES = 1000; // no recording: the chat as a plain transcript
const FLOAT_WINDOW_MS = 1500; // reactions float only while playing forward, not across a seek

/** The first index whose offset is greater than `pos` (offsets ascending): how many are due. */
function countDue(offsets, pos) {
  let lo = 0;
  let hi = offsets.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (offsets[mid] <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ReplayView {
  /** @param ctx the player's context (see player.js); @param show the ShowView (state "ended") */
  constructor(ctx, show) {
    this.ctx = ctx;
    this.show = show;
    this.replay = show.replay || { started_at_ms: show.started_at_ms || 0, parts: [], chapters: [] };
    this.parts = this.replay.parts.map((part) => ({ ...part, url: safeUrl(new URL(part.url, `${ctx.base}/`).href) }));
    // Where each part begins on the replay's own timeline (the parts back to back), for chapter times.
    this.partBase = this.parts.map((_, i) => this.parts.slice(0, i).reduce((sum, part) => sum + part.duration_ms, 0));
    this.current = 0; // the part in the <video>
    this.pendingSeek = null; // ms into a part being loaded, applied once its metadata is in
    this.chatEntries = [];
    this.chatOffsets = [];
    this.reactionEntries = [];
    this.reactionOffsets = [];
    this.productEntries = [];
    this.shown = 0;
    this.lastPos = 0;
    this.pinsKey = "";
    this._build();
  }

  _offset(entry) {
    return entry.at_ms - this.replay.started_at_ms;
  }

  /** Where a moment of a part is, in ms since the first part's start (the wall clock, like log entries). */
  _wall(part, offsetMs) {
    return this.parts[part].started_at_ms - this.replay.started_at_ms + offsetMs;
  }

  _build() {
    const url = this.parts.length ? this.parts[0].url : null;
    this.floats = h("div", { class: "vl-floats", "aria-hidden": "true" });
    this.cards = h("section", { class: "vl-cards", "aria-label": t("pinned_products") });
    this.status = h("p", { class: "vl-waiting", role: "status", hidden: Boolean(url), text: t("no_recording") });
    if (url) {
      this.video = h("video", { class: "vl-video", controls: true, playsinline: true, preload: "metadata", src: url,
        "aria-label": this.show.title });
      const sync = () => this._sync();
      for (const type of ["timeupdate", "seeked", "seeking", "play", "loadedmetadata", "ended"]) {
        this.video.addEventListener(type, sync);
      }
      this.video.addEventListener("loadedmetadata", () => this._seekPending());
      this.video.addEventListener("ended", () => { // the next part carries on where this one stopped
        if (this.current + 1 < this.parts.length) this._play(this.current + 1, 0);
      });
      this.video.addEventListener("error", () => {
        this.status.textContent = t("recording_failed");
        this.status.hidden = false;
      });
    }
    // Without a recording there is no moment to follow: all the show's products, to shop from.
    const products = url ? null : h("div", { class: "vl-products" }, this.show.products.map((card) => productCard(card,
      { locale: this.ctx.locale, onCart: this.ctx.addToCart })));
    this.stage = h("div", { class: `vl-stage is-replay${url ? "" : " is-empty"}` }, this.video, this.status, products,
      h("div", { class: "vl-top" }, h("span", { class: "vl-badge", text: t("replay_badge") }), this._partLabel()),
      this.floats, h("div", { class: "vl-bottom" }, this.cards));

    this.chapters = h("ol", { class: "vl-chapters" });
    this.chat = new ChatList(t("replay_chat_heading"));
    if (!url) this.chat.max = MAX_TRANSCRIPT_LINES;
    this.noChat = h("p", { class: "vl-hint", text: t("no_chat"), hidden: true });
    this.side = h("section", { class: "vl-side", "aria-label": t("replay_chat_heading") },
      h("h1", { class: "vl-title", text: this.show.title }),
      h("h2", { class: "vl-heading", text: t("chapters_heading"), hidden: !this.replay.chapters.length }),
      this.chapters, h("h2", { class: "vl-heading", text: t("replay_chat_heading") }), this.chat.el, this.noChat);
    this.el = h("div", { class: "vl-layout is-replay" }, this.stage, this.side);
    this._renderChapters();
  }

  async start() {
    let entries;
    try {
      entries = await this._log();
    } catch {
      entries = null; // the video and chapters still work without the chat
    }
    this.chatEntries = (entries || []).filter((e) => e.kind === "chat");
    this.chatOffsets = this.chatEntries.map((e) => this._offset(e));
    this.reactionEntries = (entries || []).filter((e) => e.kind === "reactions");
    this.reactionOffsets = this.reactionEntries.map((e) => this._offset(e));
    this.productEntries = (entries || []).filter((e) => e.kind === "product");
    this.noChat.hidden = !entries || this.chatEntries.length > 0;
    if (this.video) this._sync();
    else this.chat.set(this.chatEntries); // no recording: the whole chat, as a transcript
  }

  destroy() {
    if (this.video) {
      this.video.pause();
      this.video.removeAttribute("src");
      this.video.load(); // stop the download
    }
  }

  /** The whole log, page by page. */
  async _log() {
    const entries = [];
    let after = 0;
    for (;;) {
      const page = await this.ctx.api(`/log?after=${after}&limit=${PAGE}`);
      entries.push(...page.entries);
      if (page.entries.length < PAGE) return entries;
      after = page.entries[page.entries.length - 1].seq;
    }
  }

  /** "Part 1 of 2" over the video when the recording has several parts; the native controls show one. */
  _partLabel() {
    if (this.parts.length < 2) return null;
    this.partText = h("span", { class: "vl-viewers vl-part", "aria-live": "polite" });
    this._showPart();
    return this.partText;
  }

  _showPart() {
    if (!this.partText) return;
    this.partText.textContent = t("replay_part", { n: this.current + 1, count: this.parts.length });
  }

  _renderChapters() {
    const items = this.replay.chapters.map((chapter) => {
      const part = chapter.part || 0;
      const time = formatClock((this.partBase[part] || 0) + chapter.offset_ms);
      const body = [
        chapter.card.image_url ? h("img", { class: "vl-chapter-img", src: chapter.card.image_url, alt: "",
          loading: "lazy", onerror: (e) => { e.target.hidden = true; } }) : null,
        h("span", { class: "vl-chapter-title", text: chapter.card.title }),
        h("span", { class: "vl-chapter-time", text: time }),
      ];
      const item = this.video
        ? h("button", { class: "vl-chapter", type: "button", "aria-label": t("chapter_aria", { title: chapter.card.title, time }),
          onclick: () => this._play(part, chapter.offset_ms) }, body)
        : h("div", { class: "vl-chapter" }, body);
      const wall = this.parts[part] ? this._wall(part, chapter.offset_ms) : chapter.offset_ms;
      return h("li", { dataset: { offset: String(wall) } }, item);
    });
    setChildren(this.chapters, items);
  }

  /** Play part `part` from `offsetMs` into it: a chapter's tap (a gesture: it plays with sound), or the
   * next part once one ends. Another part loads first, and is sought once its metadata is in. */
  _play(part, offsetMs) {
    if (!this.parts[part]) return;
    if (part === this.current) {
      this.video.currentTime = offsetMs / 1000;
    } else {
      this.current = part;
      this.pendingSeek = offsetMs;
      this.video.src = this.parts[part].url;
      this._showPart();
    }
    this.video.play().catch(() => {});
  }

  _seekPending() {
    if (this.pendingSeek === null) return;
    if (this.pendingSeek > 0) this.video.currentTime = this.pendingSeek / 1000;
    this.pendingSeek = null;
  }

  /** Bring the chat, the pins, the current chapter and the reactions to the video's position. */
  _sync() {
    if (this.pendingSeek !== null) return; // another part is loading: its time is not the moment yet
    // The end of the last part is the end of the show: what was said or pinned after its last recorded
    // frame (the host's camera stopped first, the recording was cut short) shows then too.
    const last = this.video.ended && this.current === this.parts.length - 1;
    const pos = last ? Infinity : this._wall(this.current, this.video.currentTime * 1000);
    const due = countDue(this.chatOffsets, pos);
    if (due > this.shown && due - this.shown <= this.chat.max) {
      this.chat.add(this.chatEntries.slice(this.shown, due));
    } else if (due !== this.shown) { // back in time, or far ahead: draw the tail afresh
      this.chat.set(this.chatEntries.slice(Math.max(0, due - this.chat.max), due));
    }
    this.shown = due;

    const forward = pos - this.lastPos;
    if (!this.video.paused && !this.video.seeking && forward > 0 && forward < FLOAT_WINDOW_MS) {
      const from = countDue(this.reactionOffsets, this.lastPos);
      for (const entry of this.reactionEntries.slice(from, countDue(this.reactionOffsets, pos))) {
        floatReactions(this.floats, entry.reactions, this.ctx.reducedMotion());
      }
    }
    this.lastPos = pos;
    this._syncPins(pos);
    this._syncChapter(pos);
  }

  _syncPins(pos) {
    const state = emptyState();
    for (const entry of this.productEntries) {
      if (this._offset(entry) > pos) break;
      applyEntry(state, entry);
    }
    const key = JSON.stringify([state.pinned.map((c) => c.sku), state.sold_out]);
    if (key === this.pinsKey) return;
    this.pinsKey = key;
    setChildren(this.cards, state.pinned.map((card) => productCard(card, {
      locale: this.ctx.locale, soldOut: state.sold_out.includes(card.sku), onCart: this.ctx.addToCart })));
  }

  _syncChapter(pos) {
    let current = null;
    for (const item of this.chapters.children) {
      if (Number(item.dataset.offset) <= pos) current = item;
      item.firstElementChild.removeAttribute("aria-current");
    }
    if (current) current.firstElementChild.setAttribute("aria-current", "true");
  }
}
