/**
 * console.js: the agent console for storefront video consults (web/agent.html).
 *
 * One desk socket (DeskSocket from vitrine-client.js) carries everything but media: presence, the queue, rings,
 * chat, products, notes, wrap-up, contact requests and history. The call and wrap-up
 * panels are call.js, the media media.js, the DOM building render.js. The protocol is
 * vitrine/consult/protocol.py.
 *
 * Security: shoppers type names, chat and page titles, so server data reaches the page
 * only through textContent (render.js `h()`); links only for https: URLs. The agent
 * token lives in sessionStorage only and is never logged.
 */

import { CallPanel } from "./call.js";
import { DeskSocket, deskUrl } from "../vitrine-desk.js";
import { endStandBy, RingTone, standBy } from "./media.js";
import * as R from "./render.js";
import { i18n, t } from "./strings.js";

const TOKEN_KEY = "vitrine.agent.token";
const SHOP_REFRESH_MS = 60_000;
const NOTICE_MS = 8000;
const title = () => t("brand");

const $ = (selector) => document.querySelector(selector);
const ui = {
  banner: $("#reconnecting"),
  loginView: $("#login-view"), loginForm: $("#login-form"), token: $("#token"), login: $("#login"),
  loginStatus: $("#login-status"), loginError: $("#login-error"),
  console: $("#console"), agentName: $("#agent-name"), shopName: $("#shop-name"), shopOpen: $("#shop-open"),
  shopNext: $("#shop-next"),
  status: $("#status"), goAvailable: $("#go-available"), goAway: $("#go-away"), logout: $("#logout"),
  notice: $("#notice"),
  queue: $("#queue"), queueCount: $("#queue-count"), agents: $("#agents"),
  ring: $("#ring"), ringName: $("#ring .ring-name"), ringTitle: $("#ring-title"),
  ringCountdown: $("#ring .ring-countdown"), ringContext: $("#ring .ring-context"),
  accept: $("#ring .accept"), decline: $("#ring .decline"),
  idle: $("#idle"), requests: $("#requests"), requestsCount: $("#requests-count"), history: $("#history"),
  catalog: $("#catalog"), catalogFilter: $("#catalog-filter"), catalogCount: $("#catalog-count"),
};

const state = {
  token: null,
  mode: "fresh",          // "fresh": a sign-in the agent just asked for; "resume": this tab's stored session
  welcomed: false,        // logged in on the current socket
  everWelcomed: false,    // logged in at least once with this token
  agent: null,
  shop: null,
  catalog: [],
  status: "offline",
  statusReason: null,
  queue: { entries: [], total: 0, agents: [], receivedAt: 0 },
  agentsById: new Map(),
  ring: null,             // { ticket, context, deadline, accepting }
  requests: [],
  resolving: new Set(),   // request ids sent to resolve_request, until the next `requests`
  history: [],
  historyOpen: new Set(), // expanded history entries survive re-renders
  restoreAvailable: false, // was available when the desk socket dropped
};

const desk = new DeskSocket(deskUrl(window.location.href, "agent"), {
  hello: () => ({ type: "login", token: state.token }),
});
const tone = new RingTone();
let noticeTimer = null;

// -- small helpers --------------------------------------------------------------------------------

function isEditable(el) {
  return Boolean(el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName)));
}

function notice(text, kind = "error") {
  ui.notice.textContent = text;
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { ui.notice.hidden = true; }, NOTICE_MS);
}

/** Send on the desk socket, or tell the agent it did not go. */
function send(message) {
  if (desk.send(message)) return true;
  notice(t("not_connected"), "warn");
  return false;
}

const call = new CallPanel({ send, trySend: (message) => desk.send(message), changed: onCallChanged });

function onCallChanged() {
  renderCatalog();
  updateTitle();
  updateIdle();
}

function updateTitle() {
  const waiting = state.queue.total;
  if (state.ring && !state.ring.accepting) document.title = t("title_ringing", { title: title() });
  else if (call.active) document.title = t("title_in_call", { title: title() });
  else document.title = waiting ? t("title_waiting", { n: waiting, title: title() }) : title();
}

const IDLE = { available: "idle_available", away: "idle_away", busy: "idle_busy", wrap_up: "idle_wrap_up" };

function updateIdle() {
  const idle = !state.ring && !call.active && !call.wrapup;
  ui.idle.hidden = !idle;
  ui.idle.textContent = idle && IDLE[state.status] ? t(IDLE[state.status]) : "";
}

// -- sign in / out ------------------------------------------------------------------------------------

