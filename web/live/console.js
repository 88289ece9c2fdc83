/**
 * console.js: the seller's live-selling console (web/live.html).
 *
 * The page moves through four phases (body[data-phase]): login (no token), setup (a scheduled
 * show: details, source, preview), live (one VitrineRoom session as the show's host: media,
 * pins, deals, chat, moderation) and ended (the analytics). REST calls are console-api.js, the
 * room session console-session.js; the live state is console-model.js, drawn by console-live.js
 * and console-chat.js; the seller's own media is studio-media.js.
 *
 * The console token comes in the URL fragment (never sent to a server), is dropped from the
 * address bar at once, and lives in sessionStorage so a reload of this tab keeps working.
 */

import { ConsoleApi } from "./console-api.js";
import { drawAnalytics, saveBlob } from "./console-analytics.js";
import { ChatPanel, floatReactions } from "./console-chat.js";
import { DealPanel, ProductsPanel } from "./console-live.js";
import { ShowModel } from "./console-model.js";
import { LiveSession } from "./console-session.js";
import { DetailsForm, ObsPanel, ObsWatcher } from "./console-setup.js";
import { confirmAction, count, duration, StatusLine } from "./console-ui.js";
import { i18n, studioText, t } from "./console-strings.js";
import { Studio } from "./studio-media.js";

const TOKEN_KEY = "vitrine.live.token";
const SOURCE_KEY = "vitrine.live.source"; // what this tab went live with, to offer it again after a reload

const $ = (selector) => document.querySelector(selector);
const ui = {
  title: $("#show-title"), badge: $("#show-state"), stats: $("#stats"), viewers: $("#stat-viewers"),
  likes: $("#stat-likes"), elapsed: $("#stat-elapsed"), connection: $("#connection"), rejoin: $("#rejoin"),
  endShow: $("#end-show"), status: $("#status"), confirm: $("#confirm"),
  loginView: $("#login-view"), loginForm: $("#login-form"), token: $("#token"), loginError: $("#login-error"),
  workspace: $("#workspace"), preview: $("#preview"), previewEmpty: $("#preview-empty"), floats: $("#floats"),
  onAir: $("#on-air"), source: $("#source"), resume: $("#resume"), obs: $("#obs"), mic: $("#mic"),
  goLive: $("#go-live"), studioNote: $("#studio-note"),
  endedView: $("#ended-view"), downloadCsv: $("#download-csv"), slow: $("#slow-mode"),
};

const state = {
  api: null,
  view: null, // the ConsoleView
  source: null, // "camera" | "screen" | "obs": what the seller picked and this page runs
  resumeFrom: null, // after a reload while live: the source this tab was sending
  busy: false, // going live or switching source: the picker waits
  connection: null, // { connection, attempt }: the connection line, drawn again on a language change
};
const model = new ShowModel();
const session = new LiveSession(model);
const status = new StatusLine(ui.status);
const studio = new Studio(ui.preview);
const confirm = (options) => confirmAction(ui.confirm, options);

const detailsForm = new DetailsForm({
  form: $("#details-form"), title: $("#title"), schedule: $("#schedule"), list: $("#show-products"),
  pick: $("#catalog-pick"), add: $("#add-product"), save: $("#save-details"), state: $("#details-state"),
  error: $("#details-error"), count: $("#product-count"),
}, async (changes) => setView(await state.api.patch(changes), { force: true }));

const obs = new ObsPanel({
  url: $("#whip-url"), key: $("#stream-key"), show: $("#show-key"), copyUrl: $("#copy-url"), copyKey: $("#copy-key"),
  rotate: $("#rotate-key"), state: $("#obs-state"),
}, async () => {
  const sure = await confirm({ title: t("rotate_title"), action: t("rotate_key"), text: t("rotate_text") });
  if (!sure) return;
  try {
    setView(await state.api.rotateStreamKey());
    status.show(t("rotated"), "ok");
  } catch (err) {
    status.error(err, t("rotate_failed"));
  }
});

const obsWatch = new ObsWatcher(() => state.api.view(), async (view) => {
  if (view.show.state === "ended") {
    showEnded(view);
    return;
  }
  setView(view);
  setPhase("live");
  try {
    await joinLive(null); // run the show, and see the stream as viewers do
    status.show(t("obs_live"), "ok");
  } catch (err) {
    status.error(err, t("join_failed"));
  }
}, (err) => status.error(err));

/** Send on the show's room, or say it did not go. */
function inRoom(send) {
  if (session.send(send)) return true;
  status.show(t("not_connected"), "warn");
  return false;
}

