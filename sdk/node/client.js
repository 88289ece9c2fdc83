// A small client for the REST API a shop's backend calls (README "REST API"), on Node's global fetch.
// HTTP Basic with the API key and secret; every error answer ({code, message}) becomes a VitrineAPIError
// subclass picked by HTTP status, so callers can catch NotFoundError or switch on `code`. Request bodies are
// the API's own JSON (snake_case, as in the README's curl lines); SDK options (ttlS, limit) are camelCase.
// The secret is never part of an error, nor of what util.inspect shows of the client.

import { DEFAULT_CONSOLE_TTL_S, DEFAULT_JOIN_TTL_S, mintConsoleToken, mintJoinToken } from "./tokens.js";

/** @typedef {import("./tokens.js").Grants} Grants */
/** @typedef {import("./tokens.js").Role} Role */
/** @typedef {import("./tokens.js").ConsoleRole} ConsoleRole */
/** @typedef {Record<string, any>} Json */
/** @typedef {{token: string, ws_url: string}} JoinToken */
/** @typedef {{token: string, console_url: string}} ConsoleLogin */
/** @typedef {{key: string, version: number}} WebhookKey */

/** Anything this SDK raises about talking to Vitrine. */
export class VitrineError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** The server could not be reached, or did not answer in time. */
export class VitrineConnectionError extends VitrineError {}

/** An error answer: `status` (HTTP), `code` (stable, the server's ErrorCode) and the server's `message`. */
export class VitrineAPIError extends VitrineError {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
/** 400, 413 or 422: refused as it stands (invalid_message, url_not_allowed...). */
export class InvalidRequestError extends VitrineAPIError {}
/** 401: wrong API key or secret (invalid_token). */
export class AuthenticationError extends VitrineAPIError {}
/** 403. */
export class PermissionDeniedError extends VitrineAPIError {}
/** 404: shop_not_found, room_not_found, agent_not_found... */
export class NotFoundError extends VitrineAPIError {}
/** 409: shop_exists, room_exists, show_ended... */
export class ConflictError extends VitrineAPIError {}
/** 410: an inspection link that expired or was used. */
export class GoneError extends VitrineAPIError {}
/** 429. */
export class RateLimitedError extends VitrineAPIError {}
/** 5xx: no_media_worker, storage_unavailable (retry later), internal. */
export class ServerError extends VitrineAPIError {}

/** @type {Record<number, typeof VitrineAPIError>} */
const BY_STATUS = {
  400: InvalidRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
  409: ConflictError, 410: GoneError, 413: InvalidRequestError, 422: InvalidRequestError, 429: RateLimitedError,
};

/** One path segment: an id can never reach another route (../) or carry a query. */
const seg = (/** @type {string} */ value) => encodeURIComponent(value);

/** @param {Record<string, unknown>} values */
function defined(values) {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined && value !== null));
}

/** @param {Response} response */
async function apiError(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "unexpected answer";
  try {
    const body = await response.json();
    if (typeof body?.code === "string" && typeof body?.message === "string") ({ code, message } = body);
  } catch {
    // not Vitrine's error body (a proxy's page, say): keep the status
  }
  const Kind = BY_STATUS[response.status] ?? (response.status >= 500 ? ServerError : VitrineAPIError);
  return new Kind(response.status, code, message);
}

/** The REST API of one Vitrine server, and token minting with its credentials. */
export class Vitrine {
  /** @type {string} */
  #secret;
  /** @type {string} */
  #authorization;

  /**
   * @param {string} url the server, e.g. https://video.shop.example
   * @param {{apiKey: string, apiSecret: string, timeoutMs?: number}} credentials
   */
  constructor(url, { apiKey, apiSecret, timeoutMs = 30_000 }) {
    if (!apiSecret) throw new TypeError("apiSecret is empty");
    this.url = url.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.timeoutMs = timeoutMs;
    this.#secret = apiSecret;
    this.#authorization = "Basic " + Buffer.from(`${apiKey}:${apiSecret}`).toString("base64");
  }

