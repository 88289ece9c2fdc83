/**
 * console-chat.js: the show's chat column: the timeline (chat lines and what the hosts did),
 * the pinned message, reactions, slow mode, and per-line moderation.
 *
 * Viewers type names and lines: they reach the page only as text (h() from vitrine-dom.js).
 */

import { h } from "../vitrine-dom.js";
import { t } from "./console-strings.js";
import { clock, money } from "./console-ui.js";

const REACTION_EMOJI = { like: "👍", love: "❤️", fire: "🔥", clap: "👏", wow: "😮", laugh: "😂" };
const MUTE_S = 600;
const MAX_FLOATING = 12;

const nameOf = (participant) => (participant && participant.name) || (participant && participant.role === "host"
  ? t("host") : t("viewer"));

export class ChatPanel {
  /**
   * @param {object} ui  log, form, input, pinned, reactions, slow (elements of live.html)
   * @param {object} hooks
   * @param {(text: string) => boolean} hooks.send  say something as the host
   * @param {(action: string, details: object) => boolean} hooks.moderate
   * @param {(options: object) => Promise<boolean>} hooks.confirm
   * @param {(seq: number) => void} hooks.fetchLine  a pinned line older than the timeline
   */
  constructor(ui, hooks) {
    this.ui = ui;
    this.hooks = hooks;
    this.nodes = new Map(); // seq -> li
    this.names = new Map(); // identity -> the name they chat under
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = ui.input.value.trim();
      if (text && hooks.send(text)) ui.input.value = "";
    });
    ui.slow.addEventListener("change", () => hooks.moderate("slow_mode", { seconds: Number(ui.slow.value) }));
    ui.pinned.querySelector(".unpin").addEventListener("click", () => hooks.moderate("unpin_message"));
  }

  /** Draw the timeline as the model has it: new lines appended, deleted ones gone, or all again (`full`). */
  sync(model, { full = false } = {}) {
    const log = this.ui.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    const lines = model.lines();
    for (const { kind, participant } of lines) {
      if (kind === "chat" && participant) this.names.set(participant.identity, nameOf(participant));
    }
    const last = this.nodes.size ? Math.max(...this.nodes.keys()) : 0;
    if (full || lines.some((e) => e.seq < last && !this.nodes.has(e.seq))) { // older lines came in: redraw
      this.nodes.clear();
      log.replaceChildren(...lines.map((entry) => this._node(entry, model)));
    } else {
      const wanted = new Set(lines.map((e) => e.seq));
      for (const [seq, node] of this.nodes) {
        if (wanted.has(seq)) continue;
        node.remove();
        this.nodes.delete(seq);
      }
      for (const entry of lines) if (entry.seq > last) log.append(this._node(entry, model));
    }
    if (atBottom) log.scrollTop = log.scrollHeight;
    this.drawPinned(model);
  }

  _node(entry, model) {
    const node = entry.kind === "chat" ? this._chatLine(entry, model) : h("li", { class: "line system" },
      h("time", { text: clock(entry.at_ms) }), h("span", { class: "text", text: this._describe(entry) }));
    node.dataset.seq = String(entry.seq);
    this.nodes.set(entry.seq, node);
    return node;
  }

  _chatLine(entry, model) {
    const who = entry.participant || {};
    const name = nameOf(who);
    const host = who.role === "host";
    const tags = [host && who.name ? h("span", { class: "tag host", text: t("tag_host") }) : null, // unnamed: "Host"
      model.isMuted(who.identity) ? h("span", { class: "tag muted", text: t("tag_muted") }) : null,
      model.banned.has(who.identity) ? h("span", { class: "tag banned", text: t("tag_banned") }) : null];
    const act = (label, text, handler) => h("button", { type: "button", class: "act", "aria-label": label,
      title: label, text, onclick: handler });
    const actions = [
      act(t("pin_message_from", { name }), t("pin"), () => this.hooks.moderate("pin_message", { seq: entry.seq })),
      act(t("delete_message_from", { name }), t("delete"), () => this.hooks.moderate("delete", { seq: entry.seq })),
    ];
    if (!host && who.identity) {
      const muted = model.isMuted(who.identity);
      actions.push(act(t(muted ? "unmute_name" : "mute_name", { name }), t(muted ? "unmute" : "mute"),
        () => this.hooks.moderate(muted ? "unmute" : "mute", muted ? { identity: who.identity }
          : { identity: who.identity, seconds: MUTE_S })));
      const banned = model.banned.has(who.identity);
      actions.push(act(t(banned ? "unban_name" : "ban_name", { name }), t(banned ? "unban" : "ban"),
        () => this._ban(who.identity, name, banned)));
    }
    return h("li", { class: host ? "line mine" : "line", dataset: { identity: who.identity || "" } },
      h("time", { text: clock(entry.at_ms) }),
      h("span", { class: "sender" }, h("span", { class: "name", text: name }), tags),
      h("span", { class: "text", text: entry.text }),
      h("span", { class: "actions" }, actions));
  }

  async _ban(identity, name, banned) {
    if (banned) {
      this.hooks.moderate("unban", { identity });
      return;
    }
    const sure = await this.hooks.confirm({ title: t("ban_title", { name }), action: t("ban"),
      text: t("ban_text", { name }) });
    if (sure) this.hooks.moderate("ban", { identity });
  }

  _describe(entry) {
    const who = entry.participant ? nameOf(entry.participant) : "Vitrine";
    if (entry.kind === "show") return t(entry.show === "live" ? "sys_live" : "sys_ended");
    if (entry.kind === "product") {
      const { action, card } = entry.product;
      const key = { pin: "sys_pin", unpin: "sys_unpin", sold_out: "sys_sold_out", in_stock: "sys_in_stock" }[action];
      return t(key || "sys_product", { who, action, title: card.title });
    }
    if (entry.kind === "deal") {
      const { action, deal } = entry.deal;
      if (action !== "start") return t("sys_deal_ended", { title: deal.card.title });
      return t(deal.stock ? "sys_deal_stock" : "sys_deal", { title: deal.card.title,
        price: money(deal.price, deal.card.currency), n: deal.stock });
    }
    const m = entry.moderation;
    const target = this.names.get(m.identity) || t("a_viewer");
    const key = {
      delete: "sys_delete", pin_message: "sys_pin_message", unpin_message: "sys_unpin_message",
      slow_mode: m.seconds ? "sys_slow" : "sys_slow_off", mute: "sys_mute", unmute: "sys_unmute",
      ban: "sys_ban", unban: "sys_unban",
    }[m.action];
    const n = m.action === "mute" ? Math.round((m.seconds || 0) / 60) : m.seconds;
    return t(key || "sys_moderation", { name: target, n, action: m.action });
  }

  drawPinned(model) {
    const bar = this.ui.pinned;
    const seq = model.pinnedMessage;
    bar.hidden = !seq;
    if (!seq) return;
    const entry = model.timeline.get(seq);
    if (!entry) this.hooks.fetchLine(seq);
    bar.querySelector(".who").textContent = entry ? nameOf(entry.participant) : "";
    bar.querySelector(".text").textContent = entry ? entry.text : "…";
    bar.dataset.seq = String(seq);
  }

  drawReactions(model, fresh = null) {
    const box = this.ui.reactions;
    const chips = Object.entries(model.reactions).filter(([, n]) => n > 0).map(([kind, n]) => h("span", {
      class: fresh && fresh[kind] ? "reaction bump" : "reaction", dataset: { reaction: kind },
      title: kind, "aria-label": t("reaction_count", { n, kind }) },
    h("span", { "aria-hidden": "true", text: REACTION_EMOJI[kind] || "★" }),
    h("span", { class: "n", text: String(n) })));
    box.replaceChildren(...chips);
    box.hidden = chips.length === 0;
  }

  drawSlow(model) {
    const select = this.ui.slow;
    const value = String(model.slowModeS);
    if (![...select.options].some((o) => o.value === value)) {
      select.append(h("option", { value, text: t("seconds", { n: value }) }));
    }
    select.value = value;
  }
}

/** A few emoji drift up over the preview for a burst of reactions (none when motion is reduced). */
export function floatReactions(layer, counts) {
  if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) return;
  for (const [kind, n] of Object.entries(counts || {})) {
    for (let i = 0; i < Math.min(n, 3) && layer.childElementCount < MAX_FLOATING; i += 1) {
      const bubble = h("span", { class: "float", "aria-hidden": "true", text: REACTION_EMOJI[kind] || "★" });
      bubble.style.setProperty("--x", `${10 + Math.random() * 80}%`);
      bubble.style.setProperty("--delay", `${i * 120}ms`);
      bubble.addEventListener("animationend", () => bubble.remove());
      layer.append(bubble);
    }
  }
}
