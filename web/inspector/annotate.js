/**
 * annotate.js: freeze the buyer's video and draw on it. The marks (arrows, circles, text: the
 * protocol's `Mark`, in 0..1 coordinates of the frame) are drawn by web/inspect/marks.js, the same
 * code the buyer's page uses, and each finished mark sends the whole set as `annotate`, so the buyer
 * sees the marks over a frozen copy of their own preview at once. "Clear" sends `clear`: both sides
 * go back to the live video.
 *
 * Freezing also asks the server for a snapshot of that moment; once it is stored, later `annotate`
 * messages name it as their `frame`, so the evidence bundle ties the marks to a stored frame.
 */

import { COLORS, DEFAULT_COLOR, MAX_MARKS, cleanMark, copyFrame, drawMarks, pointOf } from "../inspect/marks.js";
import { requestId } from "./controls.js";
import { t } from "./strings.js";

const COLOR_NAMES = { "#ff3b30": "red", "#ffcc00": "yellow", "#34c759": "green", "#0a84ff": "blue" };

const MIN_DRAG = 0.01; // shorter drags are clicks, not arrows

export class Annotator {
  /**
   * @param {object} els  stage, video, annotator, frozen, draw, freeze, tools, text, color, undo, clear, hint
   * @param {object} hooks
   * @param {(body: object) => boolean} hooks.send  send an inspect body; false when not connected
   * @param {(text: string, kind?: string) => void} hooks.say
   */
  constructor(els, { send, say }) {
    this.el = els;
    this.send = send;
    this.say = say;
    this.frozen = false;
    this.marks = [];
    this.draft = null;
    this.start = null;
    this.tool = "arrow";
    this.frame = null; // the stored snapshot's artifact id, once it arrived
    this.frameRequest = null;
    this.sentSome = false; // the buyer's side shows marks of ours (so Clear must tell it)
    for (const color of COLORS) {
      const option = document.createElement("option");
      option.value = color;
      els.color.append(option);
    }
    els.color.value = DEFAULT_COLOR;
    this.relabel();
    els.freeze.addEventListener("click", () => (this.frozen ? this.clear() : this.freeze()));
    els.clear.addEventListener("click", () => this.clear());
    els.undo.addEventListener("click", () => this.undo());
    for (const button of els.tools.querySelectorAll("button.tool")) {
      button.addEventListener("click", () => this._pick(button.dataset.tool));
    }
    const draw = els.draw;
    draw.addEventListener("pointerdown", (event) => this._down(event));
    draw.addEventListener("pointermove", (event) => this._move(event));
    draw.addEventListener("pointerup", (event) => this._up(event));
    draw.addEventListener("pointercancel", () => this._cancel());
    new ResizeObserver(() => this._fit()).observe(els.stage);
  }

  /** The colour names and the freeze button, in the console's language. */
  relabel() {
    for (const option of this.el.color.options) {
      option.textContent = COLOR_NAMES[option.value] ? t(COLOR_NAMES[option.value]) : option.value;
    }
    this.el.freeze.textContent = t(this.el.freeze.getAttribute("aria-pressed") === "true" ? "unfreeze" : "freeze");
  }

  /** Freeze the current frame of the buyer's video, to draw on it. */
  freeze() {
    if (!copyFrame(this.el.video, this.el.frozen)) {
      this.say(t("no_video_to_freeze"), "warn");
      return;
    }
    this.frozen = true;
    this.marks = [];
    this.frame = null;
    this.el.draw.width = this.el.frozen.width;
    this.el.draw.height = this.el.frozen.height;
    this._show(true);
    this._fit();
    this._redraw();
    this.frameRequest = requestId("fr");
    if (!this.send({ action: "snapshot", request: this.frameRequest })) this.frameRequest = null;
  }

  /** Unfreeze on both sides. */
  clear() {
    if (this.marks.length > 0 || this.sentSome) this.send({ action: "clear" });
    this.sentSome = false;
    this.frozen = false;
    this.marks = [];
    this.draft = null;
    this._show(false);
    this._redraw();
  }