  /**
   * One API call: the decoded JSON answer (null when empty), or a VitrineAPIError. For routes without a method.
   * @param {string} method
   * @param {string} path
   * @param {{json?: unknown, params?: Record<string, unknown>}} [options]
   * @returns {Promise<any>}
   */
  async request(method, path, options = {}) {
    const response = await this.#send(method, path, options);
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{json?: unknown, params?: Record<string, unknown>}} options
   * @returns {Promise<Response>}
   */
  async #send(method, path, { json, params = {} }) {
    const query = new URLSearchParams(/** @type {Record<string, string>} */ (defined(params))).toString();
    /** @type {Record<string, string>} */
    const headers = { Authorization: this.#authorization, Accept: "application/json" };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.url + path + (query ? `?${query}` : ""), {
        method,
        headers,
        body: json === undefined ? undefined : JSON.stringify(json),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const kind = error instanceof Error ? error.name : "Error";
      throw new VitrineConnectionError(`${method} ${path}: ${kind}`); // the name only: no URL, no header
    }
    if (!response.ok) throw await apiError(response);
    return response;
  }

  // -- tokens ----------------------------------------------------------------------------------------------

  /**
   * A join token minted here, offline (mintJoinToken): no request.
   * @param {{room: string, identity: string, role: Role, grants?: Grants, roomCreate?: boolean, ttlS?: number,
   *          name?: string, shop?: string, audience?: string}} options
   */
  joinToken({ ttlS = DEFAULT_JOIN_TTL_S, ...options }) {
    return mintJoinToken({ apiKey: this.apiKey, apiSecret: this.#secret, ttlS, ...options });
  }

  /**
   * A console login minted offline; agentConsole, showConsole and caseConsole also check that it exists.
   * @param {{shop: string, role: ConsoleRole, subject: string, ttlS?: number}} options
   */
  consoleToken({ ttlS = DEFAULT_CONSOLE_TTL_S, ...options }) {
    return mintConsoleToken({ apiKey: this.apiKey, apiSecret: this.#secret, ttlS, ...options });
  }

  /**
   * POST /v1/tokens: a join token minted by the server, with the WebSocket URL to use it on.
   * @param {{room: string, identity: string, role: Role, grants?: Grants, ttl_s?: number, name?: string,
   *          shop?: string}} body
   * @returns {Promise<JoinToken>}
   */
  createToken(body) {
    return this.request("POST", "/v1/tokens", { json: defined(body) });
  }

  // -- rooms -----------------------------------------------------------------------------------------------

  /**
   * @param {string} name
   * @param {{kind?: "consult" | "inspection" | "live", max_participants?: number, shop?: string}} [options]
   * @returns {Promise<Json>}
   */
  createRoom(name, options = {}) {
    return this.request("POST", "/v1/rooms", { json: defined({ name, ...options }) });
  }

  /** @returns {Promise<Json[]>} */
  listRooms() {
    return this.request("GET", "/v1/rooms");
  }

  /** `{room, participants, tracks}`. @param {string} name @returns {Promise<Json>} */
  getRoom(name) {
    return this.request("GET", `/v1/rooms/${seg(name)}`);
  }

  /** @param {string} name @returns {Promise<void>} */
  async closeRoom(name) {
    await this.request("DELETE", `/v1/rooms/${seg(name)}`);
  }

  // -- shops, agents, products -----------------------------------------------------------------------------

  /**
   * @param {string} id
   * @param {Json & {name: string}} settings name, allowed_origins, link_hosts, timezone, opening_hours, ...
   * @returns {Promise<Json>}
   */
  createShop(id, settings) {
    return this.request("POST", "/v1/shops", { json: { id, ...settings } });
  }

  /** @returns {Promise<Json[]>} */
  listShops() {
    return this.request("GET", "/v1/shops");
  }

  /** @param {string} shop @returns {Promise<Json>} */
  getShop(shop) {
    return this.request("GET", `/v1/shops/${seg(shop)}`);
  }

  /** @param {string} shop @param {Json} changes @returns {Promise<Json>} */
  updateShop(shop, changes) {
    return this.request("PATCH", `/v1/shops/${seg(shop)}`, { json: changes });
  }

  /** @param {string} shop @returns {Promise<void>} */
  async deleteShop(shop) {
    await this.request("DELETE", `/v1/shops/${seg(shop)}`);
  }

  /** Open now (or at `at`, an aware ISO 8601 time), and when next. @param {string} shop @param {{at?: string}} [o] */
  shopHours(shop, { at } = {}) {
    return this.request("GET", `/v1/shops/${seg(shop)}/hours`, { params: { at } });
  }

  /**
   * @param {string} shop
   * @param {string} agent
   * @param {Json & {display_name: string, languages: string[]}} body
   * @returns {Promise<Json>}
   */
  putAgent(shop, agent, body) {
    return this.request("PUT", `/v1/shops/${seg(shop)}/agents/${seg(agent)}`, { json: body });
  }

  /** @param {string} shop @param {string} agent @returns {Promise<Json>} */
  getAgent(shop, agent) {
    return this.request("GET", `/v1/shops/${seg(shop)}/agents/${seg(agent)}`);
  }

  /** @param {string} shop @returns {Promise<Json[]>} */
  listAgents(shop) {
    return this.request("GET", `/v1/shops/${seg(shop)}/agents`);
  }

  /** @param {string} shop @param {string} agent @returns {Promise<void>} */
  async deleteAgent(shop, agent) {
    await this.request("DELETE", `/v1/shops/${seg(shop)}/agents/${seg(agent)}`);
  }

  /**
   * title, price (a decimal string), currency, url, image_url... (https, on the shop's link_hosts).
   * @param {string} shop
   * @param {string} sku
   * @param {Json} product
   * @returns {Promise<Json>}
   */
  putProduct(shop, sku, product) {
    return this.request("PUT", `/v1/shops/${seg(shop)}/products/${seg(sku)}`, { json: product });
  }

  /** @param {string} shop @param {string} sku @returns {Promise<Json>} */
  getProduct(shop, sku) {
    return this.request("GET", `/v1/shops/${seg(shop)}/products/${seg(sku)}`);
  }

  /** @param {string} shop @returns {Promise<Json[]>} */
  listProducts(shop) {
    return this.request("GET", `/v1/shops/${seg(shop)}/products`);
  }

  /** @param {string} shop @param {string} sku @returns {Promise<void>} */
  async deleteProduct(shop, sku) {
    await this.request("DELETE", `/v1/shops/${seg(shop)}/products/${seg(sku)}`);
  }

  // -- consult ---------------------------------------------------------------------------------------------

  /**
   * An agent's console login, minted by the server once it has checked the agent exists.
   * @param {string} shop
   * @param {string} agent
   * @param {{ttlS?: number}} [options]
   * @returns {Promise<ConsoleLogin>}
   */
  agentConsole(shop, agent, { ttlS } = {}) {
    return this.request("POST", `/v1/shops/${seg(shop)}/agents/${seg(agent)}/token`, { params: { ttl_s: ttlS } });
  }

  /** @param {string} shop @param {{limit?: number}} [options] @returns {Promise<Json[]>} */
  listCalls(shop, { limit } = {}) {
    return this.request("GET", `/v1/shops/${seg(shop)}/calls`, { params: { limit } });
  }

  /** @param {string} shop @param {string} call @returns {Promise<Json>} */
  getCall(shop, call) {
    return this.request("GET", `/v1/shops/${seg(shop)}/calls/${seg(call)}`);
  }

  /** Messages and callbacks. @param {string} shop @param {{openOnly?: boolean, limit?: number}} [options] */
  listRequests(shop, { openOnly = false, limit } = {}) {
    return this.request("GET", `/v1/shops/${seg(shop)}/requests`, { params: { open: openOnly || undefined, limit } });
  }

  // -- live shows ------------------------------------------------------------------------------------------

  /**
   * @param {string} shop
   * @param {{title: string, products?: string[], scheduled_at_ms?: number}} body
   * @returns {Promise<Json>}
   */
  createShow(shop, body) {
    return this.request("POST", `/v1/shops/${seg(shop)}/shows`, { json: defined(body) });
  }

  /** @param {string} shop @param {{limit?: number}} [options] @returns {Promise<Json[]>} */
  listShows(shop, { limit } = {}) {
    return this.request("GET", `/v1/shops/${seg(shop)}/shows`, { params: { limit } });
  }

  /** @param {string} shop @param {string} show @returns {Promise<Json>} */
  getShow(shop, show) {
    return this.request("GET", `/v1/shops/${seg(shop)}/shows/${seg(show)}`);
  }

  /** @param {string} shop @param {string} show @param {Json} changes @returns {Promise<Json>} */
  updateShow(shop, show, changes) {
    return this.request("PATCH", `/v1/shops/${seg(shop)}/shows/${seg(show)}`, { json: changes });
  }

  /** @param {string} shop @param {string} show @returns {Promise<void>} */
  async deleteShow(shop, show) {
    await this.request("DELETE", `/v1/shops/${seg(shop)}/shows/${seg(show)}`);
  }

  /** @param {string} shop @param {string} show @returns {Promise<Json>} */
  endShow(shop, show) {
    return this.request("POST", `/v1/shops/${seg(shop)}/shows/${seg(show)}/end`);
  }

  /**
   * The seller's console login for the show.
   * @param {string} shop
   * @param {string} show
   * @param {{ttlS?: number}} [options]
   * @returns {Promise<ConsoleLogin>}
   */
  showConsole(shop, show, { ttlS } = {}) {
    return this.request("POST", `/v1/shops/${seg(shop)}/shows/${seg(show)}/console`, { params: { ttl_s: ttlS } });
  }

  /** @param {string} shop @param {string} show @returns {Promise<Json>} */
  showAnalytics(shop, show) {
    return this.request("GET", `/v1/shops/${seg(shop)}/shows/${seg(show)}/analytics`);
  }

  // -- inspection cases ------------------------------------------------------------------------------------

  /**
   * `{case, link, qr_svg}`: send the buyer `link`; it works once.
   * @param {string} shop
   * @param {{order_ref: string, claim: string, language?: string, buyer_ref?: string, link_ttl_s?: number}} body
   * @returns {Promise<Json>}
   */
  createCase(shop, body) {
    return this.request("POST", `/v1/shops/${seg(shop)}/cases`, { json: defined(body) });
  }

  /** @param {string} shop @param {{limit?: number}} [options] @returns {Promise<Json[]>} */
  listCases(shop, { limit } = {}) {
    return this.request("GET", `/v1/shops/${seg(shop)}/cases`, { params: { limit } });
  }

  /** @param {string} shop @param {string} id @returns {Promise<Json>} */
  getCase(shop, id) {
    return this.request("GET", `/v1/shops/${seg(shop)}/cases/${seg(id)}`);
  }

  /** A new one-time link; the old one stops working. @param {string} shop @param {string} id */
  newCaseLink(shop, id) {
    return this.request("POST", `/v1/shops/${seg(shop)}/cases/${seg(id)}/link`);
  }

  /**
   * The inspector's console login for the case.
   * @param {string} shop
   * @param {string} id
   * @param {{ttlS?: number}} [options]
   * @returns {Promise<ConsoleLogin>}
   */
  caseConsole(shop, id, { ttlS } = {}) {
    return this.request("POST", `/v1/shops/${seg(shop)}/cases/${seg(id)}/console`, { params: { ttl_s: ttlS } });
  }

  /** The signed evidence bundle, a zip. @param {string} shop @param {string} id @returns {Promise<Uint8Array>} */
  async caseBundle(shop, id) {
    const response = await this.#send("GET", `/v1/shops/${seg(shop)}/cases/${seg(id)}/bundle`, {});
    return new Uint8Array(await response.arrayBuffer());
  }

  /** @param {string} shop @param {string} buyerRef @returns {Promise<Json>} */
  eraseBuyer(shop, buyerRef) {
    return this.request("DELETE", `/v1/shops/${seg(shop)}/buyers/${seg(buyerRef)}`);
  }

  // -- webhooks --------------------------------------------------------------------------------------------

  /**
   * The key that signs the shop's webhooks: give it to verifyWebhook.
   * @param {string} shop
   * @returns {Promise<WebhookKey>}
   */
  webhookKey(shop) {
    return this.request("GET", `/v1/shops/${seg(shop)}/webhook-key`);
  }

  /** @param {string} shop @returns {Promise<WebhookKey>} */
  rotateWebhookKey(shop) {
    return this.request("POST", `/v1/shops/${seg(shop)}/webhook-key/rotate`);
  }

  /** @param {string} shop @param {{limit?: number}} [options] @returns {Promise<Json[]>} */
  webhookFailures(shop, { limit } = {}) {
    return this.request("GET", `/v1/shops/${seg(shop)}/webhook-failures`, { params: { limit } });
  }
}
