/**
 * player-live.js: watching a live show. A viewer token, then VitrineRoom with publish: false (no
 * camera prompt, ever), the host's stream in a muted autoplaying video, and the show around it:
 * counts, pinned products, the deal countdown, the pinned message, reactions and the chat.
 *
 * Watching never waits for a name: the viewer joins as "Guest 123" and is asked for a name only
 * when they first send a message. A new name rejoins with the same token (the server replaces
 * the old session with the new one, so the video barely blinks).
 */

import { VitrineRoom } from "../vitrine-client.js";
import { h, setChildren } from "../vitrine-dom.js";
import { ChatList, Notice, dealBox, floatReactions, productCard, reactionBar } from "./player-view.js";
import { applyEntry, stateOf, ServerClock } from "./player-state.js";
import { formatCount, t } from "./player-strings.js";

const NAME_KEY = "vitrine-live-name";
const MAX_NAME_CHARS = 40; // the server's limit for a viewer's name
const KEEP_LINES = 500; // chat lines remembered to show a pinned one

function storedName() {
  try {
    return (localStorage.getItem(NAME_KEY) || "").trim().slice(0, MAX_NAME_CHARS);
  } catch {
    return ""; // storage blocked (private mode, sandboxed frame): ask again next time
  }
}

function storeName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    /* remembered for this page only */
  }
}

export class LiveView {
  /**
   * @param {object} ctx  the player: { base, showId, locale, api(path), addToCart (null: no cart button),
   *                      reducedMotion(), ended() (the show ended: go to the replay), reload() }
   * @param {object} show the ShowView (state "live")
   */
  constructor(ctx, show) {
    this.ctx = ctx;
    this.show = show;
    this.state = stateOf(show.live);
    this.clock = new ServerClock();
    this.lines = new Map(); // seq -> chat entry, for the pinned message
    this.room = null;
    this.token = null;
    this.me = null;
    this.final = false; // banned or ended: no reconnect, no retry
    this.named = Boolean(storedName());
    this.name = storedName() || t("guest", { n: 100 + Math.floor(Math.random() * 900) });
    this.pendingText = null;
    this._dealTimer = null;
    this._build();
  }

  _build() {
    this.video = h("video", { class: "vl-video", playsinline: true, autoplay: true, muted: true,
      "aria-label": this.show.title });
    this.unmute = h("button", { class: "vl-unmute", type: "button", text: t("tap_unmute"), hidden: true,
      onclick: () => this._unmute() });
    this.video.addEventListener("volumechange", () => this._checkVideo());
    this.viewers = h("span", { class: "vl-viewers", text: t("viewers", { n: formatCount(this.ctx.locale, 0) }) });
    this.likes = h("span", { class: "vl-likes", text: t("likes", { n: formatCount(this.ctx.locale, 0) }) });
    this.waiting = h("p", { class: "vl-waiting", text: t("connecting") });
    this.banner = new Notice("vl-banner");
    this.floats = h("div", { class: "vl-floats", "aria-hidden": "true" });
    this.dealSlot = h("div", { class: "vl-deal-slot" });
    this.cards = h("section", { class: "vl-cards", "aria-label": t("pinned_products") });
    this.reactions = reactionBar((key) => this._react(key));
    this.stage = h("div", { class: "vl-stage is-live" }, this.video, this.waiting,
      h("div", { class: "vl-top" },
        h("span", { class: "vl-badge is-live", text: t("live_badge") }), this.viewers, this.likes, this.unmute),
      this.banner.el, this.floats, this.reactions,
      h("div", { class: "vl-bottom" }, this.dealSlot, this.cards));

    this.pinnedMessage = h("p", { class: "vl-pinned-message", hidden: true, "aria-label": t("pinned_message") });
    this.chat = new ChatList(t("chat_heading"));
    this.notice = new Notice();
    this.slow = h("p", { class: "vl-slow", hidden: true });
    this.nameInput = h("input", { class: "vl-name-input", type: "text", maxlength: String(MAX_NAME_CHARS),
      autocomplete: "nickname", placeholder: this.name, "aria-label": t("name_label") });
    this.nameForm = h("form", { class: "vl-name-form", hidden: true, onsubmit: (e) => this._saveName(e) },
      h("label", { class: "vl-name-label", text: t("name_hint") }), this.nameInput,
      h("button", { class: "vl-primary", type: "submit", text: t("name_save") }));
    this.chatAs = h("p", { class: "vl-chat-as", hidden: true });
    this.input = h("input", { class: "vl-chat-input", type: "text", maxlength: "500", autocomplete: "off",
      enterkeyhint: "send", placeholder: t("chat_placeholder"), "aria-label": t("chat_label"), disabled: true });
    this.send = h("button", { class: "vl-send", type: "submit", text: t("send"), disabled: true });
    this.chatForm = h("form", { class: "vl-chat-form", onsubmit: (e) => this._submitChat(e) }, this.input, this.send);
    this.side = h("section", { class: "vl-side", "aria-label": t("chat_heading") },
      h("h1", { class: "vl-title", text: this.show.title }),
      this.pinnedMessage, h("h2", { class: "vl-heading", text: t("chat_heading") }), this.chat.el,
      this.notice.el, this.slow, this.nameForm, this.chatAs, this.chatForm);
    this.el = h("div", { class: "vl-layout" }, this.stage, this.side);
    this._renderProducts();
    this._renderSlow();
    this._renderChatAs();
  }

