// Join and console tokens, minted offline with the API secret (docs/tokens.md is the claim set).
// HS256 JWTs made with node:crypto alone: a backend holding VITRINE_API_SECRET signs what the server
// would (POST /v1/tokens, the console routes) without a round trip. The grant table mirrors the server's.

import { createHmac, randomBytes } from "node:crypto";

export const ALGORITHM = "HS256";
export const JOIN_AUDIENCE = "vitrine:join";
export const CONSOLE_AUDIENCE = "vitrine:desk";
export const DEFAULT_JOIN_TTL_S = 6 * 3600;
export const DEFAULT_CONSOLE_TTL_S = 12 * 3600;

/**
 * What a join token allows; a grant left out is denied.
 * @typedef {{can_publish?: boolean, can_subscribe?: boolean, can_chat?: boolean, room_admin?: boolean,
 *            hidden?: boolean, room_create?: boolean, needs_admit?: boolean}} Grants
 * @typedef {"customer" | "agent" | "buyer" | "inspector" | "host" | "viewer"} Role
 * @typedef {"agent" | "host" | "inspector"} ConsoleRole
 */

/** @type {Readonly<Record<Role, Readonly<Grants>>>} */
export const ROLE_DEFAULT_GRANTS = Object.freeze({
  customer: Object.freeze({ can_publish: true, can_subscribe: true, can_chat: true }),
  agent: Object.freeze({ can_publish: true, can_subscribe: true, can_chat: true, room_admin: true }),
  buyer: Object.freeze({ can_publish: true, can_subscribe: true, can_chat: true }),
  inspector: Object.freeze({ can_publish: true, can_subscribe: true, can_chat: true, room_admin: true }),
  host: Object.freeze({ can_publish: true, can_subscribe: true, can_chat: true, room_admin: true }),
  viewer: Object.freeze({ can_subscribe: true, can_chat: true, hidden: true }),
});
export const GRANT_NAMES = Object.freeze([
  "can_publish", "can_subscribe", "can_chat", "room_admin", "hidden", "room_create", "needs_admit",
]);
const CONSOLE_ROLES = Object.freeze(["agent", "host", "inspector"]);

/**
 * An HS256 JWT of `claims`, signed with `secret`.
 * @param {Record<string, unknown>} claims
 * @param {string} secret
 * @returns {string}
 */
export function signJwt(claims, secret) {
  if (!secret) throw new TypeError("apiSecret is empty: a token signed with it could be forged by anyone");
  const part = (/** @type {unknown} */ value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${part({ alg: ALGORITHM, typ: "JWT" })}.${part(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/**
 * A join token for /v1/rtc, WHIP and WHEP. `grants` replaces the role's defaults; `roomCreate` adds the one
 * grant defaults never have. `audience` sets `aud` ("vitrine:join", or the server's public URL); servers from
 * before the claim set was relaxed refuse any `aud`, so it is off by default.
 * @param {{apiKey: string, apiSecret: string, room: string, identity: string, role: Role, grants?: Grants,
 *          roomCreate?: boolean, ttlS?: number, name?: string, shop?: string, audience?: string}} options
 * @returns {string}
 */
export function mintJoinToken({ apiKey, apiSecret, room, identity, role, grants, roomCreate = false,
  ttlS = DEFAULT_JOIN_TTL_S, name, shop, audience }) {
  if (!Object.hasOwn(ROLE_DEFAULT_GRANTS, role)) {
    throw new TypeError(`unknown role ${JSON.stringify(role)}: one of ${Object.keys(ROLE_DEFAULT_GRANTS).join(", ")}`);
  }
  /** @type {Record<string, boolean>} */
  const chosen = { ...(grants ?? ROLE_DEFAULT_GRANTS[role]) };
  const unknown = Object.keys(chosen).filter((grant) => !GRANT_NAMES.includes(grant));
  if (unknown.length) throw new TypeError(`unknown grants: ${unknown.sort().join(", ")}`);
  if (roomCreate) chosen.room_create = true;
  const now = Math.floor(Date.now() / 1000);
  /** @type {Record<string, unknown>} */
  const claims = {
    iss: apiKey, sub: identity, room, role, grants: chosen,
    exp: now + ttlS, nbf: now, iat: now, jti: randomBytes(12).toString("base64url"),
  };
  for (const [key, value] of Object.entries({ name, shop, aud: audience })) {
    if (value !== undefined && value !== null) claims[key] = value;
  }
  return signJwt(claims, apiSecret);
}

/**
 * A console login: an agent's (`subject` = the agent id), a show's host (the show id) or a case's inspector
 * (the case id). Nothing checks here that it exists (the Vitrine client's agentConsole... routes do): the
 * console refuses the token when it does not.
 * @param {{apiKey: string, apiSecret: string, shop: string, role: ConsoleRole, subject: string, ttlS?: number}} options
 * @returns {string}
 */
export function mintConsoleToken({ apiKey, apiSecret, shop, role, subject, ttlS = DEFAULT_CONSOLE_TTL_S }) {
  if (!CONSOLE_ROLES.includes(role)) {
    throw new TypeError(`unknown console role ${JSON.stringify(role)}: one of ${CONSOLE_ROLES.join(", ")}`);
  }
  const now = Math.floor(Date.now() / 1000);
  return signJwt(
    { iss: apiKey, aud: CONSOLE_AUDIENCE, sub: subject, shop, role, exp: now + ttlS, iat: now },
    apiSecret,
  );
}
