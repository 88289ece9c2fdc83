/**
 * console-api.js: the console's REST calls (/v1/live/console, signaling/routes/live.py).
 *
 * Every call carries the console token as a bearer credential and nowhere else: not in a URL,
 * not in a log. A refusal becomes an ApiError with the server's typed {code, message}.
 */

const BASE = "/v1/live/console";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class ConsoleApi {
  constructor(token) {
    this.token = token;
  }

  async _fetch(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(BASE + path, {
        method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "could not reach the server");
    }
    if (response.ok) return response;
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      /* not JSON: a proxy's page */
    }
    throw new ApiError(response.status, problem.code || `http_${response.status}`,
      problem.message || response.statusText || "request failed");
  }

  async _json(method, path = "", body = undefined) {
    return (await this._fetch(method, path, body)).json();
  }

  /** ConsoleView: the show, its product cards, the catalog, OBS settings, the numbers. */
  view() {
    return this._json("GET");
  }

  /** Title, schedule and products (a ShowPatch); answers the new ConsoleView. */
  patch(changes) {
    return this._json("PATCH", "", changes);
  }

  /** Go live: HostJoin {show, token}. */
  start() {
    return this._json("POST", "/start");
  }

  /** A host join token for a show already live (from OBS, or after a reload): HostJoin. */
  join() {
    return this._json("POST", "/join");
  }

  /** End the show: the final ConsoleView with its analytics. */
  end() {
    return this._json("POST", "/end");
  }

  rotateStreamKey() {
    return this._json("POST", "/stream-key");
  }

  /** The chat as a CSV Blob (fetched with the bearer token, so it cannot be a plain link). */
  async chatCsv() {
    return (await this._fetch("GET", "/chat.csv")).blob();
  }
}
