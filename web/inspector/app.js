/**
 * app.js: the seller's inspection console (web/inspector.html#t=<console token>), desktop.
 *
 * Phases (body[data-phase]): loading, login (no or refused token), live (the case's room: admit
 * the buyer, watch, steer the camera, photos, marks, prompts, notes, chat) and ended (the outcome
 * and the evidence bundle). REST calls are api.js, the room room.js; the panels are controls.js,
 * annotate.js, gallery.js and panels.js.
 *
 * The console token comes in the URL fragment (never sent to a server), is dropped from the
 * address bar at once, and lives in sessionStorage so a reload of this tab keeps working. It is a
 * credential: nothing here logs it.
 */

import { confirmAction, StatusLine } from "../live/console-ui.js";
import { Annotator } from "./annotate.js";
import { InspectorApi } from "./api.js";
import { CameraControls } from "./controls.js";
import { Gallery } from "./gallery.js";
import { ChatPanel, KnockPanel, NotesPanel, PromptsPanel } from "./panels.js";
import { InspectorRoom } from "./room.js";
import { i18n, t } from "./strings.js";

const TOKEN_KEY = "vitrine.inspector.token";
const AUTH_ERRORS = new Set(["invalid_token", "token_expired", "permission_denied", "case_not_found"]);
const VERDICTS = { accepted: "accepted", rejected: "rejected", needs_more: "needs_more_long" };
const verdictName = (verdict) => (VERDICTS[verdict] ? t(VERDICTS[verdict]) : verdict);

const $ = (selector) => document.querySelector(selector);
const ui = {
  order: $("#case-order"), badge: $("#case-state"), buyer: $("#buyer-state"), connection: $("#connection"),
  loginView: $("#login-view"), loginForm: $("#login-form"), token: $("#token"), loginError: $("#login-error"),
  workspace: $("#workspace"), remote: $("#remote"), stageEmpty: $("#stage-empty"), paused: $("#paused-badge"),
  sound: $("#sound"), talk: $("#talk"), rejoin: $("#rejoin"), verdictForm: $("#verdict-form"), end: $("#end"), comment: $("#verdict-comment"),
  outcomePanel: $("#outcome-panel"), outcome: $("#outcome"), outcomeComment: $("#outcome-comment"),
  bundle: $("#bundle"), bundleState: $("#bundle-state"),
};

const state = {
  api: null, view: null, buyerIdentity: null, buyerPresent: false, paused: false, ended: false,
  caseState: null, consent: null, connection: null, outcome: null, // drawn again on a language change
};
const status = new StatusLine($("#status"));
const say = (text, kind = "info") => status.show(text, kind);
const room = new InspectorRoom();
const send = (body) => room.inspect(body);

const controls = new CameraControls($("#controls"), { send, say });
const annotator = new Annotator({
  stage: $("#stage"), video: ui.remote, annotator: $("#annotator"), frozen: $("#frozen"), draw: $("#draw"),
  freeze: $("#freeze"), tools: $("#draw-tools"), text: $("#mark-text"), color: $("#mark-color"),
  undo: $("#undo-mark"), clear: $("#clear-marks"), hint: $("#draw-hint"),
}, { send, say });
const gallery = new Gallery($("#gallery"), $("#gallery-count"), (id) => state.api.artifact(id));
const knocks = new KnockPanel($("#knocks"), {
  answer: (id, admit) => room.admit(id, admit) || (say(t("not_connected"), "warn"), false),
  buyerIdentity: () => state.buyerIdentity,
});
const prompts = new PromptsPanel({ presets: $("#presets"), form: $("#prompt-form"), input: $("#prompt-input"), last: $("#prompt-last") },
  { send, say });
const notes = new NotesPanel({ list: $("#notes"), count: $("#notes-count"), form: $("#note-form"), input: $("#note-input"), button: $("#note-add") },
  { add: (text) => state.api.addNote(text), say });
const chat = new ChatPanel({ log: $("#chat-log"), form: $("#chat-form"), input: $("#chat-input") }, {
  send: (text) => room.chat(text),
  isMine: (entry) => Boolean(room.room && room.room.participant && entry.participant && entry.participant.sid === room.room.participant.sid),
  say,
});

