"""The Node server SDK (sdk/node) run by the machine's real ``node`` against a real server.

A small backend script uses the SDK to set up a shop, mint tokens (through the API and offline), read
errors, and verify a webhook the server itself signed and delivered; this test checks what it printed
against the server: its tokens verify, join a room and log into a console. ``node --test`` runs the SDK's
own unit tests too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from loadtest.desk import DeskClient
from loadtest.server import free_port
from tests.sdk_helpers import SDK_NODE, deliver_event
from tests.servers import TEST_SECRET, RunningServer
from tests.webhook_receiver import Receiver, serve_receiver
from vitrine.core.auth import verify_token
from vitrine.core.desk_tokens import verify_desk_token
from vitrine.core.models import Role
from vitrine.core.wire.rtc import PROTOCOL_VERSION

NODE_TIMEOUT_S = 60.0

BACKEND = r"""
import { readFileSync } from "node:fs";
const sdk = await import(process.env.SDK_URL);
const { VITRINE_URL: url, VITRINE_API_KEY: apiKey, VITRINE_API_SECRET: apiSecret } = process.env;
const vitrine = new sdk.Vitrine(url, { apiKey, apiSecret });
const out = {};
const failure = async (call) => {
  try { await call(); return null; }
  catch (e) { return { kind: e.constructor.name, api: e instanceof sdk.VitrineAPIError, status: e.status,
                       code: e.code, message: e.message, text: String(e) }; }
};

await vitrine.putAgent("acme", "ana", { display_name: "Ana", languages: ["en"] });
out.room = await vitrine.createRoom("consult-5", { kind: "consult", shop: "acme" });
out.minted = await vitrine.createToken({ room: "consult-5", identity: "cust-1", role: "customer", shop: "acme",
                                         ttl_s: 600 });
out.offline = vitrine.joinToken({ room: "consult-5", identity: "cust-2", role: "customer", shop: "acme",
                                  audience: sdk.JOIN_AUDIENCE });
out.agentConsole = await vitrine.agentConsole("acme", "ana", { ttlS: 600 });
out.offlineAgent = vitrine.consoleToken({ shop: "acme", role: "agent", subject: "ana" });
out.rooms = (await vitrine.listRooms()).map((room) => room.name);
out.agents = (await vitrine.listAgents("acme")).map((agent) => agent.id);

const key = (await vitrine.webhookKey("acme")).key;
const body = readFileSync(process.env.WEBHOOK_BODY_FILE);
out.event = sdk.parseWebhook(key, body, process.env.WEBHOOK_HEADER);
out.tampered = await failure(() => sdk.verifyWebhook(key, Buffer.concat([body, Buffer.from(" ")]),
                                                     process.env.WEBHOOK_HEADER));
out.tampered = out.tampered && out.tampered.message;

out.errors = {
  missingShop: await failure(() => vitrine.getShop("nope")),
  duplicateShop: await failure(() => vitrine.createShop("acme", { name: "Again" })),
  badRoom: await failure(() => vitrine.createRoom("../admin")),
  wrongSecret: await failure(() => new sdk.Vitrine(url, { apiKey, apiSecret: "wrong-" + "s".repeat(40) }).listRooms()),
  nobodyListening: await failure(() => new sdk.Vitrine(process.env.CLOSED_URL, { apiKey, apiSecret }).listShops()),
};

// Each remaining method once, on a shop of its own: its answer, or its error's class and code.
await vitrine.createShop("beta", { name: "Beta", allowed_origins: ["https://www.beta.example"] });
await vitrine.putProduct("beta", "mug-1", { title: "Mug", price: "12.50", currency: "EUR",
                                           url: "https://www.beta.example/p/mug-1" });
