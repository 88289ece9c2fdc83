/**
 * panels.js: the console's side panels: the knocks at the door, guidance prompts, case notes and
 * the chat. Every text from the server or a person is set as text (vitrine-dom.js), never markup.
 */

import { h, setChildren } from "../vitrine-dom.js";
import { PROMPTS, translator } from "../inspect/strings.js";
import { t, timeOfDay } from "./strings.js";

const clock = (ms) => timeOfDay(ms);

/** Who knocks, and the buttons to let them in or turn them away. */
export class KnockPanel {
  constructor(list, { answer, buyerIdentity }) {
    this.list = list;
    this.answer = answer; // (knockId, admit) => boolean sent
    this.buyerIdentity = buyerIdentity; // () => the case's buyer identity
    this.busy = new Set();
  }

  render(knocks) {
    for (const id of this.busy) if (!knocks.has(id)) this.busy.delete(id);
    setChildren(this.list, [...knocks.values()].map((knock) => this._item(knock)));
    document.body.dataset.knocks = String(knocks.size);
  }

  /** An answer the server refused (the knock was already settled, or left): the buttons come back. */
  refused() {
    this.busy.clear();
    for (const button of this.list.querySelectorAll("button")) button.disabled = false;
  }

  _item(knock) {
    const p = knock.participant || {};
    const name = p.name || t("buyer");
    const ours = p.identity && p.identity === this.buyerIdentity();
    const busy = this.busy.has(knock.id);
    const act = (admit) => {
      if (!this.answer(knock.id, admit)) return;
      this.busy.add(knock.id);
      for (const button of item.querySelectorAll("button")) button.disabled = true;
    };
    const item = h("li", { class: "knock", dataset: { knock: knock.id } },
      h("div", { class: "knock-who" },
        h("strong", { text: name }),
        h("span", { class: ours ? "hint" : "hint warn", text: ours ? t("knock_ours", { when: clock(knock.at_ms) })
          : t("knock_other", { identity: p.identity || t("unknown") }) })),
      h("div", { class: "knock-actions" },
        h("button", { type: "button", class: "primary", disabled: busy, onclick: () => act(true),
          "aria-label": t("admit_name", { name }), text: t("admit") }),
        h("button", { type: "button", class: "danger", disabled: busy, onclick: () => act(false),
          "aria-label": t("deny_name", { name }), text: t("deny") })));
    return item;
  }
}

/** Preset prompts in the buyer's language, and free text. */
export class PromptsPanel {
  constructor({ presets, form, input, last }, { send, say }) {
    this.el = { presets, form, input, last };
    this.send = send;
    this.say = say;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text && this.prompt(text)) input.value = "";
    });
    this.setLanguage("en");
  }

  /** Presets are sent in the case's language (the buyer reads them); their buttons are in the console's. */
  setLanguage(lang) {
    this.lang = lang;
    const buyer = translator(lang);
    setChildren(this.el.presets, PROMPTS.map(([key, label]) => h("button", {
      type: "button", class: "preset", title: buyer(key), dataset: { prompt: key }, onclick: () => this.prompt(buyer(key)),
      text: t(`preset_${key}`) || label,
    })));
  }

  /** The console's language changed: the buttons follow, the buyer's prompts stay in theirs. */
  relabel() {
    this.setLanguage(this.lang);
    if (this.lastShown) this.shown(this.lastShown);
  }

  prompt(text) {
    if (!this.send({ action: "prompt", text: text.slice(0, 300) })) {
      this.say(t("prompt_not_sent"), "warn");
      return false;
    }
    return true;
  }

  /** A prompt as the room logged it. */
  shown(entry) {
    this.lastShown = entry;
    this.el.last.textContent = t("prompt_shown", { when: clock(entry.at_ms), text: entry.inspect.text });
  }
}

/** The case's notes: the list, and adding one (saved by the server). */
export class NotesPanel {
  constructor({ list, count, form, input, button }, { add, say }) {
    this.el = { list, count, form, input, button };
    this.add = add;
    this.say = say;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._submit();
    });
  }

  set(notes) {
    setChildren(this.el.list, (notes || []).map((note) => this._item(note)));
    this.el.count.textContent = String((notes || []).length);
  }

  append(note) {
    this.el.list.append(this._item(note));
    this.el.count.textContent = String(this.el.list.children.length);
  }

  _item(note) {
    return h("li", { class: "note" },
      h("p", { class: "note-meta", text: `${note.author || t("inspector")} · ${clock(note.at_ms)}` }),
      h("p", { class: "note-text", text: note.text }));
  }

  async _submit() {
    const text = this.el.input.value.trim();
    if (!text) return;
    this.el.button.disabled = true;
    try {
      this.append(await this.add(text));
      this.el.input.value = "";
    } catch (err) {
      this.say(t("note_failed", { message: err.message, code: err.code }), "error");
    } finally {
      this.el.button.disabled = false;
    }
  }
}

/** The room's chat, as text. */
export class ChatPanel {
  constructor({ log, form, input }, { send, isMine, say }) {
    this.log = log;
    this.isMine = isMine;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      if (send(text)) input.value = "";
      else say(t("chat_not_sent"), "warn");
    });
  }

  add(entry) {
    const mine = this.isMine(entry);
    const who = mine ? t("you") : (entry.participant && (entry.participant.name || entry.participant.role)) || t("buyer");
    this.log.append(h("li", { class: mine ? "line mine" : "line" },
      h("span", { class: "who", text: `${who} · ${clock(entry.at_ms)}` }),
      h("span", { class: "text", text: entry.text || "" })));
    this.log.scrollTop = this.log.scrollHeight;
  }
}