function login(token, mode) {
  token = (token || "").trim();
  if (!token) return;
  state.token = token;
  state.mode = mode;
  state.everWelcomed = false;
  state.restoreAvailable = false;
  ui.login.disabled = true;
  showLoginMessages(t(mode === "resume" ? "reconnecting_login" : "signing_in"));
  desk.close(); // a new sign-in starts a new connection
  desk.open();
}

function showLoginMessages(status = "", error = "", code = "") {
  ui.loginStatus.textContent = status;
  ui.loginStatus.hidden = !status;
  ui.loginError.textContent = error;
  ui.loginError.dataset.code = code;
  ui.loginError.hidden = !error;
}

function showLogin() {
  ui.console.hidden = true;
  ui.banner.hidden = true;
  ui.loginView.hidden = false;
  ui.login.disabled = false;
  document.title = title();
}

function forget() {
  desk.close();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.welcomed = state.everWelcomed = false;
  clearRing();
  call.reset();
  showLogin();
}

/** A refused token (or a fresh sign-in that never reached the server): back to the sign-in form. */
function loginFailed(text, code) {
  forget();
  showLoginMessages("", text, code);
  ui.token.focus();
}

function logout() {
  forget();
  ui.token.value = "";
  showLoginMessages(t("signed_out"));
}

desk.addEventListener("state", ({ detail }) => {
  // The desk marks a vanished console offline: an agent who was available is made available again.
  if (detail.state === "reconnecting" && state.welcomed) state.restoreAvailable = state.status === "available";
  if (detail.state === "connecting" || detail.state === "reconnecting") state.welcomed = false;
  if (detail.state !== "reconnecting") return;
  if (!state.everWelcomed && state.mode === "fresh") {
    loginFailed(t("unreachable"), "unreachable");
  } else if (state.everWelcomed) {
    ui.banner.hidden = false;
  } else {
    showLoginMessages(t("reconnecting_attempt", { n: detail.attempt }));
  }
});

// -- desk messages ---------------------------------------------------------------------------------------

const handlers = {
  welcome: onWelcome,
  status: ({ status, reason }) => setStatus(status, reason),
  queue: onQueue,
  ring: onRing,
  ring_cancelled: onRingCancelled,
  call_started: (message) => {
    clearRing({ keepStandBy: true }); // the call takes over the room joined while it rang
    call.start(message, state.agent ? state.agent.display_name : null);
  },
  chat: ({ line }) => call.chat(line),
  product: ({ card }) => call.product(card),
  call_ended: (message) => call.ended(message),
  requests: ({ requests }) => {
    state.requests = requests || [];
    renderRequests();
  },
  history: ({ calls }) => {
    state.history = calls || [];
    renderHistory();
    recoverWrapup();
  },
  error: onError,
  pong: () => {},
};

desk.addEventListener("message", ({ detail }) => {
  const handler = handlers[detail.type];
  if (!handler) return; // newer server messages are ignored, not fatal
  try {
    handler(detail);
  } catch (err) {
    console.error(`vitrine console: could not handle ${detail.type}:`, err);
  }
});

function onWelcome({ agent, shop, catalog }) {
  state.welcomed = state.everWelcomed = true;
  state.mode = "resume";
  sessionStorage.setItem(TOKEN_KEY, state.token);
  state.agent = agent;
  state.catalog = catalog || [];
  ui.agentName.textContent = agent.display_name;
  renderShop(shop);
  ui.loginView.hidden = true;
  ui.console.hidden = false;
  ui.banner.hidden = true;
  ui.login.disabled = false;
  showLoginMessages();
  // A ring from before the drop is re-sent if it still stands.
  clearRing();
  setStatus(agent.status);
  if (state.restoreAvailable && agent.status === "away") send({ type: "set_status", status: "available" });
  state.restoreAvailable = false;
  renderCatalog();
  call.reconnected();
}

function renderShop(shop) {
  state.shop = shop;
  ui.shopName.textContent = shop.name;
  ui.shopOpen.textContent = t(shop.open ? "shop_open" : "shop_closed");
  ui.shopNext.textContent = !shop.open && shop.next_opening_utc_ms
    ? t("shop_opens", { when: R.dateTimeIn(shop.next_opening_utc_ms) }) : "";
  ui.shopOpen.dataset.open = String(Boolean(shop.open));
  ui.shopOpen.title = shop.open
    ? t("shop_open_title", { available: R.number(shop.agents_available), waiting: R.number(shop.queue_length) })
    : t("shop_closed_title");
}

