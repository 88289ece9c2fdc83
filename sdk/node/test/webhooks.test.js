// Unit tests of the webhook verifier: run with `node --test test/` (tests/test_sdk_node.py runs them too).

import { strict as assert } from "node:assert";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { WebhookSignatureError, parseWebhook, signWebhook, verifyWebhook } from "../index.js";

const KEY = "whsec_" + "k".repeat(43);
const BODY = Buffer.from('{"id":"evt_1","type":"consult.rating","shop":"acme","data":{"stars":5,"note":"très bien"}}');

function reason(call) {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof WebhookSignatureError, String(error));
    return error.reason;
  }
  assert.fail("no error");
}

test("a signature is the HMAC-SHA256 of '<t>.' + body, with the whole key", () => {
  const header = signWebhook(KEY, BODY, 1_700_000_000);
  const hex = createHmac("sha256", KEY).update(Buffer.concat([Buffer.from("1700000000."), BODY])).digest("hex");
  assert.equal(header, `t=1700000000,v1=${hex}`);
  verifyWebhook(KEY, BODY, header, { now: 1_700_000_000 });
  assert.equal(parseWebhook(KEY, BODY, header, { now: 1_700_000_100 }).data.note, "très bien");
});

test("forgeries are refused, each with its reason", () => {
  const now = Math.floor(Date.now() / 1000);
  const header = signWebhook(KEY, BODY, now);
  assert.equal(reason(() => verifyWebhook(KEY, Buffer.from(BODY.toString().replace("5", "1")), header)),
    "signature_mismatch");
  assert.equal(reason(() => verifyWebhook(KEY + "x", BODY, header)), "signature_mismatch");
  assert.equal(reason(() => verifyWebhook(KEY, BODY, header, { now: now + 301 })), "timestamp_outside_tolerance");
  assert.equal(reason(() => verifyWebhook(KEY, BODY, `t=${now}`)), "malformed_header");
  assert.equal(reason(() => verifyWebhook(KEY, BODY, `t=${now},${header}`)), "malformed_header");
  assert.equal(reason(() => verifyWebhook(KEY, BODY, "t=-1,v1=ab")), "malformed_header");
  assert.equal(reason(() => verifyWebhook(KEY, BODY, undefined)), "malformed_header");
  assert.equal(reason(() => verifyWebhook(KEY, BODY, `${header.split(",")[0]},v1=short`)), "signature_mismatch");
  assert.throws(() => verifyWebhook(KEY, JSON.parse(BODY.toString()), header), TypeError);
});

test("during a rotation either key's entry may match; other schemes are ignored", () => {
  const now = Math.floor(Date.now() / 1000);
  const old = signWebhook("whsec_old", BODY, now).split(",")[1];
  verifyWebhook(KEY, BODY, `${signWebhook(KEY, BODY, now)},${old},v0=ignored`);
});
