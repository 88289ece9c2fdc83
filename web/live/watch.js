/**
 * watch.js: watch.html?shop=<shop>&show=<id>, the show's own page on the Vitrine server (the link
 * the seller shares). The same player as the embed, without a shop cart to add to.
 */

import { setDocumentLanguage } from "../vitrine-i18n.js";
import { mount } from "./player.js";
import { playerLanguage, t } from "./player-strings.js";

const params = new URLSearchParams(window.location.search);
mount(document.getElementById("player"), {
  base: window.location.origin,
  shop: params.get("shop"),
  show: params.get("show"),
  lang: params.get("lang"),
  onShow: (show) => { document.title = `${show.title} · ${t(show.state === "ended" ? "replay_badge" : "live_badge")}`; },
});
setDocumentLanguage(playerLanguage());