/** The shop opens and closes during the day: refresh the badge from the public status every minute. */
async function refreshShop() {
  if (!state.welcomed || !state.shop) return;
  try {
    const response = await fetch(`/v1/consult/${encodeURIComponent(state.shop.shop)}/status`, { cache: "no-store" });
    if (response.ok) renderShop(await response.json());
  } catch {
    /* offline for a moment: the desk socket's banner already says so */
  }
}
setInterval(refreshShop, SHOP_REFRESH_MS);

function setStatus(status, reason = null) {
  state.status = status;
  state.statusReason = reason;
  labelStatus();
  ui.status.dataset.status = status;
  ui.goAvailable.setAttribute("aria-pressed", String(status === "available"));
  ui.goAway.setAttribute("aria-pressed", String(status === "away"));
  // busy and wrap_up are the desk's: end the call or file the wrap-up to leave them.
  const locked = status === "busy" || status === "wrap_up";
  ui.goAvailable.disabled = locked;
  ui.goAway.disabled = locked;
  if (status === "away" && reason) notice(t("set_away", { reason }), "warn");
  if (call.active && status !== "busy") call.lost(status);
  recoverWrapup();
  updateIdle();
}

function labelStatus() {
  const label = R.statusLabel(state.status);
  ui.status.textContent = label;
  ui.status.title = state.statusReason ? t("status_reason", { status: label, reason: state.statusReason }) : label;
}

function recoverWrapup() {
  if (state.status === "wrap_up") call.recoverWrapup(state.history, state.agent && state.agent.id);
}

function onQueue({ entries, total, agents }) {
  state.queue = { entries: entries || [], total: total || 0, agents: agents || [], receivedAt: Date.now() };
  state.agentsById = new Map(state.queue.agents.map((a) => [a.id, a]));
  // The desk makes a rung agent busy without a `status` push: the team list carries it.
  const me = state.agent && state.agentsById.get(state.agent.id);
  if (me && me.status !== state.status) setStatus(me.status);
  renderQueue();
}

function onError({ code, message, ref }) {
  const text = `${message} (${code})`;
  if (!state.welcomed && (ref === "login" || ref === null || ref === undefined)) {
    // Before `welcome` the only thing this socket sent is `login`: the token was refused.
    loginFailed(text, code);
    return;
  }
  if (ref === "accept") clearRing();
  if (ref === "resolve_request") {
    state.resolving.clear();
    renderRequests();
  }
  call.error(ref, text);
  notice(text);
}

// -- queue, team, catalog, requests, history ------------------------------------------------------

function renderQueue() {
  const { entries, total, receivedAt } = state.queue;
  const me = state.agent && state.agent.id;
  R.renderQueue(ui.queue, { entries, total, receivedAt, agentsById: state.agentsById, me });
  ui.queueCount.textContent = String(total);
  R.renderAgents(ui.agents, state.queue.agents, me);
  updateTitle();
}

function renderCatalog() {
  R.renderCatalog(ui.catalog, state.catalog, {
    inCall: call.active, shown: call.shown, filter: ui.catalogFilter.value,
    onShow: (sku) => call.active && send({ type: "show_product", sku }),
  });
  ui.catalogCount.textContent = String(state.catalog.length);
}

function renderRequests() {
  const open = state.requests.filter((r) => !r.resolved_ms);
  const ids = new Set(open.map((r) => r.id));
  for (const id of state.resolving) if (!ids.has(id)) state.resolving.delete(id);
  R.renderRequests(ui.requests, open, {
    pending: state.resolving,
    onResolve: (id) => {
      if (!send({ type: "resolve_request", id })) return;
      state.resolving.add(id);
      renderRequests();
    },
  });
  ui.requestsCount.textContent = String(open.length);
}

function renderHistory() {
  const calls = [...state.history].sort((a, b) => (b.queued_ms || 0) - (a.queued_ms || 0));
  R.renderHistory(ui.history, calls, { agentsById: state.agentsById, open: state.historyOpen });
}

ui.catalogFilter.addEventListener("input", renderCatalog);

// -- ringing ----------------------------------------------------------------------------------------------

function onRing({ ticket, context, waited_ms, timeout_ms, setup }) {
  const now = Date.now();
  state.ring = { ticket, context, deadline: now + timeout_ms, accepting: false, waitingSince: now - waited_ms };
  ui.ringName.textContent = R.shopperName(context);
  ui.ringCountdown.dataset.deadlineMs = String(state.ring.deadline);
  drawRing();
  R.tick(ui.ring);
  ui.accept.disabled = false;
  ui.decline.disabled = false;
  ui.ring.hidden = false;
  tone.start();
  standBy(setup, state.agent ? state.agent.display_name : null);
  if (!isEditable(document.activeElement)) ui.accept.focus();
  updateTitle();
  updateIdle();
}