const products = new ProductsPanel({ list: $("#live-products"), count: $("#pinned-count") },
  (action, sku) => inRoom((room) => room.product(action, sku)));

const deal = new DealPanel({
  running: $("#deal-running"), product: $("#deal-running .deal-product"), now: $("#deal-running .now"),
  was: $("#deal-running .was"), countdown: $("#deal-countdown"), stock: $("#deal-running .deal-stock"),
  end: $("#deal-end"), form: $("#deal-form"), sku: $("#deal-sku"), price: $("#deal-price"),
  stockInput: $("#deal-stock"), duration: $("#deal-duration"),
}, {
  start: (details) => inRoom((room) => room.deal("start", details)),
  end: () => inRoom((room) => room.deal("end")),
});

const chat = new ChatPanel({
  log: $("#chat-log"), form: $("#chat-form"), input: $("#chat-input"), pinned: $("#pinned-message"),
  reactions: $("#reactions"), slow: $("#slow-mode"),
}, {
  send: (text) => inRoom((room) => room.sendChat(text)),
  moderate: (action, details = {}) => inRoom((room) => room.moderate(action, details)),
  confirm,
  fetchLine: (seq) => session.fetchLine(seq),
});

// -- phases and drawing ------------------------------------------------------------------------

const phase = () => document.body.dataset.phase;

function setPhase(next) {
  // On air, the show's controls matter more than its details: fold those away (the seller may reopen them).
  if (next === "live" && phase() !== "live") $("#details-panel").open = false;
  document.body.dataset.phase = next;
  ui.loginView.hidden = next !== "login";
  ui.workspace.hidden = next !== "setup" && next !== "live";
  ui.endedView.hidden = next !== "ended";
  ui.stats.hidden = next !== "live";
  ui.endShow.hidden = next !== "live";
  ui.onAir.hidden = next !== "live";
  drawStudio();
}

function setView(view, { force = false } = {}) {
  state.view = view;
  const show = view.show;
  ui.title.textContent = show.title;
  ui.badge.textContent = stateLabel(show.state);
  ui.badge.dataset.state = show.state;
  document.title = `${show.state === "live" ? "● " : ""}${t("page_title", { title: show.title, brand: t("brand") })}`;
  detailsForm.fill(view, { force });
  obs.fill(view);
  drawLive();
}

/** A show's state as the badge shows it ("scheduled", "未开播"); an unknown one as it comes. */
function stateLabel(showState) {
  return ["scheduled", "live", "ended"].includes(showState) ? t(`state_${showState}`) : showState;
}

function drawStudio() {
  const live = phase() === "live";
  for (const input of ui.source.querySelectorAll("input")) {
    if (!state.busy) input.checked = input.value === state.source; // while busy: the seller's pick, pending
    input.disabled = state.busy;
  }
  ui.obs.hidden = state.source !== "obs";
  ui.goLive.hidden = live || state.source === "obs";
  ui.goLive.disabled = state.busy || !studio.video;
  ui.mic.hidden = !studio.mic;
  const muted = Boolean(studio.mic && !studio.mic.enabled);
  ui.mic.setAttribute("aria-pressed", String(muted));
  ui.mic.textContent = t(muted ? "unmute_mic" : "mute_mic");
  ui.resume.hidden = !(live && state.resumeFrom && !session.publishing);
  ui.previewEmpty.hidden = Boolean(ui.preview.srcObject);
  ui.studioNote.textContent = studioText(studio.warning);
  if (state.source === "obs") {
    obs.waiting(t(!live ? "obs_waiting" : ui.preview.srcObject ? "obs_on_air" : "obs_start"));
  }
}

function drawLive() {
  if (!state.view) return;
  const cards = state.view.products;
  products.draw(cards, model, session.joined);
  deal.draw(cards, model, session.joined);
  chat.drawSlow(model);
  chat.drawReactions(model);
  drawStats();
}

function drawStats() {
  ui.viewers.textContent = count(model.viewers);
  ui.likes.textContent = count(model.likes);
  const started = state.view && state.view.show.started_at_ms;
  ui.elapsed.textContent = started ? duration(model.serverNow() - started) : "0:00";
}

/** The connection line: `state` is "connecting", "ok", "down", "reconnecting" (with `attempt`), or "" (none). */
function setConnection(connection, attempt = 0) {
  const [key, kind] = connection === "reconnecting" ? ["reconnecting", "wait"] : CONNECTION[connection] || ["", ""];
  state.connection = { connection, attempt };
  ui.connection.textContent = key ? t(key, { n: attempt }) : "";
  ui.connection.dataset.kind = kind;
  ui.rejoin.hidden = kind !== "down" || phase() !== "live";
}