// -- phases and the case header ----------------------------------------------------------------

function setPhase(phase) {
  document.body.dataset.phase = phase;
  ui.loginView.hidden = phase !== "login";
  ui.workspace.hidden = phase === "login" || phase === "loading";
}

/** "French (fr)", "法语 (fr)": the buyer's language, named in the console's. */
function languageName(tag) {
  try {
    return `${new Intl.DisplayNames([i18n.locale, "en"], { type: "language" }).of(tag)} (${tag})`;
  } catch {
    return tag;
  }
}

function renderState(caseState) {
  state.caseState = caseState;
  const known = ["open", "in_progress", "closed"].includes(caseState);
  ui.badge.textContent = known ? t(`case_state_${caseState}`) : caseState.replace("_", " ");
  ui.badge.dataset.state = caseState;
}

function renderCase(view) {
  const c = view.case;
  state.view = view;
  state.buyerIdentity = view.buyer_identity || null;
  ui.order.textContent = t("order", { order: c.order_ref });
  renderState(c.state);
  $("#fact-order").textContent = c.order_ref;
  $("#fact-claim").textContent = c.claim;
  $("#fact-language").textContent = languageName(c.language);
  $("#fact-shop").textContent = view.shop_name || c.shop;
  renderConsent(c.consent);
  prompts.setLanguage(c.language);
  notes.set(c.notes);
  for (const artifact of c.artifacts || []) gallery.add(artifact);
  document.title = t("page_title", { order: c.order_ref });
}

function renderConsent(consent) {
  state.consent = consent;
  const el = $("#fact-consent");
  el.dataset.consented = String(Boolean(consent));
  el.textContent = consent
    ? t("consent_given", { when: new Date(consent.at_ms).toLocaleString(i18n.locale), version: consent.version,
      language: consent.language })
    : t("consent_missing");
}

function renderBuyer() {
  const knocking = [...room.knocks.values()].some((k) => k.participant && k.participant.identity === state.buyerIdentity);
  let text;
  let kind;
  if (state.ended) [text, kind] = ["", "ended"];
  else if (state.buyerPresent && state.paused) [text, kind] = [t("buyer_paused"), "paused"];
  else if (state.buyerPresent) [text, kind] = [t("buyer_present"), "present"];
  else if (knocking) [text, kind] = [t("buyer_knocking"), "knocking"];
  else [text, kind] = [t("buyer_absent"), "absent"];
  ui.buyer.textContent = text;
  ui.buyer.dataset.kind = kind;
  document.body.dataset.buyer = kind;
  ui.paused.hidden = !(state.buyerPresent && state.paused);
  controls.setAvailable(room.joined && state.buyerPresent && !state.ended);
}

const CONNECTION = { connecting: ["connecting", "wait"], ok: ["connected", "ok"], reconnecting: ["reconnecting", "wait"],
  down: ["disconnected", "down"] };

/** The connection line for the room's `connection` state ("" once the case has ended). */
function setConnection(connection, kind = null) {
  state.connection = connection;
  const [key, known] = CONNECTION[connection] || [null, "wait"];
  ui.connection.textContent = key ? t(key) : connection;
  ui.connection.dataset.kind = kind || known;
}

// -- the room ------------------------------------------------------------------------------------

room.addEventListener("connection", ({ detail }) => {
  if (!state.ended) setConnection(detail.state);
  ui.rejoin.hidden = state.ended || detail.state !== "down";
  renderBuyer();
});
room.addEventListener("knocks", ({ detail }) => {
  knocks.render(detail.knocks);
  renderBuyer();
});
room.addEventListener("people", () => {
  state.buyerPresent = room.participants.some((p) => p.identity === state.buyerIdentity);
  if (!state.buyerPresent) state.paused = false;
  renderBuyer();
});
room.addEventListener("media", ({ detail }) => {
  ui.remote.srcObject = detail.stream;
  ui.stageEmpty.hidden = Boolean(detail.stream);
  if (detail.stream) ui.remote.play().catch(() => {});
});
room.addEventListener("entry", ({ detail }) => onEntry(detail.entry));
room.addEventListener("refused", ({ detail }) => {
  if (detail.code === "knock_not_found") {
    knocks.refused();
    say(t("knock_gone"), "warn");
    return;
  }
  if (detail.ref === "inspect") controls.onRefused(detail);
  status.error(detail);
});
room.addEventListener("leave", ({ detail }) => {
  if (detail.code === "replaced") say(t("replaced"), "warn");
  else if (!state.ended) say(detail.reason || t("session_ended"), "warn");
});

