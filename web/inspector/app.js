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

const TOKEN_KEY = "vitrine.inspector.token";
const AUTH_ERRORS = new Set(["invalid_token", "token_expired", "permission_denied", "case_not_found"]);
const VERDICTS = { accepted: "Accepted", rejected: "Rejected", needs_more: "Needs more information" };

const $ = (selector) => document.querySelector(selector);
const ui = {
  order: $("#case-order"), badge: $("#case-state"), buyer: $("#buyer-state"), connection: $("#connection"),
  loginView: $("#login-view"), loginForm: $("#login-form"), token: $("#token"), loginError: $("#login-error"),
  workspace: $("#workspace"), remote: $("#remote"), stageEmpty: $("#stage-empty"), paused: $("#paused-badge"),
  sound: $("#sound"), talk: $("#talk"), rejoin: $("#rejoin"), verdictForm: $("#verdict-form"), end: $("#end"), comment: $("#verdict-comment"),
  outcomePanel: $("#outcome-panel"), outcome: $("#outcome"), outcomeComment: $("#outcome-comment"),
  bundle: $("#bundle"), bundleState: $("#bundle-state"),
};

const state = { api: null, view: null, buyerIdentity: null, buyerPresent: false, paused: false, ended: false };
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
  answer: (id, admit) => room.admit(id, admit) || (say("Not connected to the room.", "warn"), false),
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

function languageName(tag) {
  try {
    return `${new Intl.DisplayNames(["en"], { type: "language" }).of(tag)} (${tag})`;
  } catch {
    return tag;
  }
}

function renderCase(view) {
  const c = view.case;
  state.view = view;
  state.buyerIdentity = view.buyer_identity || null;
  ui.order.textContent = `Order ${c.order_ref}`;
  ui.badge.textContent = c.state.replace("_", " ");
  ui.badge.dataset.state = c.state;
  $("#fact-order").textContent = c.order_ref;
  $("#fact-claim").textContent = c.claim;
  $("#fact-language").textContent = languageName(c.language);
  $("#fact-shop").textContent = view.shop_name || c.shop;
  renderConsent(c.consent);
  prompts.setLanguage(c.language);
  notes.set(c.notes);
  for (const artifact of c.artifacts || []) gallery.add(artifact);
  document.title = `Inspect ${c.order_ref} · Vitrine`;
}

function renderConsent(consent) {
  const el = $("#fact-consent");
  el.dataset.consented = String(Boolean(consent));
  el.textContent = consent
    ? `Agreed at ${new Date(consent.at_ms).toLocaleString()} (version ${consent.version}, ${consent.language})`
    : "Not given yet: nothing is recorded until the buyer agrees.";
}

function renderBuyer() {
  const knocking = [...room.knocks.values()].some((k) => k.participant && k.participant.identity === state.buyerIdentity);
  let text;
  let kind;
  if (state.ended) [text, kind] = ["", "ended"];
  else if (state.buyerPresent && state.paused) [text, kind] = ["Buyer connected · video paused", "paused"];
  else if (state.buyerPresent) [text, kind] = ["Buyer connected", "present"];
  else if (knocking) [text, kind] = ["The buyer is waiting at the door", "knocking"];
  else [text, kind] = ["Buyer not connected", "absent"];
  ui.buyer.textContent = text;
  ui.buyer.dataset.kind = kind;
  document.body.dataset.buyer = kind;
  ui.paused.hidden = !(state.buyerPresent && state.paused);
  controls.setAvailable(room.joined && state.buyerPresent && !state.ended);
}

function setConnection(label, kind) {
  ui.connection.textContent = label;
  ui.connection.dataset.kind = kind;
}

// -- the room ------------------------------------------------------------------------------------

room.addEventListener("connection", ({ detail }) => {
  const labels = { connecting: ["connecting…", "wait"], ok: ["connected", "ok"], reconnecting: ["reconnecting…", "wait"], down: ["disconnected", "down"] };
  const [label, kind] = labels[detail.state] || [detail.state, "wait"];
  if (!state.ended) setConnection(label, kind);
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
    say("That knock was already answered, or the buyer left.", "warn");
    return;
  }
  if (detail.ref === "inspect") controls.onRefused(detail);
  status.error(detail);
});
room.addEventListener("leave", ({ detail }) => {
  if (detail.code === "replaced") say("This case was opened in another console tab: this one stopped.", "warn");
  else if (!state.ended) say(detail.reason || "The server ended this session.", "warn");
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
    ui.badge.textContent = c.state.replace("_", " ");
    ui.badge.dataset.state = c.state;
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
      showLogin("This console link is not valid or has expired: open a new one from your shop's admin.");
    } else {
      showLogin(`The console could not load: ${err.message} (${err.code}).`);
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
    if (!state.ended) status.error(err, "Could not join the case's room");
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
    status.error(err, "Could not join the case's room");
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
    ui.badge.textContent = c.state.replace("_", " ");
    ui.badge.dataset.state = c.state;
    for (const artifact of c.artifacts || []) gallery.add(artifact);
    notes.set(c.notes);
  }
  const outcome = c && c.outcome;
  ui.outcome.textContent = outcome ? `Verdict: ${VERDICTS[outcome.verdict] || outcome.verdict}` : "The inspection is closed.";
  ui.outcome.dataset.verdict = outcome ? outcome.verdict : "";
  ui.outcomeComment.textContent = outcome && outcome.comment ? outcome.comment : "";
}

ui.verdictForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const picked = ui.verdictForm.querySelector('input[name="verdict"]:checked');
  if (!picked) {
    say("Pick a verdict first.", "warn");
    return;
  }
  const verdict = picked.value;
  const sure = await confirmAction($("#confirm"), {
    title: `End the inspection as “${VERDICTS[verdict]}”?`, action: "End inspection",
    text: "The buyer's session ends, the case is closed and its evidence is sealed into the bundle.",
  });
  if (!sure) return;
  ui.end.disabled = true;
  try {
    await showEnded(await state.api.end(verdict, ui.comment.value.trim()));
  } catch (err) {
    status.error(err, "The inspection could not be ended");
  } finally {
    ui.end.disabled = false;
  }
});

ui.bundle.addEventListener("click", async () => {
  ui.bundle.disabled = true;
  ui.bundleState.textContent = "Preparing the bundle…";
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
    ui.bundleState.textContent = `Downloaded (${Math.max(1, Math.round(blob.size / 1024))} KB).`;
  } catch (err) {
    ui.bundleState.textContent = err.code === "evidence_corrupt"
      ? "The evidence failed its integrity check: the bundle was not made. Contact support."
      : `The bundle could not be downloaded: ${err.message} (${err.code}).`;
  } finally {
    ui.bundle.disabled = false;
  }
});

ui.rejoin.addEventListener("click", rejoin);
ui.sound.addEventListener("click", () => {
  ui.remote.muted = !ui.remote.muted;
  ui.sound.setAttribute("aria-pressed", String(!ui.remote.muted));
  ui.sound.textContent = ui.remote.muted ? "Sound on" : "Sound off";
  ui.remote.play().catch(() => {});
});

ui.talk.addEventListener("click", async () => {
  const on = ui.talk.getAttribute("aria-pressed") !== "true";
  ui.talk.disabled = true;
  try {
    if (await room.talk(on)) {
      ui.talk.setAttribute("aria-pressed", String(on));
      ui.talk.textContent = on ? "Stop talking" : "Talk to the buyer";
    } else {
      say("Not connected to the room.", "warn");
    }
  } catch (err) {
    status.error(err, "The microphone could not be opened");
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

const initial = takeToken();
if (initial) open(initial);
else showLogin();