// -- sign in -----------------------------------------------------------------------------------------

function showLogin(err = null) {
  setPhase("login");
  ui.loginError.hidden = !err;
  if (err) {
    ui.loginError.textContent = `${err.message} (${err.code || "error"})`;
    ui.loginError.dataset.code = err.code || "error";
  }
  ui.token.focus();
}

async function open(token) {
  state.api = new ConsoleApi(token.trim());
  let view;
  try {
    view = await state.api.view();
  } catch (err) {
    if (err.status === 401 || err.status === 404) sessionStorage.removeItem(TOKEN_KEY);
    showLogin(err);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  setView(view, { force: true });
  const stored = sessionStorage.getItem(SOURCE_KEY);
  if (view.show.state === "ended") {
    showEnded(view);
  } else if (view.show.state === "live") {
    // A reload while live: rejoin to run the show; the camera or screen must be shared again.
    state.source = stored === "obs" ? "obs" : null;
    state.resumeFrom = stored === "camera" || stored === "screen" ? stored : null;
    setPhase("live");
    joinLive(null).catch((err) => status.error(err, t("rejoin_failed")));
  } else {
    state.source = stored === "obs" ? "obs" : null; // a camera is only opened when the seller asks
    setPhase("setup");
    if (state.source === "obs") obsWatch.start();
  }
}

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (ui.token.value.trim()) open(ui.token.value);
});

// -- sources and going live ------------------------------------------------------------------------

async function pickSource(source) {
  if (state.busy || source === state.source) return;
  const live = phase() === "live";
  state.busy = true;
  drawStudio();
  try {
    if (source === "obs") {
      studio.stop();
      if (live && session.publishing) await joinLive(null); // stop sending: OBS takes over
      state.source = "obs";
      if (!live) obsWatch.start();
    } else {
      obsWatch.stop();
      // Live and sending: the same sender gets the other video (no renegotiation). Otherwise
      // (setup, after a reload, from OBS) capture first, then join with the stream.
      const switched = live && session.publishing && await studio.switchVideo(session.room, source);
      if (!switched) {
        await studio.capture(source);
        if (live) await joinLive(studio.stream);
      }
      state.source = source;
      state.resumeFrom = null;
    }
    sessionStorage.setItem(SOURCE_KEY, state.source);
  } catch (err) {
    status.error(err && err.message ? Object.assign(new Error(studioText(err.message)), { code: err.code }) : err);
  } finally {
    state.busy = false;
    drawStudio();
  }
}

ui.source.addEventListener("change", (event) => pickSource(event.target.value));

studio.addEventListener("preview", () => drawStudio());
studio.addEventListener("ended", ({ detail }) => {
  // The browser's "Stop sharing" (or an unplugged camera): live, go back to the camera; else start over.
  if (phase() === "live" && session.publishing && detail.source === "screen") {
    status.show(t("screen_stopped"), "warn");
    pickSource("camera");
  } else if (phase() === "live" && session.publishing) {
    status.show(t("camera_stopped"), "warn", { sticky: true });
    state.source = null; // so that picking the camera again captures it again
    drawStudio();
  } else {
    studio.stop();
    state.source = null;
    drawStudio();
  }
});

ui.mic.addEventListener("click", () => {
  studio.toggleMic();
  drawStudio();
});

ui.goLive.addEventListener("click", async () => {
  if (!studio.stream || state.busy) return;
  state.busy = true;
  drawStudio();
  status.show(t("going_live"), "info", { sticky: true });
  try {
    const join = await state.api.start();
    state.view.show = join.show;
    setView(state.view);
    setPhase("live");
    await session.connect(join.token, studio.stream);
    status.show(t("you_are_live"), "ok");
  } catch (err) {
    status.error(err, t("go_live_failed"));
  } finally {
    state.busy = false;
    drawStudio();
  }
});

// -- the show's room -----------------------------------------------------------------------------------

/** A fresh host token for the live show, then join with `stream` (null: run the show without sending media). */
async function joinLive(stream) {
  const join = await state.api.join();
  state.view.show = join.show;
  await session.connect(join.token, stream);
  drawStudio();
}

const CONNECTION = { connecting: ["connecting", "wait"], ok: ["connected", "ok"], down: ["disconnected", "down"] };

