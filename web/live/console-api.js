/**
 * console-api.js: the console's REST calls (/v1/live/console, signaling/routes/live.py).
 *
 * Every call carries the console token as a bearer credential and nowhere else: not in a URL,
 * not in a log. A refusal becomes an ApiError with the server's typed {code, message} (web/vitrine-api.js).
 */

import { request, requestJson } from "../vitrine-api.js";

const BASE = "/v1/live/console";

export class ConsoleApi {
  constructor(token) {
    this.token = token;
  }

  _json(method, path = "", body = undefined) {
    return requestJson(method, BASE + path, { token: this.token, body });
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
    return (await request("GET", `${BASE}/chat.csv`, { token: this.token })).blob();
  }
}
