"""The Python server SDK (sdk/python) against a real server: its tokens, its REST client, its webhook verifier.

The SDK is synchronous, as most shop backends are; the server runs in this test's event loop, so every SDK
call goes through ``asyncio.to_thread`` and reaches the server over a real loopback socket.
"""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from loadtest.desk import DeskClient
from loadtest.server import free_port
from tests.sdk_helpers import SDK_PYTHON, deliver_event, sdk
from tests.servers import TEST_SECRET, RunningServer, make_settings
from tests.webhook_receiver import Receiver, serve_receiver
from vitrine.core.auth import verify_token
from vitrine.core.config import Settings
from vitrine.core.desk_tokens import verify_desk_token
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Role
from vitrine.core.webhooks import sign, verify
from vitrine.core.wire.rtc import PROTOCOL_VERSION

SERVER_PACKAGES = ("vitrine", "signaling", "media", "loadtest", "tests")
ACME = {"allowed_origins": ["https://www.acme.example"], "link_hosts": ["www.acme.example"]}
MUG = {"title": "Mug", "price": "12.50", "currency": "EUR", "url": "https://www.acme.example/p/mug-1"}


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as running:
        yield running


def _client(server: RunningServer, secret: str | None = None) -> sdk.Vitrine:
    return sdk.Vitrine(
        server.url, api_key=server.settings.api_key, api_secret=secret or server.settings.api_secret.get_secret_value()
    )


# -- a package of its own ---------------------------------------------------------------------------------


def test_the_sdk_imports_nothing_of_the_server() -> None:
    for path in (SDK_PYTHON / "vitrine_server_sdk").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not [n for n in names if n.split(".")[0] in SERVER_PACKAGES], (path.name, names)
    # And in a fresh interpreter, importing it loads none of them indirectly.
    probe = (
        f"import sys; sys.path.insert(0, {str(SDK_PYTHON)!r}); import vitrine_server_sdk; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_PACKAGES!r})))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def test_role_grants_mirror_the_server() -> None:
    assert sdk.ROLE_DEFAULT_GRANTS == {
        role.value: ROLE_DEFAULT_GRANTS[role].model_dump(exclude_defaults=True) for role in Role
    }
    assert sdk.tokens.GRANT_NAMES == set(Grants.model_fields)


# -- tokens minted offline ---------------------------------------------------------------------------------


def test_join_tokens_minted_offline_verify_on_the_server(settings: Settings) -> None:
    key = settings.api_key
    plain = sdk.mint_join_token(api_key=key, api_secret=TEST_SECRET, room="r-1", identity="cust-77", role="customer")
    claims = verify_token(settings, plain)
    assert (claims.sub, claims.room, claims.role, claims.shop, claims.aud) == (
        "cust-77",
        "r-1",
        Role.CUSTOMER,
        None,
        None,
    )
    assert claims.grants == ROLE_DEFAULT_GRANTS[Role.CUSTOMER]
    assert claims.jti and claims.exp - claims.iat == 6 * 3600

    full = sdk.mint_join_token(
        api_key=key,
        api_secret=TEST_SECRET,
        room="live-1",
        identity="studio",
        role="host",
        room_create=True,
        ttl_s=600,
        name="Studio",
        shop="acme",
        audience=sdk.JOIN_AUDIENCE,
    )
    claims = verify_token(settings, full)
    assert (claims.name, claims.shop, claims.aud, claims.exp - claims.iat) == ("Studio", "acme", "vitrine:join", 600)
    assert claims.grants == ROLE_DEFAULT_GRANTS[Role.HOST].model_copy(update={"room_create": True})
    explicit = sdk.mint_join_token(
        api_key=key, api_secret=TEST_SECRET, room="r-1", identity="v", role="viewer", grants={"can_subscribe": True}
    )
    assert verify_token(settings, explicit).grants == Grants(can_subscribe=True)
    assert verify_token(settings, plain).jti != verify_token(settings, full).jti

    with pytest.raises(ValueError, match="unknown role"):
        sdk.mint_join_token(api_key=key, api_secret=TEST_SECRET, room="r", identity="i", role="root")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="superuser"):
        sdk.mint_join_token(
            api_key=key,
            api_secret=TEST_SECRET,
            room="r",
            identity="i",
            role="agent",
            grants={"superuser": True},  # type: ignore[typeddict-unknown-key]
        )
    with pytest.raises(ValueError, match="empty"):
        sdk.mint_join_token(api_key=key, api_secret="", room="r", identity="i", role="agent")


