// Webhook signatures: `Vitrine-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>`.
// The scheme is Stripe's, key format (`whsec_...`, used as is) included. This is the SDK's own code:
// a backend needs nothing of the Vitrine server to check a delivery.

import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "Vitrine-Signature";
export const DELIVERY_HEADER = "Vitrine-Delivery"; // the event id, stable across retries: dedupe on it
export const DEFAULT_TOLERANCE_S = 300;

/** The request is not a genuine, fresh delivery; `reason` says which check failed. */
export class WebhookSignatureError extends Error {
  static MALFORMED = "malformed_header";
  static OUTSIDE_TOLERANCE = "timestamp_outside_tolerance";
  static MISMATCH = "signature_mismatch";

  /** @param {string} reason */
  constructor(reason) {
    super(reason);
    this.name = "WebhookSignatureError";
    this.reason = reason;
  }
}

/**
 * @param {string} key
 * @param {Uint8Array} body
 * @param {number} timestamp
 */
function mac(key, body, timestamp) {
  return createHmac("sha256", key).update(`${timestamp}.`).update(body).digest("hex");
}

/** @param {Uint8Array | string} body */
function bytesOf(body) {
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return body;
  throw new TypeError("body must be the raw request body (a Buffer), not parsed JSON");
}

/**
 * A Vitrine-Signature value, as the server makes it: for testing your own receiver.
 * @param {string} key
 * @param {Uint8Array | string} body
 * @param {number} [timestamp] unix seconds; now by default
 */
export function signWebhook(key, body, timestamp = Math.floor(Date.now() / 1000)) {
  return `t=${timestamp},v1=${mac(key, bytesOf(body), timestamp)}`;
}

/**
 * Throw a WebhookSignatureError unless `header` signs the raw `body` with `key` within `toleranceS`.
 * Pass the bytes as received (express.raw(), not express.json()): re-serialized JSON does not match.
 * Any of several v1 entries may match (a rotation); entries of other schemes are ignored.
 * @param {string} key
 * @param {Uint8Array | string} body
 * @param {string | null | undefined} header
 * @param {{toleranceS?: number, now?: number}} [options] `now` in unix seconds
 */
export function verifyWebhook(key, body, header, { toleranceS = DEFAULT_TOLERANCE_S, now } = {}) {
  const bytes = bytesOf(body);
  /** @type {number | null} */
  let timestamp = null;
  /** @type {string[]} */
  const candidates = [];
  for (const item of String(header ?? "").split(",")) {
    const entry = item.trim();
    const at = entry.indexOf("=");
    const name = at < 0 ? "" : entry.slice(0, at);
    const value = at < 0 ? "" : entry.slice(at + 1);
    if (!value) throw new WebhookSignatureError(WebhookSignatureError.MALFORMED);
    if (name === "t") {
      if (timestamp !== null || !/^[0-9]{1,12}$/.test(value)) {
        throw new WebhookSignatureError(WebhookSignatureError.MALFORMED);
      }
      timestamp = Number(value);
    } else if (name === "v1") {
      candidates.push(value);
    }
  }
  if (timestamp === null || !candidates.length) throw new WebhookSignatureError(WebhookSignatureError.MALFORMED);
  const current = now ?? Date.now() / 1000;
  if (Math.abs(current - timestamp) > toleranceS) {
    throw new WebhookSignatureError(WebhookSignatureError.OUTSIDE_TOLERANCE);
  }
  const expected = Buffer.from(mac(key, bytes, timestamp));
  // Every candidate is compared (no early exit), each in constant time; a length is no secret.
  const matched = candidates.map((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matched.includes(true)) throw new WebhookSignatureError(WebhookSignatureError.MISMATCH);
}

/**
 * The verified event `{id, type, shop, room, seq, created_ms, data}`; dedupe on `id`.
 * @param {string} key
 * @param {Uint8Array | string} body
 * @param {string | null | undefined} header
 * @param {{toleranceS?: number, now?: number}} [options]
 * @returns {{id: string, type: string, shop: string, room: string, seq: number, created_ms: number,
 *            data: Record<string, unknown>}}
 */
export function parseWebhook(key, body, header, options) {
  verifyWebhook(key, body, header, options);
  const event = JSON.parse(Buffer.from(bytesOf(body)).toString("utf8"));
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    throw new TypeError("a genuine delivery whose body is not an event object");
  }
  return event;
}