  async start() {
    let join;
    try {
      join = await this.ctx.api(`/viewer?name=${encodeURIComponent(this.name)}`);
    } catch {
      this.ctx.reload(); // not live any more, or the network: the show itself says what to draw
      return;
    }
    this.token = join.token;
    await this._join(this.name);
  }

  destroy() {
    this.final = true;
    clearInterval(this._dealTimer);
    if (this.room) this.room.close();
    this.room = null;
  }

  // -- the session ---------------------------------------------------------------------

  /** Join with `name`; while a session is up the new one replaces it (the server kicks the old). */
  async _join(name) {
    const previous = this.room;
    const room = new VitrineRoom();
    const on = (type, handler) => room.addEventListener(type, (e) => { if (room === this.room) handler(e.detail); });
    let first = true;
    on("joined", (joined) => {
      this._onJoined(joined, first);
      first = false;
    });
    on("live", ({ viewers, likes }) => this._counts(viewers, likes));
    on("log", (entry) => this._onEntry(entry));
    on("history", ({ entries }) => {
      this._remember(entries);
      this._renderPinnedMessage();
    });
    on("track", () => this._attach());
    on("trackended", () => this._attach());
    on("error", (error) => this._onError(error));
    on("leave", ({ code }) => this._onLeave(code));
    on("reconnecting", () => this.banner.show(t("reconnecting"), { sticky: true }));
    on("reconnected", () => this.banner.clear());
    on("close", () => this._onClose());
    this.room = room;
    try {
      await room.connect({ url: this.ctx.base, token: this.token, name, publish: false, reconnect: true });
    } catch (err) {
      if (room !== this.room) return false;
      this.room = previous; // a failed rename keeps the session we had
      if (err.code === "banned") this._banned();
      else if (!previous && !this.final) this._lost();
      return false;
    }
    if (previous) previous.close();
    return true;
  }

  _onJoined(joined, fresh) {
    this.me = joined.participant;
    this.state = stateOf(joined.live);
    this._counts(joined.live ? joined.live.viewers : 0, joined.live ? joined.live.likes : 0);
    this._renderProducts();
    this._renderSlow();
    this._checkVideo();
    this.banner.clear();
    this._setChatEnabled(true);
    // A new session asks for the chat so far (the pinned line is likely in it); a reconnect of the
    // same one catches up by itself.
    if (fresh) this.room.requestHistory({ limit: 50 });
    else this._renderPinnedMessage();
  }