@pytest.mark.parametrize("role", ["agent", "host", "inspector"])
def test_console_tokens_minted_offline_verify_on_the_server(settings: Settings, role: Any) -> None:
    token = sdk.mint_console_token(
        api_key=settings.api_key, api_secret=TEST_SECRET, shop="acme", role=role, subject="x-1"
    )
    claims = verify_desk_token(settings, token, role)
    assert (claims.shop, claims.sub, claims.role, claims.aud) == ("acme", "x-1", role, "vitrine:desk")
    with pytest.raises(Exception, match="token"):  # a console login never joins a room
        verify_token(settings, token)


# -- the REST client ---------------------------------------------------------------------------------------


def _backend(server: RunningServer) -> dict[str, Any]:
    """What a shop's backend does at setup, through the SDK only."""
    with _client(server) as vitrine:
        assert TEST_SECRET not in repr(vitrine)
        shop = vitrine.create_shop("acme", name="Acme", **ACME)
        assert shop["id"] == "acme" and shop["name"] == "Acme"
        assert vitrine.update_shop("acme", max_wait_s=300)["max_wait_s"] == 300
        assert [s["id"] for s in vitrine.list_shops()] == ["acme"]
        assert vitrine.put_agent("acme", "ana", display_name="Ana", languages=["fr", "en"])["id"] == "ana"
        assert [a["id"] for a in vitrine.list_agents("acme")] == ["ana"]
        assert vitrine.put_product("acme", "mug-1", **MUG)["title"] == "Mug"
        assert vitrine.get_product("acme", "mug-1")["price"] == "12.50"
        room = vitrine.create_room("consult-1042", kind="consult", shop="acme")
        assert (room["name"], room["shop"]) == ("consult-1042", "acme")
        minted = vitrine.create_token(room="consult-1042", identity="cust-77", role="customer", shop="acme", ttl_s=600)
        assert minted["ws_url"] == server.ws_url
        show = vitrine.create_show("acme", title="Spring drop", products=["mug-1"])
        case = vitrine.create_case("acme", order_ref="A-1042", claim="Cracked shade", language="fr")
        assert case["link"].startswith(server.url + "/inspect.html#t=")
        results = {
            "minted": minted,
            "show": show,
            "case": case["case"],
            "agent_console": vitrine.agent_console("acme", "ana", ttl_s=600),
            "show_console": vitrine.show_console("acme", show["id"]),
            "case_console": vitrine.case_console("acme", case["case"]["id"]),
            "rooms": [r["name"] for r in vitrine.list_rooms()],
            "calls": vitrine.list_calls("acme", limit=5),
            "key": vitrine.webhook_key("acme"),
        }
        results["rotated"] = vitrine.rotate_webhook_key("acme")
        return results


async def test_a_backend_sets_up_a_shop_through_the_sdk(server: RunningServer) -> None:
    done = await asyncio.to_thread(_backend, server)
    assert verify_token(server.settings, done["minted"]["token"]).shop == "acme"
    assert "consult-1042" in done["rooms"] and done["calls"] == []
    for name, page, role, subject in (
        ("agent_console", "/agent.html#token=", "agent", "ana"),
        ("show_console", "/live.html#token=", "host", done["show"]["id"]),
        ("case_console", "/inspector.html#t=", "inspector", done["case"]["id"]),
    ):
        login = done[name]
        assert login["console_url"] == server.url + page + login["token"], name
        assert verify_desk_token(server.settings, login["token"], role).sub == subject
    assert done["key"]["key"].startswith("whsec_") and done["rotated"]["version"] == done["key"]["version"] + 1
    assert done["rotated"]["key"] != done["key"]["key"]


