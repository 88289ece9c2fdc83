/**
 * dom.js: build the widget's DOM without ever parsing markup.
 *
 * `h()`, `setChildren()` and `safeUrl()` are the shared ones of ../vitrine-dom.js (text is
 * always text: there is no innerHTML anywhere in the widget); this module adds the icons.
 */

export { h, safeUrl, setChildren } from "../vitrine-dom.js";

const SVG = "http://www.w3.org/2000/svg";

// Static icon shapes (24x24, stroked with currentColor). Never built from data.
const ICONS = {
  camera: [["rect", { x: 2, y: 6, width: 13, height: 12, rx: 2 }], ["path", { d: "M15 10.5l6-3.5v10l-6-3.5z" }]],
  mic: [["rect", { x: 9, y: 2.5, width: 6, height: 11.5, rx: 3 }], ["path", { d: "M5 11a7 7 0 0 0 14 0M12 18v3.5M8 21.5h8" }]],
  slash: [["path", { d: "M3 3l18 18" }]],
  flip: [["path", { d: "M4.5 12a7.5 7.5 0 0 1 13.3-4.8M19.5 12a7.5 7.5 0 0 1-13.3 4.8M18.5 3v4.5H14M5.5 21v-4.5H10" }]],
  end: [["path", { d: "M2.5 14.5c5.2-5 13.8-5 19 0l-2.6 2.8-3.7-1.6v-2.6c-2.1-.7-4.3-.7-6.4 0v2.6l-3.7 1.6z" }]],
  send: [["path", { d: "M3.5 20l17-8-17-8 2.5 8zM6 12h8" }]],
  close: [["path", { d: "M6 6l12 12M18 6L6 18" }]],
  minimize: [["path", { d: "M6 12h12" }]],
  video: [["rect", { x: 2.5, y: 6.5, width: 12.5, height: 11, rx: 2.5 }], ["path", { d: "M15 10.5l6-3.5v10l-6-3.5z" }]],
  sound: [["path", { d: "M4 9.5h3.5L12 5.5v13l-4.5-4H4zM15.5 9a4 4 0 0 1 0 6M18 6.5a7.5 7.5 0 0 1 0 11" }]],
};

/** An inline SVG icon, hidden from screen readers (the button carries the label). */
export function icon(name, ...overlays) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("vt-icon");
  for (const part of [name, ...overlays]) {
    for (const [tag, attrs] of ICONS[part] || []) {
      const shape = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, String(v));
      svg.append(shape);
    }
  }
  return svg;
}