  /** Play the newest live video and audio the room receives (the host's camera, or OBS after it). */
  _attach() {
    const live = [...this.room.remoteTracks.values()].map((r) => r.track).filter((tr) => tr.readyState === "live");
    const tracks = ["video", "audio"].map((kind) => live.filter((tr) => tr.kind === kind).pop()).filter(Boolean);
    const current = this.video.srcObject ? this.video.srcObject.getTracks() : [];
    if (tracks.length !== current.length || tracks.some((tr) => !current.includes(tr))) {
      // A new stream each time, not tracks added to the playing one: that is what every browser redraws.
      this.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
      if (tracks.length) this.video.play().catch(() => {}); // muted autoplay: allowed everywhere it matters
    }
    this._checkVideo();
  }

  _checkVideo() {
    const stream = this.video.srcObject;
    const live = stream && stream.getVideoTracks().some((track) => track.readyState === "live");
    this.waiting.textContent = t("waiting_video");
    this.waiting.hidden = Boolean(live);
    this.unmute.hidden = !live || !this.video.muted; // nothing to hear yet, or heard already
  }

  _unmute() {
    this.video.muted = false;
    this.video.play().catch(() => { this.video.muted = true; });
  }

  _counts(viewers, likes) {
    this.viewers.textContent = t("viewers", { n: formatCount(this.ctx.locale, viewers) });
    this.likes.textContent = t("likes", { n: formatCount(this.ctx.locale, likes) });
  }

  _onEntry(entry) {
    this.clock.observe(entry.at_ms);
    if (entry.kind === "chat") {
      this._remember([entry]);
      return;
    }
    if (entry.kind === "reactions") {
      floatReactions(this.floats, entry.reactions, this.ctx.reducedMotion());
      return;
    }
    if (entry.kind === "show" && entry.show === "ended") {
      this._ended();
      return;
    }
    const { moderation } = entry;
    if (moderation && moderation.action === "delete") {
      this.chat.remove(moderation.seq);
      this.lines.delete(moderation.seq);
    }
    if (moderation && this.me && moderation.identity === this.me.identity) {
      if (moderation.action === "mute") this.notice.show(t("muted_self"), { sticky: true });
      if (moderation.action === "unmute") this.notice.clear();
    }
    const changed = applyEntry(this.state, entry);
    if (changed === "products") this._renderProducts();
    else if (changed === "slow") this._renderSlow();
    else if (changed === "message") this._renderPinnedMessage();
  }

  _remember(entries) {
    const lines = entries.filter((e) => e.kind === "chat");
    for (const line of lines) this.lines.set(line.seq, line);
    for (const seq of [...this.lines.keys()].slice(0, Math.max(0, this.lines.size - KEEP_LINES))) this.lines.delete(seq);
    this.chat.add(lines);
  }

  _onError({ code, ref }) {
    if (code === "banned") this._banned();
    else if (ref !== "chat") return; // e.g. reaction taps past the rate limit: just not counted
    else if (code === "muted") this.notice.show(t("muted_self"));
    else if (code === "rate_limited") {
      const seconds = this.state.slow_mode_s;
      this.notice.show(seconds ? t("slow_mode", { n: seconds }) : t("too_fast"));
    } else this.notice.show(t("chat_failed"));
  }

  _onLeave(code) {
    if (code === "banned") this._banned();
    else if (code === "show_ended") this._ended();
  }

  _onClose() {
    if (!this.final) this._lost();
  }

  _banned() {
    this.final = true;
    if (this.room) this.room.close();
    this._setChatEnabled(false);
    this.nameForm.hidden = true;
    this.chatAs.hidden = true;
    this.waiting.hidden = true;
    for (const button of this.reactions.querySelectorAll("button")) button.disabled = true;
    this.banner.show(t("banned"), { sticky: true });
    this.notice.show(t("banned"), { sticky: true });
    this.stage.classList.add("is-over");
  }

  _ended() {
    if (this.final) return;
    this.final = true;
    this.banner.show(t("ended"), { sticky: true });
    this.ctx.ended();
  }

  _lost() {
    this._setChatEnabled(false);
    this.banner.show(t("connection_lost"), { sticky: true });
    this.banner.el.append(" ", h("button", { class: "vl-retry", type: "button", text: t("retry"),
      onclick: () => this.ctx.reload() }));
  }