def _errors(server: RunningServer) -> dict[str, BaseException]:
    caught: dict[str, BaseException] = {}

    def attempt(name: str, call: Any) -> None:
        try:
            call()
        except sdk.VitrineError as exc:
            caught[name] = exc

    with _client(server) as vitrine:
        attempt("missing_shop", lambda: vitrine.get_shop("nope"))
        vitrine.create_shop("acme", name="Acme", **ACME)
        attempt("duplicate_shop", lambda: vitrine.create_shop("acme", name="Again"))
        attempt(
            "bad_product_url", lambda: vitrine.put_product("acme", "x-1", **(MUG | {"url": "https://evil.example/"}))
        )
        attempt("bad_body", lambda: vitrine.create_room("../admin"))
        attempt("missing_agent", lambda: vitrine.agent_console("acme", "nobody"))
        attempt("path_escape", lambda: vitrine.get_agent("acme", "../../rooms"))
    with _client(server, secret="wrong-" + "s" * 40) as vitrine:
        attempt("wrong_secret", vitrine.list_rooms)
    with sdk.Vitrine(f"http://127.0.0.1:{free_port()}", api_key="k", api_secret=TEST_SECRET) as vitrine:
        attempt("nobody_listening", vitrine.list_shops)
    return caught


async def test_errors_are_typed_and_carry_the_code(server: RunningServer) -> None:
    caught = await asyncio.to_thread(_errors, server)
    expected = {
        "missing_shop": (sdk.NotFoundError, 404, "shop_not_found"),
        "duplicate_shop": (sdk.ConflictError, 409, "shop_exists"),
        "bad_product_url": (sdk.InvalidRequestError, 422, "url_not_allowed"),
        "bad_body": (sdk.InvalidRequestError, 422, "invalid_message"),
        "missing_agent": (sdk.NotFoundError, 404, "agent_not_found"),
        "path_escape": (sdk.NotFoundError, 404, None),  # an id is one path segment: no other route
        "wrong_secret": (sdk.AuthenticationError, 401, "invalid_token"),
    }
    for name, (kind, status, code) in expected.items():
        error = caught[name]
        assert isinstance(error, kind) and isinstance(error, sdk.VitrineAPIError), (name, error)
        assert error.status == status and (code is None or error.code == code), (name, error.code)
        assert error.message and TEST_SECRET not in str(error)
    assert isinstance(caught["nobody_listening"], sdk.VitrineConnectionError)
    assert set(caught) == set(expected) | {"nobody_listening"}


# -- the tokens it mints open real sessions ----------------------------------------------------------------


async def _join(server: RunningServer, token: str) -> dict[str, Any]:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "join", "v": PROTOCOL_VERSION, "token": token}))
        async with asyncio.timeout(30):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] in ("joined", "error"):
                    return message


async def test_offline_tokens_open_rooms_and_consoles(server: RunningServer) -> None:
    vitrine = _client(server)
    try:
        await asyncio.to_thread(vitrine.create_shop, "acme", name="Acme", **ACME)
        await asyncio.to_thread(vitrine.put_agent, "acme", "ana", display_name="Ana", languages=["en"])
        await asyncio.to_thread(vitrine.create_room, "consult-7", shop="acme")
        show = await asyncio.to_thread(vitrine.create_show, "acme", title="Drop")
        case = (await asyncio.to_thread(vitrine.create_case, "acme", order_ref="A-1", claim="Broken"))["case"]
    finally:
        await asyncio.to_thread(vitrine.close)

    shopper = vitrine.join_token(
        room="consult-7", identity="cust-77", role="customer", shop="acme", audience=sdk.JOIN_AUDIENCE
    )
    joined = await _join(server, shopper)
    assert joined["type"] == "joined" and joined["participant"]["identity"] == "cust-77", joined
    stray = vitrine.join_token(room="consult-7", identity="cust-78", role="customer")  # no shop: not this room
    assert (await _join(server, stray))["code"] == "room_not_found"

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        host = vitrine.console_token(shop="acme", role="host", subject=show["id"])
        seen = await http.get("/v1/live/console", headers={"Authorization": f"Bearer {host}"})
        assert seen.status_code == 200 and seen.json()["show"]["id"] == show["id"], seen.text
        inspector = vitrine.console_token(shop="acme", role="inspector", subject=case["id"])
        seen = await http.get("/v1/inspect/console", headers={"Authorization": f"Bearer {inspector}"})
        assert seen.status_code == 200 and seen.json()["case"]["id"] == case["id"], seen.text
        wrong = await http.get("/v1/inspect/console", headers={"Authorization": f"Bearer {host}"})
        assert wrong.status_code == 403 and wrong.json()["code"] == "permission_denied"

    console = await DeskClient.open(server, "agent")
    try:
        await console.send({"type": "login", "token": vitrine.console_token(shop="acme", role="agent", subject="ana")})
        welcome = await console.expect("welcome")
        assert welcome["agent"]["id"] == "ana", welcome
    finally:
        await console.close()