function onEntry(entry) {
  if (entry.kind === "chat") {
    chat.add(entry);
    return;
  }
  if (entry.kind !== "inspect" || !entry.inspect) return;
  const body = entry.inspect;
  switch (body.action) {
    case "capabilities":
      controls.setCaps(body);
      break;
    case "result":
      controls.onResult(body);
      break;
    case "pause":
      state.paused = body.paused;
      controls.setPaused(body.paused);
      renderBuyer();
      break;
    case "prompt":
      prompts.shown(entry);
      break;
    case "artifact":
      gallery.add(body.artifact);
      controls.onArtifact(body.artifact);
      annotator.onArtifact(body.artifact);
      break;
    case "case":
      onCaseEvent(body);
      break;
    default:
      break; // our own requests, echoed
  }
}

async function onCaseEvent(body) {
  if (body.event === "ended") {
    if (!state.ended) await showEnded(null);
    return;
  }
  if (!state.api || state.ended) return;
  try { // consented, admitted, recording: the header follows the case
    const c = (await state.api.view()).case;
    renderState(c.state);
    renderConsent(c.consent);
  } catch {
    /* the header keeps its old text; the next load shows it */
  }
}

/** A fresh join token for each reconnect; a closed case or a refused console ends the retries. */
async function refreshToken() {
  try {
    const view = await state.api.view();
    if (view.case.state === "closed") {
      showEnded(view.case);
      throw Object.assign(new Error("the case is closed"), { code: "case_closed", final: true });
    }
    return view.join_token;
  } catch (err) {
    if (AUTH_ERRORS.has(err.code)) err.final = true;
    throw err;
  }
}

// -- opening the console ---------------------------------------------------------------------------

function takeToken() {
  const match = /(?:^#|&)t=([^&]+)/.exec(window.location.hash);
  if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);
  if (match) {
    try {
      return decodeURIComponent(match[1]);
    } catch {
      return null;
    }
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function showLogin(message = "") {
  setPhase("login");
  ui.loginError.textContent = message;
  ui.loginError.hidden = !message;
  ui.token.focus();
}

async function open(token) {
  setPhase("loading");
  const api = new InspectorApi(token);
  let view;
  try {
    view = await api.view();
  } catch (err) {
    if (AUTH_ERRORS.has(err.code)) {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch { /* nothing stored */ }
      showLogin(t("link_invalid"));
    } else {
      showLogin(t("load_failed", { message: err.message, code: err.code }));
    }
    return;
  }
  state.api = api;
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch { /* a reload will ask for the link again */ }
  renderCase(view);
  if (view.case.state === "closed") {
    await showEnded(view.case);
    return;
  }
  setPhase("live");
  renderBuyer();
  try {
    await room.connect(view.join_token, refreshToken);
  } catch (err) {
    if (!state.ended) status.error(err, t("join_failed"));
  }
}

/** Join the room again after it gave up (a long network outage), with a fresh token. */
async function rejoin() {
  ui.rejoin.disabled = true;
  try {
    const view = await state.api.view();
    if (view.case.state === "closed") {
      await showEnded(view.case);
      return;
    }
    await room.connect(view.join_token, refreshToken);
  } catch (err) {
    status.error(err, t("join_failed"));
  } finally {
    ui.rejoin.disabled = false;
  }
}

// -- ending ----------------------------------------------------------------------------------------

async function showEnded(closedCase) {
  state.ended = true;
  ui.rejoin.hidden = true;
  room.close();
  annotator.reset();
  ui.remote.srcObject = null;
  setPhase("ended");
  setConnection("", "ok");
  renderBuyer();
  let c = closedCase;
  if (!c && state.api) {
    try {
      c = (await state.api.view()).case;
    } catch {
      c = null;
    }
  }
  ui.outcomePanel.hidden = false;
  if (c) {
    renderState(c.state);
    for (const artifact of c.artifacts || []) gallery.add(artifact);
    notes.set(c.notes);
  }
  const outcome = c && c.outcome;
  state.outcome = outcome || null;
  ui.outcome.textContent = outcome ? t("verdict_shown", { verdict: verdictName(outcome.verdict) }) : t("inspection_closed");
  ui.outcome.dataset.verdict = outcome ? outcome.verdict : "";
  ui.outcomeComment.textContent = outcome && outcome.comment ? outcome.comment : "";
}

ui.verdictForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const picked = ui.verdictForm.querySelector('input[name="verdict"]:checked');
  if (!picked) {
    say(t("pick_verdict"), "warn");
    return;
  }
  const verdict = picked.value;
  const sure = await confirmAction($("#confirm"), {
    title: t("end_title", { verdict: verdictName(verdict) }), action: t("end_inspection"), text: t("end_text"),
  });
  if (!sure) return;
  ui.end.disabled = true;
  try {
    await showEnded(await state.api.end(verdict, ui.comment.value.trim()));
  } catch (err) {
    status.error(err, t("end_failed"));
  } finally {
    ui.end.disabled = false;
  }
});

