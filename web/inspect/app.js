/**
 * app.js: the buyer's inspection page (web/inspect.html#t=<link token>), phone first.
 *
 * States (body[data-state]): redeeming -> consent -> camera -> connecting -> waiting (knocked, until
 * the seller admits; skipped once admitted) -> live -> ended, or declined, left, denied, problem (a
 * link already used or expired, a lost connection...).
 *
 * The link works once: the page spends it (`/v1/inspect/redeem`), drops it from the address bar
 * and keeps the buyer's session token in this tab's sessionStorage, so a reload carries on with
 * the session and never redeems again. Nothing is recorded or joined before the buyer agrees to
 * the server's consent text. Tokens are credentials: nothing here logs one.
 */

import { BuyerApi } from "./api.js";
import { Camera } from "./camera.js";
import { LiveRoom } from "./live.js";
import { View } from "./view.js";
import { setChildren } from "../vitrine-dom.js";

const STORE_KEY = "vitrine.inspect.session";
const $ = (id) => document.getElementById(id);

const api = new BuyerApi();
const view = new View();
const camera = new Camera();
let session = null; // GET /v1/inspect/session
const live = new LiveRoom({ api, camera, view, onEnd });

/** The link token from the fragment (#t=...), removed from the address bar at once. */
function takeLink() {
  const match = /(?:^#|&)t=([^&]+)/.exec(window.location.hash);
  if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

/** Which link a stored session came from: the end of its signature, not a usable token. */
const fingerprint = (link) => link.slice(-24);

function stored() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
    return value && typeof value.token === "string" && typeof value.link === "string" ? value : null;
  } catch {
    return null;
  }
}

function store(value) {
  try {
    if (value) sessionStorage.setItem(STORE_KEY, JSON.stringify(value));
    else sessionStorage.removeItem(STORE_KEY);
  } catch {
    /* storage refused (private mode): a reload will need a new link */
  }
}

const link = takeLink();

async function start() {
  view.setState("redeeming");
  let saved = stored();
  if (link && (!saved || saved.link !== fingerprint(link))) {
    try {
      const redeemed = await api.redeem(link);
      view.setLanguage(redeemed.language);
      saved = { link: fingerprint(link), token: redeemed.token };
      store(saved);
    } catch (err) {
      // A network failure may be retried; a link that is used, expired or invalid may not.
      view.problem(err.code, start);
      return;
    }
  }
  if (!saved) {
    view.problem("no_link");
    return;
  }
  api.token = saved.token;
  await loadSession();
}

async function loadSession() {
  view.setState("redeeming");
  try {
    session = await api.session();
  } catch (err) {
    if (err.code === "invalid_token" || err.code === "token_expired" || err.code === "link_expired") {
      store(null); // an expired session, or a case that no longer exists: only a new link helps
      view.problem("session_expired");
    } else {
      view.problem(err.code, loadSession);
    }
    return;
  }
  view.setLanguage(session.language);
  $("shop").textContent = session.shop_name || "";
  view.text($("order"), "order", { order: session.order_ref || "" });
  if (session.state === "closed") {
    onEnd("ended", null);
  } else if (!session.consented) {
    showConsent();
  } else {
    await startCamera();
  }
}

function showConsent() {
  view.text($("consent-heading"), "consent_heading", { shop: session.shop_name || "" });
  view.text($("consent-intro"), "consent_intro", { order: session.order_ref || "" });
  const paragraphs = String(session.consent_text || "").split(/\n{2,}/).map((p) => p.trim()).filter(Boolean);
  setChildren($("consent-text"), paragraphs.map((text) => {
    const p = document.createElement("p");
    p.textContent = text;
    return p;
  }));
  const days = Number(session.retention_days);
  $("retention").hidden = !(days > 0);
  if (days > 0) view.text($("retention"), "consent_retention", { n: days });
  $("consent-error").hidden = true;
  view.setState("consent");
}

/** A refusal or failure in a sentence of the buyer's language. */
function errorKey(code) {
  if (code === "network") return "error_network";
  if (code === "rate_limited") return "error_busy";
  return "error_generic";
}

async function agree() {
  const button = $("agree");
  button.disabled = true;
  $("consent-error").hidden = true;
  try {
    await api.consent(session.consent_version);
    session.consented = true;
  } catch (err) {
    button.disabled = false;
    if (err.code === "case_closed") {
      onEnd("ended", null);
    } else if (err.code === "invalid_token" || err.code === "token_expired" || err.code === "link_expired") {
      store(null);
      view.problem("session_expired");
    } else if (err.code === "invalid_message") {
      await loadSession(); // the consent text changed meanwhile: show the new one
    } else {
      view.text($("consent-error"), errorKey(err.code));
      $("consent-error").hidden = false;
    }
    return;
  }
  button.disabled = false;
  await startCamera();
}

const CAMERA_ERRORS = { denied: "camera_denied", missing: "camera_missing", busy: "camera_busy", insecure: "camera_insecure" };

async function startCamera() {
  view.setState("camera");
  const button = $("start-camera");
  button.disabled = true;
  $("camera-error").hidden = true;
  view.text($("camera-state"), "camera_starting");
  try {
    await camera.start("environment");
  } catch (err) {
    $("camera-state").textContent = "";
    view.text($("camera-error"), CAMERA_ERRORS[err.kind] || "error_generic");
    $("camera-error").hidden = false;
    view.text(button, "try_again");
    button.disabled = false;
    return;
  }
  button.disabled = false;
  await live.join();
}

function onEnd(kind, detail) {
  if (kind === "consent") {
    loadSession();
    return;
  }
  camera.stop();
  if (kind === "ended") {
    const verdict = $("verdict");
    verdict.hidden = !detail;
    if (detail) view.text(verdict, `verdict_${detail}`);
    document.body.dataset.verdict = detail || "";
    view.setState("ended");
  } else if (kind === "denied") {
    view.setState("denied");
  } else {
    view.problem(detail, rejoin); // offered only where trying again can help (view.js)
  }
}

async function rejoin() {
  if (!camera.video) await startCamera();
  else await live.join();
}

$("agree").addEventListener("click", agree);
$("decline").addEventListener("click", () => view.setState("declined"));
$("start-again").addEventListener("click", showConsent);
$("start-camera").addEventListener("click", startCamera);
$("leave").addEventListener("click", () => {
  live.leave();
  camera.stop();
  view.setState("left");
});
$("rejoin").addEventListener("click", startCamera);
window.addEventListener("pagehide", () => live.leave());

start();