session.addEventListener("connection", ({ detail }) => setConnection(detail.state, detail.attempt));
session.addEventListener("changed", ({ detail: { changed, entry } }) => {
  const all = changed.has("all");
  if (entry && entry.kind === "reactions") floatReactions(ui.floats, entry.reactions);
  if (all || changed.has("chat") || changed.has("pinned") || changed.has("people")) {
    chat.sync(model, { full: all || changed.has("people") });
  }
  if (changed.has("reactions")) chat.drawReactions(model, entry && entry.reactions);
  if (changed.has("slow")) chat.drawSlow(model);
  if (changed.has("stats")) drawStats();
  if (all || changed.has("products") || changed.has("deal")) drawLive();
});
session.addEventListener("error", ({ detail: { code, message, ref } }) => {
  status.show(`${message} (${code}${ref ? `, ${ref}` : ""})`, "error");
});
session.addEventListener("remote", ({ detail }) => {
  if (!session.publishing) studio.showRemote(detail.stream); // OBS, as every viewer receives it
});
session.addEventListener("leave", ({ detail: { reason, code } }) => {
  if (code === "show_ended") {
    showEndedElsewhere();
  } else if (code === "replaced") {
    status.show(t("replaced"), "warn", { sticky: true });
  } else {
    status.show(t("left_show", { reason }), "warn");
  }
});

ui.rejoin.addEventListener("click", () => {
  const stream = studio.video && studio.video.readyState === "live" ? studio.stream : null;
  joinLive(stream).catch((err) => status.error(err, t("reconnect_failed")));
});

// -- the end --------------------------------------------------------------------------------------------

ui.endShow.addEventListener("click", async () => {
  const sure = await confirm({ title: t("end_title"), action: t("end_show"), text: t("end_text") });
  if (!sure) return;
  ui.endShow.disabled = true;
  try {
    showEnded(await state.api.end());
  } catch (err) {
    status.error(err, t("end_failed"));
  } finally {
    ui.endShow.disabled = false;
  }
});

async function showEndedElsewhere() {
  try {
    showEnded(await state.api.view());
  } catch (err) {
    status.error(err);
  }
}

function showEnded(view) {
  obsWatch.stop();
  session.close();
  studio.stop();
  state.source = state.resumeFrom = null;
  sessionStorage.removeItem(SOURCE_KEY);
  setConnection("");
  setView(view, { force: true });
  drawAnalytics({ summary: $("#ended-summary"), numbers: $("#analytics"), clicks: $("#clicks-by-sku"),
    clicksEmpty: $("#clicks-empty"), viewer: $("#viewer-link") }, view);
  setPhase("ended");
  status.show(t("show_ended"), "ok");
}

ui.downloadCsv.addEventListener("click", async () => {
  ui.downloadCsv.disabled = true;
  try {
    saveBlob(await state.api.chatCsv(), `${state.view.show.id}-chat.csv`);
  } catch (err) {
    status.error(err, t("download_failed"));
  } finally {
    ui.downloadCsv.disabled = false;
  }
});

// -- clocks, leaving, start-up ----------------------------------------------------------------------------

setInterval(() => {
  if (phase() !== "live") return;
  drawStats();
  if (deal.tick(model)) drawLive();
}, 1000);

window.addEventListener("beforeunload", (event) => {
  if (phase() === "live" && session.publishing) event.preventDefault(); // closing would cut the show's video
});
window.addEventListener("pagehide", () => session.close()); // leave now: viewers see the host's tracks go at once

/** The slow-mode choices read "5 s" / "5 秒" in the console's language. */
function labelSlowMode() {
  for (const option of ui.slow.options) if (option.value !== "0") option.textContent = t("seconds", { n: option.value });
}

/** The language switch: the static texts follow at once (i18n.apply); what JS drew is drawn again. */
function redraw() {
  labelSlowMode();
  if (state.view) setView(state.view);
  if (state.connection) setConnection(state.connection.connection, state.connection.attempt);
  if (phase() === "ended" && state.view) {
    drawAnalytics({ summary: $("#ended-summary"), numbers: $("#analytics"), clicks: $("#clicks-by-sku"),
      clicksEmpty: $("#clicks-empty"), viewer: $("#viewer-link") }, state.view);
  }
  if (session.joined) chat.sync(model, { full: true });
  drawStudio();
}

i18n.apply();
labelSlowMode();
for (const select of document.querySelectorAll("select.lang-switch")) i18n.bindSwitch(select);
i18n.onChange(redraw);

const fragment = new URLSearchParams(window.location.hash.slice(1));
if (fragment.get("token")) {
  history.replaceState(null, "", window.location.pathname + window.location.search);
  open(fragment.get("token"));
} else if (sessionStorage.getItem(TOKEN_KEY)) {
  open(sessionStorage.getItem(TOKEN_KEY));
} else {
  showLogin();
}