ui.bundle.addEventListener("click", async () => {
  ui.bundle.disabled = true;
  ui.bundleState.textContent = t("bundle_preparing");
  try {
    const blob = await state.api.bundle();
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `inspection-${state.view ? state.view.case.id : "case"}.zip`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    ui.bundleState.textContent = t("bundle_done", { n: Math.max(1, Math.round(blob.size / 1024)) });
  } catch (err) {
    ui.bundleState.textContent = err.code === "evidence_corrupt"
      ? t("bundle_corrupt")
      : t("bundle_failed", { message: err.message, code: err.code });
  } finally {
    ui.bundle.disabled = false;
  }
});

ui.rejoin.addEventListener("click", rejoin);
ui.sound.addEventListener("click", () => {
  ui.remote.muted = !ui.remote.muted;
  ui.sound.setAttribute("aria-pressed", String(!ui.remote.muted));
  labelButtons();
  ui.remote.play().catch(() => {});
});

/** The toggles' labels follow their state and the console's language. */
function labelButtons() {
  ui.sound.textContent = t(ui.sound.getAttribute("aria-pressed") === "true" ? "sound_off" : "sound_on");
  ui.talk.textContent = t(ui.talk.getAttribute("aria-pressed") === "true" ? "stop_talking" : "talk");
}

ui.talk.addEventListener("click", async () => {
  const on = ui.talk.getAttribute("aria-pressed") !== "true";
  ui.talk.disabled = true;
  try {
    if (await room.talk(on)) {
      ui.talk.setAttribute("aria-pressed", String(on));
      labelButtons();
    } else {
      say(t("not_connected"), "warn");
    }
  } catch (err) {
    status.error(err, t("mic_failed"));
  } finally {
    ui.talk.disabled = false;
  }
});

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ui.token.value.trim();
  ui.token.value = "";
  if (token) open(token);
});

/** The language switch: the static texts follow at once (i18n.apply); what JS drew is drawn again. */
function redraw() {
  labelButtons();
  if (state.view) {
    const c = state.view.case;
    ui.order.textContent = t("order", { order: c.order_ref });
    $("#fact-language").textContent = languageName(c.language);
    document.title = t("page_title", { order: c.order_ref });
  }
  if (state.caseState) renderState(state.caseState);
  if (state.view) renderConsent(state.consent);
  if (state.connection && !state.ended) setConnection(state.connection);
  if (state.ended) {
    ui.outcome.textContent = state.outcome ? t("verdict_shown", { verdict: verdictName(state.outcome.verdict) })
      : t("inspection_closed");
  }
  renderBuyer();
  controls.render();
  annotator.relabel();
  prompts.relabel();
}

i18n.apply();
labelButtons();
for (const select of document.querySelectorAll("select.lang-switch")) i18n.bindSwitch(select);
i18n.onChange(redraw);

const initial = takeToken();
if (initial) open(initial);
else showLogin();
