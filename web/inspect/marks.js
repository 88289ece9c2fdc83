/**
 * marks.js: the inspector's marks (arrows, circles, text), drawn the same way on both pages.
 *
 * A mark is the protocol's `Mark` (vitrine/inspect/protocol.py): coordinates are fractions (0..1)
 * of the video frame's width and height, so a mark lands on the same spot of the buyer's
 * full-resolution preview and of the inspector's smaller received video. An arrow goes from
 * (x, y) to (x2, y2); a circle is centred on (x, y) and passes through (x2, y2); text sits at (x, y).
 * Text is drawn with fillText: it is never markup.
 */

export const MAX_MARKS = 50;
export const MAX_TEXT = 120;
export const COLORS = ["#ff3b30", "#ffcc00", "#34c759", "#0a84ff"];
export const DEFAULT_COLOR = COLORS[0];
const HEX_COLOR = /^#[0-9a-fA-F]{6}$/;

/** A number as a unit coordinate, clamped into 0..1 (NaN becomes 0). */
export function unit(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  return Math.min(1, Math.max(0, n));
}

/** The point of a pointer event on `element`, in unit coordinates of its box. */
export function pointOf(event, element) {
  const box = element.getBoundingClientRect();
  return {
    x: unit((event.clientX - box.left) / Math.max(1, box.width)),
    y: unit((event.clientY - box.top) / Math.max(1, box.height)),
  };
}

/** A mark as the protocol accepts it (shape checked, coordinates clamped, text trimmed), or null. */
export function cleanMark(mark) {
  if (!mark || !["arrow", "circle", "text"].includes(mark.shape)) return null;
  const out = { shape: mark.shape, x: unit(mark.x), y: unit(mark.y) };
  if (mark.shape === "text") {
    const text = String(mark.text || "").trim().slice(0, MAX_TEXT);
    if (!text) return null;
    out.text = text;
  } else {
    out.x2 = unit(mark.x2);
    out.y2 = unit(mark.y2);
  }
  out.color = HEX_COLOR.test(mark.color || "") ? mark.color : DEFAULT_COLOR;
  return out;
}

/** Line width and text size for a frame of this size: readable on a phone and on a desktop. */
function metrics(width, height) {
  const short = Math.max(1, Math.min(width, height));
  return { line: Math.max(3, Math.round(short / 140)), font: Math.max(16, Math.round(short / 16)) };
}

function stroke(ctx, color, width, path) {
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "rgba(0, 0, 0, 0.55)"; // a dark halo: the mark stays visible on any background
  ctx.lineWidth = width * 2;
  path();
  ctx.stroke();
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  path();
  ctx.stroke();
}

function drawArrow(ctx, m, w, h, line) {
  const [x1, y1, x2, y2] = [m.x * w, m.y * h, m.x2 * w, m.y2 * h];
  const angle = Math.atan2(y2 - y1, x2 - x1);
  const head = line * 5;
  stroke(ctx, m.color, line, () => {
    ctx.beginPath();
    ctx.moveTo(x1, y1);
    ctx.lineTo(x2, y2);
    ctx.moveTo(x2, y2);
    ctx.lineTo(x2 - head * Math.cos(angle - Math.PI / 7), y2 - head * Math.sin(angle - Math.PI / 7));
    ctx.moveTo(x2, y2);
    ctx.lineTo(x2 - head * Math.cos(angle + Math.PI / 7), y2 - head * Math.sin(angle + Math.PI / 7));
  });
}

function drawCircle(ctx, m, w, h, line) {
  const radius = Math.max(line, Math.hypot((m.x2 - m.x) * w, (m.y2 - m.y) * h));
  stroke(ctx, m.color, line, () => {
    ctx.beginPath();
    ctx.arc(m.x * w, m.y * h, radius, 0, Math.PI * 2);
  });
}

function drawText(ctx, m, w, h, font) {
  ctx.font = `700 ${font}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  ctx.textBaseline = "middle";
  const width = ctx.measureText(m.text).width;
  // Keep the text inside the frame: shift it left when it would run off the right edge.
  const x = Math.max(0, Math.min(m.x * w, w - width));
  const y = Math.max(font / 2, Math.min(m.y * h, h - font / 2));
  ctx.lineJoin = "round";
  ctx.lineWidth = Math.max(3, font / 6);
  ctx.strokeStyle = "rgba(0, 0, 0, 0.75)";
  ctx.strokeText(m.text, x, y);
  ctx.fillStyle = m.color;
  ctx.fillText(m.text, x, y);
}

/** Draw `marks` on a 2D context whose canvas is `width` x `height` (the frame's pixels). */
export function drawMarks(ctx, marks, width, height) {
  const { line, font } = metrics(width, height);
  ctx.save();
  for (const raw of marks) {
    const mark = cleanMark(raw);
    if (!mark) continue;
    if (mark.shape === "arrow") drawArrow(ctx, mark, width, height, line);
    else if (mark.shape === "circle") drawCircle(ctx, mark, width, height, line);
    else drawText(ctx, mark, width, height, font);
  }
  ctx.restore();
}

/**
 * Copy the current frame of a playing <video> onto `canvas` at the video's own resolution.
 * Returns false when the video has no frame yet.
 */
export function copyFrame(video, canvas) {
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height) return false;
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(video, 0, 0, width, height);
  return true;
}

/**
 * A frozen frame with marks on it, for the buyer's page: `frame` keeps the copy of the video, and
 * `canvas` shows the copy with the marks. `canvas.dataset.marks` is the number of marks shown.
 */
export class MarkedFrame {
  constructor(canvas) {
    this.canvas = canvas;
    this.frame = document.createElement("canvas");
    this.marks = [];
    this.frozen = false;
  }

  /** Freeze `video`'s current frame (once per freeze) and show `marks` on it. */
  show(video, marks) {
    if (!this.frozen) {
      if (!copyFrame(video, this.frame)) return false;
      this.frozen = true;
    }
    this.marks = marks.map(cleanMark).filter(Boolean);
    this._draw();
    this.canvas.hidden = false;
    return true;
  }

  /** Unfreeze: back to the live video. */
  clear() {
    this.frozen = false;
    this.marks = [];
    this.canvas.hidden = true;
    this.canvas.dataset.marks = "0";
  }

  _draw() {
    const { width, height } = this.frame;
    this.canvas.width = width;
    this.canvas.height = height;
    const ctx = this.canvas.getContext("2d");
    ctx.drawImage(this.frame, 0, 0);
    drawMarks(ctx, this.marks, width, height);
    this.canvas.dataset.marks = String(this.marks.length);
  }
}