# -- webhooks ----------------------------------------------------------------------------------------------


async def test_the_verifier_accepts_a_real_delivery_and_refuses_forgeries(
    server: RunningServer, receiver: Receiver
) -> None:
    hit = await deliver_event(server, receiver, "acme")
    vitrine = _client(server)
    key = (await asyncio.to_thread(vitrine.webhook_key, "acme"))["key"]
    await asyncio.to_thread(vitrine.close)
    header = hit.headers[sdk.SIGNATURE_HEADER.lower()]
    assert hit.headers[sdk.DELIVERY_HEADER.lower()] == hit.event["id"]

    sdk.verify_webhook(key, hit.body, header)
    event = sdk.parse_webhook(key, hit.body, header)
    assert (event["type"], event["shop"], event["data"]) == ("consult.add_to_cart", "acme", {"sku": "mug-1"})

    stamp = int(header.split(",")[0].removeprefix("t="))
    forgeries = {
        "tampered body": (key, hit.body.replace(b"mug-1", b"mug-2"), header, None, "signature_mismatch"),
        "another key": (key[:-2] + "xx", hit.body, header, None, "signature_mismatch"),
        "replayed late": (key, hit.body, header, stamp + 301, "timestamp_outside_tolerance"),
        "no v1": (key, hit.body, f"t={stamp}", None, "malformed_header"),
        "two timestamps": (key, hit.body, f"t={stamp},{header}", None, "malformed_header"),
        "not a header": (key, hit.body, "garbage", None, "malformed_header"),
    }
    for name, (k, body, value, now, reason) in forgeries.items():
        with pytest.raises(sdk.WebhookSignatureError) as info:
            sdk.verify_webhook(k, body, value, now=now)
        assert info.value.reason == reason, name
    sdk.verify_webhook(key, hit.body, header, now=stamp + 299)
    # A sender mid-rotation signs with both keys: either verifies.
    both = f"{header},v1={sign('whsec_old', hit.body, stamp).split('v1=')[1]}"
    sdk.verify_webhook(key, hit.body, both)


def test_signatures_agree_with_the_server_both_ways() -> None:
    body, key, now = b'{"id":"evt_1","type":"consult.rating"}', "whsec_" + "k" * 43, int(time.time())
    assert sdk.sign_webhook(key, body, now) == sign(key, body, now)
    verify(key, body, sdk.sign_webhook(key, body))
    sdk.verify_webhook(key, body, sign(key, body, now))
    with pytest.raises(TypeError):
        sdk.verify_webhook(key, body.decode(), sign(key, body, now))  # type: ignore[arg-type]