/** The ringing panel's texts: who, from where, since when (drawn again on a language change). */
function drawRing() {
  ui.ringTitle.firstChild.textContent = t(state.ring.accepting ? "connecting_to" : "incoming_call_from");
  ui.ringContext.replaceChildren(R.contextFacts(state.ring.context),
    R.h("p", { class: "ring-waited" }, t("waiting_for"), R.since(state.ring.waitingSince)));
}

function clearRing({ keepStandBy = false } = {}) {
  tone.stop();
  if (!keepStandBy) endStandBy();
  state.ring = null;
  ui.ring.hidden = true;
  delete ui.ringCountdown.dataset.deadlineMs;
  updateTitle();
  updateIdle();
}

// RingEnd in vitrine/consult/protocol.py.
const RING_CANCELLED = {
  timeout: "ring_timeout",
  abandoned: "ring_abandoned",
  missed: "ring_missed",
  console_closed: null,
  away: null,
  declined: null,
};

function onRingCancelled({ ticket, reason }) {
  if (!state.ring || state.ring.ticket !== ticket) return;
  clearRing();
  const key = reason in RING_CANCELLED ? RING_CANCELLED[reason] : "ring_withdrawn";
  if (key) notice(t(key, { reason }), "warn");
}

function accept() {
  if (!state.ring || state.ring.accepting) return;
  if (!send({ type: "accept", ticket: state.ring.ticket })) return;
  state.ring.accepting = true;
  tone.stop();
  ui.accept.disabled = true;
  ui.decline.disabled = true;
  ui.ringTitle.firstChild.textContent = t("connecting_to");
  updateTitle();
}

function decline() {
  if (!state.ring || state.ring.accepting) return;
  send({ type: "decline", ticket: state.ring.ticket });
  clearRing();
}

ui.accept.addEventListener("click", accept);
ui.decline.addEventListener("click", decline);

// -- availability, keyboard, timers, start-up -------------------------------------------------------

ui.goAvailable.addEventListener("click", () => send({ type: "set_status", status: "available" }));
ui.goAway.addEventListener("click", () => send({ type: "set_status", status: "away" }));
ui.logout.addEventListener("click", logout);

document.addEventListener("keydown", (event) => {
  if (ui.console.hidden) return;
  if (event.altKey && !event.ctrlKey && !event.metaKey && (event.key === "1" || event.key === "2")) {
    event.preventDefault();
    (event.key === "1" ? ui.goAvailable : ui.goAway).click();
    return;
  }
  if (!state.ring || event.ctrlKey || event.metaKey || event.altKey || isEditable(event.target)) return;
  const key = event.key.toLowerCase();
  if (key === "a") {
    event.preventDefault();
    accept();
  } else if (key === "d") {
    event.preventDefault();
    decline();
  }
});

// Sound is allowed only after a user gesture: unlock the ring tone on the first one.
for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, () => tone.unlock(), { capture: true });

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  tone.unlock();
  login(ui.token.value, "fresh");
});

setInterval(() => {
  R.tick();
  if (state.ring && !state.ring.accepting && Date.now() > state.ring.deadline + 1500) clearRing();
}, 1000);
setInterval(() => R.refreshClocks(), 30_000);

// A token in the fragment (#token=...) signs in; fragments never reach servers or their logs.
// Drop it from the address bar (and history) at once. Else resume this tab's session, if any.
const fragment = new URLSearchParams(window.location.hash.slice(1));
if (fragment.get("token")) {
  const token = fragment.get("token");
  history.replaceState(null, "", window.location.pathname + window.location.search);
  login(token, "fresh");
} else if (sessionStorage.getItem(TOKEN_KEY)) {
  login(sessionStorage.getItem(TOKEN_KEY), "resume");
} else {
  ui.token.focus();
}
updateIdle();

/** The language switch: the static texts follow at once (i18n.apply); what JS drew is drawn again. */
function redraw() {
  if (state.shop) renderShop(state.shop);
  labelStatus();
  if (state.ring) drawRing();
  renderQueue();
  renderCatalog();
  renderRequests();
  renderHistory();
  call.redraw();
  updateTitle();
  updateIdle();
}

i18n.apply();
for (const select of document.querySelectorAll("select.lang-switch")) i18n.bindSwitch(select);
i18n.onChange(redraw);