  undo() {
    if (this.marks.length === 0) return;
    this.marks.pop();
    this._redraw();
    if (this.marks.length > 0) this._sendMarks();
    else this.send({ action: "clear" }); // the buyer's side goes back to live; this side stays frozen
  }

  /** A stored artifact: the snapshot of the frozen frame, when it answers our freeze. */
  onArtifact(artifact) {
    if (this.frozen && artifact.request && artifact.request === this.frameRequest) this.frame = artifact.id;
  }

  /** The console can no longer send (the session ended): drop the frozen frame. */
  reset() {
    this.sentSome = false;
    this.frozen = false;
    this.marks = [];
    this._show(false);
  }

  _show(on) {
    this.el.annotator.hidden = !on;
    this.el.tools.hidden = !on;
    this.el.hint.hidden = !on;
    this.el.freeze.setAttribute("aria-pressed", String(on));
    this.el.freeze.textContent = t(on ? "unfreeze" : "freeze");
    document.body.dataset.frozen = String(on);
  }

  _pick(tool) {
    this.tool = tool;
    for (const button of this.el.tools.querySelectorAll("button.tool")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    }
    if (tool === "text") this.el.text.focus();
  }

  /** Size both canvases to fit the stage, keeping the frame's aspect (pointer maths stay linear). */
  _fit() {
    const { width, height } = this.el.frozen;
    if (!this.frozen || !width || !height) return;
    const box = this.el.stage.getBoundingClientRect();
    const scale = Math.min(box.width / width, box.height / height) || 1;
    for (const canvas of [this.el.frozen, this.el.draw]) {
      canvas.style.width = `${Math.floor(width * scale)}px`;
      canvas.style.height = `${Math.floor(height * scale)}px`;
    }
  }

  _redraw() {
    const canvas = this.el.draw;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    drawMarks(ctx, this.draft ? [...this.marks, this.draft] : this.marks, canvas.width, canvas.height);
    canvas.dataset.marks = String(this.marks.length);
  }

  _down(event) {
    if (!this.frozen || event.button > 0) return;
    if (this.marks.length >= MAX_MARKS) {
      this.say(t("max_marks", { n: MAX_MARKS }), "warn");
      return;
    }
    event.preventDefault();
    this.el.draw.setPointerCapture(event.pointerId);
    this.start = pointOf(event, this.el.draw);
  }

  _move(event) {
    if (!this.start || this.tool === "text") return;
    const end = pointOf(event, this.el.draw);
    this.draft = cleanMark({ shape: this.tool, x: this.start.x, y: this.start.y, x2: end.x, y2: end.y, color: this.el.color.value });
    this._redraw();
  }

  _up(event) {
    if (!this.start) return;
    const start = this.start;
    const end = pointOf(event, this.el.draw);
    this.start = null;
    this.draft = null;
    let mark = null;
    if (this.tool === "text") {
      const text = this.el.text.value.trim();
      if (!text) {
        this.say(t("type_label_first"), "warn");
        this.el.text.focus();
        this._redraw();
        return;
      }
      mark = cleanMark({ shape: "text", x: end.x, y: end.y, text, color: this.el.color.value });
    } else if (Math.hypot(end.x - start.x, end.y - start.y) >= MIN_DRAG) {
      mark = cleanMark({ shape: this.tool, x: start.x, y: start.y, x2: end.x, y2: end.y, color: this.el.color.value });
    }
    if (mark) {
      this.marks.push(mark);
      this._sendMarks();
    }
    this._redraw();
  }

  _cancel() {
    this.start = null;
    this.draft = null;
    this._redraw();
  }

  _sendMarks() {
    const body = { action: "annotate", marks: this.marks.slice(0, MAX_MARKS) };
    if (this.frame) body.frame = this.frame;
    if (this.send(body)) this.sentSome = true;
    else this.say(t("marks_not_sent"), "warn");
  }
}