def _every_route(server: RunningServer) -> dict[str, Any]:
    """Each method once: its answer, or its error's class and code (a wrong path would answer ``not_found``)."""
    outcomes: dict[str, Any] = {}
    with _client(server) as vitrine:
        vitrine.create_shop("acme", name="Acme", **ACME)
        vitrine.put_agent("acme", "ana", display_name="Ana", languages=["en"])
        vitrine.put_product("acme", "mug-1", **MUG)
        vitrine.create_room("r-1", shop="acme")
        show = vitrine.create_show("acme", title="Drop", products=["mug-1"])["id"]
        case = vitrine.create_case("acme", order_ref="A-1", claim="Broken", buyer_ref="cust-77", link_ttl_s=600)
        case_id = case["case"]["id"]
        calls: dict[str, Any] = {
            "get_room": lambda: vitrine.get_room("r-1")["room"]["name"],
            "get_shop": lambda: vitrine.get_shop("acme")["id"],
            "shop_hours": lambda: sorted(vitrine.shop_hours("acme", at="2026-03-30T07:00:00Z")),
            "get_agent": lambda: vitrine.get_agent("acme", "ana")["display_name"],
            "list_products": lambda: [p["sku"] for p in vitrine.list_products("acme")],
            "get_call": lambda: vitrine.get_call("acme", "tk_nope"),
            "list_requests": lambda: vitrine.list_requests("acme", open_only=True, limit=5),
            "list_shows": lambda: [s["id"] for s in vitrine.list_shows("acme", limit=5)] == [show],
            "get_show": lambda: vitrine.get_show("acme", show)["state"],
            "update_show": lambda: vitrine.update_show("acme", show, title="Drop 2")["title"],
            "show_analytics": lambda: "peak_viewers" in vitrine.show_analytics("acme", show),
            "end_show": lambda: vitrine.end_show("acme", show),
            "list_cases": lambda: [c["id"] for c in vitrine.list_cases("acme", limit=5)] == [case_id],
            "get_case": lambda: vitrine.get_case("acme", case_id)["id"],
            "new_case_link": lambda: vitrine.new_case_link("acme", case_id)["link"] != case["link"],
            "case_bundle": lambda: vitrine.case_bundle("acme", case_id)[:2],
            "webhook_failures": lambda: vitrine.webhook_failures("acme", limit=5),
            "request": lambda: vitrine.request("GET", "/v1/workers")[0]["state"],
            "erase_buyer": lambda: sorted(vitrine.erase_buyer("acme", "cust-77")),
            "delete_product": lambda: vitrine.delete_product("acme", "mug-1"),
            "delete_agent": lambda: vitrine.delete_agent("acme", "ana"),
            "delete_show": lambda: vitrine.delete_show("acme", show),
            "close_room": lambda: vitrine.close_room("r-1"),
            "delete_shop": lambda: vitrine.delete_shop("acme"),
            "gone": lambda: vitrine.get_shop("acme"),
        }
        for name, call in calls.items():
            try:
                outcomes[name] = call()
            except sdk.VitrineAPIError as exc:
                outcomes[name] = (type(exc).__name__, exc.code)
    return outcomes


async def test_every_method_reaches_its_route(server: RunningServer) -> None:
    outcomes = await asyncio.to_thread(_every_route, server)
    case_id = outcomes.pop("get_case")
    assert case_id.startswith("cs_")
    assert outcomes == {
        "get_room": "r-1",
        "get_shop": "acme",
        "shop_hours": ["next_opening_local", "next_opening_utc", "now_local", "open", "timezone"],
        "get_agent": "Ana",
        "list_products": ["mug-1"],
        "get_call": ("NotFoundError", "call_not_found"),
        "list_requests": [],
        "list_shows": True,
        "get_show": "scheduled",
        "update_show": "Drop 2",
        "show_analytics": True,
        "end_show": ("ConflictError", "show_not_live"),  # the route's own answer: a scheduled show
        "list_cases": True,
        "new_case_link": True,
        "case_bundle": b"PK",  # a zip
        "webhook_failures": [],
        "request": "serving",
        "erase_buyer": ["artifacts", "at_ms", "cases", "id"],
        "delete_product": None,
        "delete_agent": None,
        "delete_show": None,
        "close_room": None,
        "delete_shop": None,
        "gone": ("NotFoundError", "shop_not_found"),
    }