  // -- what the viewer does --------------------------------------------------------------

  _react(key) {
    if (this.room && !this.final) this.room.react(key);
  }

  _submitChat(event) {
    event.preventDefault();
    const text = this.input.value.trim();
    if (!text || !this.room) return;
    if (!this.named) { // first message: who is saying it?
      this.pendingText = text;
      this.nameForm.hidden = false;
      this.nameInput.focus();
      return;
    }
    this.room.sendChat(text);
    this.input.value = "";
  }

  async _saveName(event) {
    event.preventDefault();
    const name = this.nameInput.value.trim().slice(0, MAX_NAME_CHARS) || this.name;
    this.nameForm.hidden = true;
    storeName(name);
    this.named = true;
    const renamed = name !== this.name;
    this.name = name;
    this._renderChatAs();
    if (renamed) {
      this._setChatEnabled(false);
      const ok = await this._join(name);
      if (this.room) this._setChatEnabled(!this.final);
      if (!ok) return;
    }
    if (this.pendingText && this.room) {
      this.room.sendChat(this.pendingText);
      this.input.value = "";
    }
    this.pendingText = null;
  }

  _setChatEnabled(enabled) {
    this.input.disabled = !enabled;
    this.send.disabled = !enabled;
  }

  _renderChatAs() {
    this.chatAs.hidden = !this.named;
    setChildren(this.chatAs, t("chat_as", { name: this.name }), " ",
      h("button", { class: "vl-link", type: "button", text: t("change_name"), onclick: () => {
        this.nameInput.value = this.name;
        this.nameForm.hidden = false;
        this.nameInput.focus();
      } }));
  }

  // -- the show around the video -----------------------------------------------------------

  _renderProducts() {
    const { pinned, sold_out: soldOut, deal } = this.state;
    const cards = pinned.map((card) => productCard(card, {
      locale: this.ctx.locale, soldOut: soldOut.includes(card.sku),
      deal: deal && deal.card.sku === card.sku ? deal : null,
      onOpen: (c) => this.room && this.room.click(c.sku, "open"),
      onCart: this.ctx.addToCart && ((c, price) => {
        if (this.room) this.room.click(c.sku, "add_to_cart");
        this.ctx.addToCart(c, price);
      }),
    }));
    setChildren(this.cards, cards);
    this._renderDeal();
  }

  _renderDeal() {
    clearInterval(this._dealTimer);
    const { deal } = this.state;
    if (!deal) {
      setChildren(this.dealSlot);
      return;
    }
    const box = dealBox(deal, this.ctx.locale);
    setChildren(this.dealSlot, box.el);
    const tick = () => {
      if (box.tick(deal.ends_at_ms - this.clock.now())) return;
      this.state.deal = null; // over: gone from the page; the server drops it too
      this._renderProducts();
    };
    tick();
    if (this.state.deal) this._dealTimer = setInterval(tick, 1000);
  }

  _renderSlow() {
    const seconds = this.state.slow_mode_s;
    this.slow.hidden = !seconds;
    this.slow.textContent = seconds ? t("slow_mode", { n: seconds }) : "";
  }

  async _renderPinnedMessage() {
    const seq = this.state.pinned_message;
    if (seq === null || seq === undefined) {
      this.pinnedMessage.hidden = true;
      return;
    }
    let line = this.lines.get(seq);
    if (!line) { // older than the chat we hold: read that one line of the log
      try {
        const page = await this.ctx.api(`/log?after=${seq - 1}&limit=1`);
        line = page.entries.find((e) => e.seq === seq && e.kind === "chat");
      } catch {
        line = null;
      }
      if (this.state.pinned_message !== seq) return; // changed meanwhile
    }
    this.pinnedMessage.hidden = !line;
    if (line) {
      const who = line.participant || {};
      setChildren(this.pinnedMessage, h("span", { class: "vl-pin-icon", "aria-hidden": "true", text: "📌" }),
        h("strong", { text: who.name || t(who.role === "host" ? "host" : "anonymous") }), " ", line.text || "");
    }
  }
}
