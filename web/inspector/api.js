/**
 * api.js: the inspector console's REST calls (/v1/inspect/console, signaling/routes/inspect*.py).
 *
 * Every call carries the console token as a bearer header and nowhere else: not in a URL, not in
 * a log. Evidence files and the bundle are fetched with that header too, so they reach the page as
 * Blobs (shown through blob: URLs), never as plain links. A refusal is an ApiError with the
 * server's typed {code, message} (web/vitrine-api.js).
 */

import { request, requestJson } from "../vitrine-api.js";

const BASE = "/v1/inspect/console";

export class InspectorApi {
  constructor(token) {
    this.token = token;
  }

  /** {case, shop_name, join_token, buyer_identity}: the case, and a fresh inspector join token. */
  view() {
    return requestJson("GET", BASE, { token: this.token });
  }

  /** Add a case note: the stored Note {at_ms, author, text}. */
  addNote(text) {
    return requestJson("POST", `${BASE}/notes`, { token: this.token, body: { text } });
  }

  /** Close the case with a verdict ("accepted" | "rejected" | "needs_more"): the closed case. */
  end(verdict, comment) {
    return requestJson("POST", `${BASE}/end`, { token: this.token, body: { verdict, comment } });
  }

  /** One artifact's file, as a Blob. */
  async artifact(id) {
    return (await request("GET", `${BASE}/artifacts/${encodeURIComponent(id)}`, { token: this.token })).blob();
  }

  /** The evidence bundle (application/zip), as a Blob. */
  async bundle() {
    return (await request("GET", `${BASE}/bundle`, { token: this.token })).blob();
  }
}
