// Unit tests of the offline token minting: run with `node --test test/` (tests/test_sdk_node.py runs them too).

import { strict as assert } from "node:assert";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { JOIN_AUDIENCE, ROLE_DEFAULT_GRANTS, mintConsoleToken, mintJoinToken } from "../index.js";

const SECRET = "a-test-secret-that-is-long-enough-000000";

/** Split a JWT, check its HS256 signature independently, and return its header and claims. */
function decode(token, secret = SECRET) {
  const [header, payload, signature] = token.split(".");
  const expected = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  assert.equal(signature, expected, "signature");
  const json = (part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  return { header: json(header), claims: json(payload) };
}

test("a join token carries the role's grants, a jti and the registered dates", () => {
  const before = Math.floor(Date.now() / 1000);
  const { header, claims } = decode(
    mintJoinToken({ apiKey: "vitrine", apiSecret: SECRET, room: "consult-1", identity: "cust-77", role: "customer" }),
  );
  assert.deepEqual(header, { alg: "HS256", typ: "JWT" });
  assert.equal(claims.iss, "vitrine");
  assert.equal(claims.sub, "cust-77");
  assert.deepEqual(claims.grants, ROLE_DEFAULT_GRANTS.customer);
  assert.ok(claims.iat >= before && claims.nbf === claims.iat && claims.exp === claims.iat + 6 * 3600);
  assert.match(claims.jti, /^[A-Za-z0-9_-]{16}$/);
  assert.ok(!("aud" in claims) && !("shop" in claims) && !("name" in claims));
});

test("options: explicit grants, room_create, ttl, name, shop, audience", () => {
  const { claims } = decode(mintJoinToken({
    apiKey: "k", apiSecret: SECRET, room: "live-1", identity: "studio", role: "viewer", grants: { can_subscribe: true },
    roomCreate: true, ttlS: 60, name: "Studio", shop: "acme", audience: JOIN_AUDIENCE,
  }));
  assert.deepEqual(claims.grants, { can_subscribe: true, room_create: true });
  assert.equal(claims.exp - claims.iat, 60);
  assert.deepEqual([claims.name, claims.shop, claims.aud], ["Studio", "acme", "vitrine:join"]);
});

test("refuses unknown roles, unknown grants and an empty secret", () => {
  const base = { apiKey: "k", apiSecret: SECRET, room: "r", identity: "i" };
  assert.throws(() => mintJoinToken({ ...base, role: "root" }), /unknown role/);
  assert.throws(() => mintJoinToken({ ...base, role: "agent", grants: { superuser: true } }), /superuser/);
  assert.throws(() => mintJoinToken({ ...base, apiSecret: "", role: "agent" }), /empty/);
  assert.throws(() => mintConsoleToken({ apiKey: "k", apiSecret: SECRET, shop: "s", role: "root", subject: "x" }),
    /unknown console role/);
});

test("a console token has the desk audience and no grants", () => {
  const { claims } = decode(mintConsoleToken({ apiKey: "k", apiSecret: SECRET, shop: "acme", role: "host",
    subject: "sh_1", ttlS: 120 }));
  assert.deepEqual(Object.keys(claims).sort(), ["aud", "exp", "iat", "iss", "role", "shop", "sub"]);
  assert.deepEqual([claims.aud, claims.role, claims.sub], ["vitrine:desk", "host", "sh_1"]);
  assert.equal(claims.exp - claims.iat, 120);
});