await vitrine.createRoom("r-1", { shop: "beta" });
const show = (await vitrine.createShow("beta", { title: "Drop", products: ["mug-1"] })).id;
const made = await vitrine.createCase("beta", { order_ref: "A-1", claim: "Broken", buyer_ref: "cust-77" });
const caseId = made.case.id;
const calls = {
  getRoom: async () => (await vitrine.getRoom("r-1")).room.name,
  getShop: async () => (await vitrine.getShop("beta")).id,
  updateShop: async () => (await vitrine.updateShop("beta", { max_wait_s: 300 })).max_wait_s,
  listShops: async () => (await vitrine.listShops()).map((shop) => shop.id).sort(),
  shopHours: async () => Object.keys(await vitrine.shopHours("beta", { at: "2026-03-30T07:00:00Z" })).sort(),
  putAgent: async () => (await vitrine.putAgent("beta", "bob", { display_name: "Bob", languages: ["en"] })).id,
  getAgent: async () => (await vitrine.getAgent("beta", "bob")).display_name,
  getProduct: async () => (await vitrine.getProduct("beta", "mug-1")).price,
  listProducts: async () => (await vitrine.listProducts("beta")).map((product) => product.sku),
  listCalls: () => vitrine.listCalls("beta", { limit: 5 }),
  getCall: () => vitrine.getCall("beta", "tk_nope"),
  listRequests: () => vitrine.listRequests("beta", { openOnly: true, limit: 5 }),
  listShows: async () => (await vitrine.listShows("beta", { limit: 5 })).map((s) => s.id).join() === show,
  getShow: async () => (await vitrine.getShow("beta", show)).state,
  updateShow: async () => (await vitrine.updateShow("beta", show, { title: "Drop 2" })).title,
  showConsole: async () => (await vitrine.showConsole("beta", show, { ttlS: 600 })).console_url.includes("#token="),
  showAnalytics: async () => "peak_viewers" in (await vitrine.showAnalytics("beta", show)),
  endShow: () => vitrine.endShow("beta", show),
  listCases: async () => (await vitrine.listCases("beta", { limit: 5 })).map((c) => c.id).join() === caseId,
  getCase: async () => (await vitrine.getCase("beta", caseId)).id === caseId,
  newCaseLink: async () => (await vitrine.newCaseLink("beta", caseId)).link !== made.link,
  caseConsole: async () => (await vitrine.caseConsole("beta", caseId)).console_url.includes("#t="),
  caseBundle: async () => Buffer.from((await vitrine.caseBundle("beta", caseId)).slice(0, 2)).toString(),
  eraseBuyer: async () => (await vitrine.eraseBuyer("beta", "cust-77")).cases,
  rotateWebhookKey: async () => (await vitrine.rotateWebhookKey("beta")).version,
  webhookFailures: () => vitrine.webhookFailures("beta", { limit: 5 }),
  request: async () => (await vitrine.request("GET", "/v1/workers"))[0].state,
  deleteProduct: () => vitrine.deleteProduct("beta", "mug-1"),
  deleteAgent: () => vitrine.deleteAgent("beta", "bob"),
  deleteShow: () => vitrine.deleteShow("beta", show),
  closeRoom: () => vitrine.closeRoom("r-1"),
  deleteShop: () => vitrine.deleteShop("beta"),
  gone: () => vitrine.getShop("beta"),
};
out.routes = {};
for (const [name, call] of Object.entries(calls)) {
  try { out.routes[name] = (await call()) ?? null; }
  catch (e) { if (!(e instanceof sdk.VitrineAPIError)) throw e; out.routes[name] = [e.constructor.name, e.code]; }
}
console.log(JSON.stringify(out));
"""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as running:
        yield running


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is not installed (Debian: apt-get install nodejs)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 20, f"the SDK needs Node 20 or newer, found {version}"
    return node


def test_the_sdk_has_no_dependencies() -> None:
    package = json.loads((SDK_NODE / "package.json").read_text())
    assert package["type"] == "module" and not package.get("dependencies")
    for source in SDK_NODE.glob("*.js"):
        imported = re.findall(r'^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"', source.read_text(), re.M | re.S)
        assert imported and all(m.startswith(("node:", "./")) for m in imported), (source.name, imported)


def test_the_sdk_unit_tests_pass() -> None:
    run = subprocess.run(
        [_node(), "--test", "test/"], cwd=SDK_NODE, capture_output=True, text=True, timeout=NODE_TIMEOUT_S
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^# pass (\d+)$", run.stdout, re.M) and "# fail 0" in run.stdout, run.stdout


async def _run_backend(server: RunningServer, tmp_path: Path, body: bytes, header: str) -> dict[str, Any]:
    script, body_file = tmp_path / "backend.mjs", tmp_path / "event.json"
    script.write_text(BACKEND)
    body_file.write_bytes(body)
    env = {
        **os.environ,
        "SDK_URL": (SDK_NODE / "index.js").as_uri(),
        "VITRINE_URL": server.url,
        "VITRINE_API_KEY": server.settings.api_key,
        "VITRINE_API_SECRET": TEST_SECRET,  # in the environment, never on a command line
        "WEBHOOK_BODY_FILE": str(body_file),
        "WEBHOOK_HEADER": header,
        "CLOSED_URL": f"http://127.0.0.1:{free_port()}",
    }
    # Not subprocess.run: the server answers from this event loop, which must keep running meanwhile.
    proc = await asyncio.create_subprocess_exec(
        _node(), str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert TEST_SECRET.encode() not in stdout + stderr  # not in an error, not in a printed client
    return json.loads(stdout)


async def test_node_backend_against_a_real_server(server: RunningServer, receiver: Receiver, tmp_path: Path) -> None:
    hit = await deliver_event(server, receiver, "acme")  # creates the shop, with its webhook
    out = await _run_backend(server, tmp_path, hit.body, hit.headers["vitrine-signature"])

    assert (out["room"]["name"], out["room"]["shop"]) == ("consult-5", "acme")
    assert "consult-5" in out["rooms"] and out["agents"] == ["ana"]
    assert out["minted"]["ws_url"] == server.ws_url
    assert verify_token(server.settings, out["minted"]["token"]).sub == "cust-1"
    offline = verify_token(server.settings, out["offline"])
    assert (offline.sub, offline.role, offline.shop, offline.aud) == ("cust-2", Role.CUSTOMER, "acme", "vitrine:join")
    assert out["agentConsole"]["console_url"] == f"{server.url}/agent.html#token={out['agentConsole']['token']}"
    assert verify_desk_token(server.settings, out["agentConsole"]["token"], "agent").sub == "ana"

    # The webhook the server signed verified in Node; a changed body did not.
    assert out["event"] == hit.event and out["event"]["type"] == "consult.add_to_cart"
    assert out["tampered"] == "signature_mismatch"

    errors = out["errors"]
    assert {name: (e["kind"], e["status"], e["code"]) for name, e in errors.items() if e["api"]} == {
        "missingShop": ("NotFoundError", 404, "shop_not_found"),
        "duplicateShop": ("ConflictError", 409, "shop_exists"),
        "badRoom": ("InvalidRequestError", 422, "invalid_message"),
        "wrongSecret": ("AuthenticationError", 401, "invalid_token"),
    }
    assert all(e["message"] for e in errors.values())
    assert errors["nobodyListening"]["kind"] == "VitrineConnectionError" and not errors["nobodyListening"]["api"]

    assert out["routes"] == {
        "getRoom": "r-1",
        "getShop": "beta",
        "updateShop": 300,
        "listShops": ["acme", "beta"],
        "shopHours": ["next_opening_local", "next_opening_utc", "now_local", "open", "timezone"],
        "putAgent": "bob",
        "getAgent": "Bob",
        "getProduct": "12.50",
        "listProducts": ["mug-1"],
        "listCalls": [],
        "getCall": ["NotFoundError", "call_not_found"],  # the route's own answer, not an unknown path's
        "listRequests": [],
        "listShows": True,
        "getShow": "scheduled",
        "updateShow": "Drop 2",
        "showConsole": True,
        "showAnalytics": True,
        "endShow": ["ConflictError", "show_not_live"],
        "listCases": True,
        "getCase": True,
        "newCaseLink": True,
        "caseConsole": True,
        "caseBundle": "PK",  # a zip
        "eraseBuyer": 1,
        "rotateWebhookKey": 2,
        "webhookFailures": [],
        "request": "serving",
        "deleteProduct": None,
        "deleteAgent": None,
        "deleteShow": None,
        "closeRoom": None,
        "deleteShop": None,
        "gone": ["NotFoundError", "shop_not_found"],
    }

    # The offline join token enters the shop's room; the offline console token logs into the desk.
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "join", "v": PROTOCOL_VERSION, "token": out["offline"]}))
        async with asyncio.timeout(30):
            while (message := json.loads(await ws.recv()))["type"] not in ("joined", "error"):
                pass
    assert message["type"] == "joined" and message["participant"]["identity"] == "cust-2", message
    console = await DeskClient.open(server, "agent")
    try:
        await console.send({"type": "login", "token": out["offlineAgent"]})
        assert (await console.expect("welcome"))["agent"]["id"] == "ana"
    finally:
        await console.close()
