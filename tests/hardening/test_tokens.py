"""Join tokens and API credentials: forged, expired, misdirected and garbage credentials are refused everywhere.

Bad tokens are crafted with PyJWT directly, then tried on ``vitrine.core.auth.verify_token``,
on the WebSocket join, and on WHIP and WHEP. Every refusal carries a stable
code (``invalid_token``/``token_expired`` on the socket, HTTP 401 with a JSON
``code`` over HTTP). Forged tokens carry the ``room_create`` grant, so a
verification bypass would show up as a room that should not exist. Nothing
minted or sent here may show up in a log record (``leak_guard``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

from loadtest.client import VitrineClient
from tests.hardening.support import (
    WAIT_S,
    FrameCounter,
    LeakGuard,
    Probe,
    publisher_offer,
)
from tests.media_helpers import av_tracks, remote_tracks
from tests.servers import TEST_SECRET, RunningServer, make_settings
from vitrine.core.auth import ALGORITHM, JoinClaims, mint_token, verify_token
from vitrine.core.config import Settings
from vitrine.core.desk_tokens import mint_desk_token, verify_desk_token
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Role

ROOM = "shop-7"
OTHER_ROOM = "shop-8"
PATIENT = {"idle_timeout_s": 600.0, "join_timeout_s": 300.0}
DROP = object()  # a claim to leave out
MIN_WATCHED_LENGTH = 16  # shorter garbage ("a.b.c") could match unrelated log text


@pytest.fixture
def settings() -> Settings:
    """What ``server`` is configured with, for the unit tests that need no server."""
    return make_settings()


# -- crafting tokens -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    """Claims that would be accepted, then ``changes`` (``DROP`` removes a claim)."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": settings.api_key,
        "sub": "mallory",
        "room": ROOM,
        "role": "host",
        "grants": {"can_publish": True, "can_subscribe": True, "room_admin": True, "room_create": True},
        "exp": now + 600,
        "nbf": now,
        "iat": now,
    }
    for key, value in changes.items():
        if value is DROP:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def signed(
    payload: dict[str, Any],
    key: str | bytes = TEST_SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def raw_jwt(header: dict[str, Any], payload: bytes, key: bytes | None) -> str:
    """A JWT assembled by hand: any header, any payload bytes, an HS256 signature or none."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}"
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def _alg_none(settings: Settings, alg: str = "none", keep_signature: bool = False) -> str:
    payload = json.dumps(claims(settings)).encode()
    token = raw_jwt({"alg": alg, "typ": "JWT"}, payload, None)
    if keep_signature:  # the signature of the same claims under HS256, header swapped to "none"
        token += signed(claims(settings)).rsplit(".", 1)[1]
    return token


def _tampered(settings: Settings) -> str:
    header, _, signature = signed(claims(settings, role="viewer", grants={"can_subscribe": True})).split(".")
    return f"{header}.{_b64(json.dumps(claims(settings)).encode())}.{signature}"


def _hs512(settings: Settings) -> str:
    with warnings.catch_warnings():  # the test secret is short for HS512; it only has to be the right one
        warnings.simplefilter("ignore")
        return signed(claims(settings), TEST_SECRET, "HS512")


TokenFactory = Callable[[Settings], str]
SECRET = TEST_SECRET.encode()

BAD_TOKENS: dict[str, tuple[TokenFactory, str]] = {
    "alg_none": (lambda s: _alg_none(s), "invalid_token"),
    "alg_None": (lambda s: _alg_none(s, "None"), "invalid_token"),
    "alg_none_with_signature": (lambda s: _alg_none(s, keep_signature=True), "invalid_token"),
    "wrong_key": (lambda s: signed(claims(s), "another-secret-" + "y" * 40), "invalid_token"),
    "hs512_right_key": (lambda s: _hs512(s), "invalid_token"),
    "tampered_payload": (_tampered, "invalid_token"),
    "expired_beyond_leeway": (lambda s: signed(claims(s, exp=int(time.time()) - 120)), "token_expired"),
    "expired_long_ago": (lambda s: signed(claims(s, exp=int(time.time()) - 86_400, iat=0, nbf=0)), "token_expired"),
    "without_exp": (lambda s: signed(claims(s, exp=DROP)), "invalid_token"),
    "exp_not_a_number": (lambda s: signed(claims(s, exp="tomorrow")), "invalid_token"),
    "without_iss": (lambda s: signed(claims(s, iss=DROP)), "invalid_token"),
    "wrong_iss": (lambda s: signed(claims(s, iss="someone-else")), "invalid_token"),
    "without_sub": (lambda s: signed(claims(s, sub=DROP)), "invalid_token"),
    "not_yet_valid": (lambda s: signed(claims(s, nbf=int(time.time()) + 600)), "invalid_token"),
    "issued_in_the_future": (lambda s: signed(claims(s, iat=int(time.time()) + 600)), "invalid_token"),
    "unknown_role": (lambda s: signed(claims(s, role="root")), "invalid_token"),
    "unknown_grant": (lambda s: signed(claims(s, grants={"can_publish": True, "superuser": True})), "invalid_token"),
    "without_grants": (lambda s: signed(claims(s, grants=DROP)), "invalid_token"),
    "bad_room_name": (lambda s: signed(claims(s, room="../../admin")), "invalid_token"),
    "payload_not_json": (
        lambda s: raw_jwt({"alg": "HS256", "typ": "JWT"}, b"not json at all", SECRET),
        "invalid_token",
    ),
    "payload_a_json_array": (
        lambda s: raw_jwt({"alg": "HS256", "typ": "JWT"}, b'["mallory"]', SECRET),
        "invalid_token",
    ),
    "garbage": (lambda s: "garbage", "invalid_token"),
    "three_dots": (lambda s: "a.b.c", "invalid_token"),
    "only_dots": (lambda s: "..", "invalid_token"),
    "header_only": (lambda s: signed(claims(s)).split(".")[0] + "..", "invalid_token"),
    "bearer_prefix_included": (lambda s: "Bearer " + signed(claims(s)), "invalid_token"),
    "empty": (lambda s: "", "invalid_token"),
    "whitespace": (lambda s: "   ", "invalid_token"),
    "unicode": (lambda s: "\u0442\u043e\u043a\u0435\u043d.\u0442\u043e\u043a\u0435\u043d.\u2603", "invalid_token"),
    "8k_of_junk": (lambda s: "x" * 8192, "invalid_token"),
    # An audience must name this server: another service's, or one of Vitrine's other token families'.
    "aud_of_another_service": (lambda s: signed(claims(s, aud="https://billing.example")), "invalid_token"),
    "aud_of_the_desk": (lambda s: signed(claims(s, aud="vitrine:desk")), "invalid_token"),
    "aud_of_an_inspection_link": (lambda s: signed(claims(s, aud="vitrine:inspect-link")), "invalid_token"),
    "aud_list_without_us": (lambda s: signed(claims(s, aud=["a.example", "b.example"])), "invalid_token"),
    "aud_empty_string": (lambda s: signed(claims(s, aud="")), "invalid_token"),
    "aud_empty_list": (lambda s: signed(claims(s, aud=[])), "invalid_token"),
    "aud_not_a_string": (lambda s: signed(claims(s, aud=["vitrine:join", 7])), "invalid_token"),
    "jti_not_a_string": (lambda s: signed(claims(s, jti=12345)), "invalid_token"),
    "misspelt_claim": (lambda s: signed(claims(s, shpo="acme")), "invalid_token"),
}
TOKEN_CASES = [pytest.param(name, id=name) for name in BAD_TOKENS]


def bad_token(name: str, settings: Settings, guard: LeakGuard | None = None) -> tuple[str, str]:
    factory, code = BAD_TOKENS[name]
    token = factory(settings)
    if guard is not None and len(token.strip()) >= MIN_WATCHED_LENGTH:
        guard.watch(token)
    return token, code


# -- vitrine.core.auth, as a unit ----------------------------------------------------------------------


def test_mint_and_verify_round_trip(settings: Settings) -> None:
    before = int(time.time())
    token = mint_token(settings, room=ROOM, identity="alice", role=Role.CUSTOMER, name="Alice")
    claims_ = verify_token(settings, token)
    assert (claims_.iss, claims_.sub, claims_.room, claims_.role, claims_.name) == (
        settings.api_key,
        "alice",
        ROOM,
        Role.CUSTOMER,
        "Alice",
    )
    assert claims_.grants == ROLE_DEFAULT_GRANTS[Role.CUSTOMER]
    assert before <= claims_.iat <= claims_.nbf <= int(time.time())
    assert claims_.exp - claims_.iat == settings.token_default_ttl_s
    # It is a plain HS256 JWT signed with the API secret: anyone holding the secret can check it.
    assert jwt.get_unverified_header(token)["alg"] == ALGORITHM == "HS256"
    decoded = jwt.decode(token, TEST_SECRET, algorithms=["HS256"], issuer=settings.api_key)
    assert decoded["sub"] == "alice" and decoded["grants"] == ROLE_DEFAULT_GRANTS[Role.CUSTOMER].model_dump()


def test_mint_with_explicit_grants_and_ttl(settings: Settings) -> None:
    grants = Grants(can_subscribe=True, hidden=True)
    token = mint_token(settings, room=ROOM, identity="bob", role=Role.HOST, grants=grants, ttl_s=60)
    verified = verify_token(settings, token)
    assert verified.grants == grants  # not the host's defaults
    assert verified.exp - verified.iat == 60


def test_grants_default_to_deny() -> None:
    assert Grants() == Grants(
        can_publish=False, can_subscribe=False, can_chat=False, room_admin=False, hidden=False, room_create=False
    )
    assert not ROLE_DEFAULT_GRANTS[Role.VIEWER].can_publish


def test_a_token_for_another_server_is_refused(settings: Settings) -> None:
    other = make_settings(api_secret="other-server-secret-" + "z" * 40)
    token = mint_token(other, room=ROOM, identity="alice", role=Role.CUSTOMER)
    with pytest.raises(VitrineError) as info:
        verify_token(settings, token)
    assert info.value.code == ErrorCode.INVALID_TOKEN


@pytest.mark.parametrize("name", TOKEN_CASES)
def test_verify_token_refuses(settings: Settings, leak_guard: LeakGuard, name: str) -> None:
    token, code = bad_token(name, settings, leak_guard)
    with pytest.raises(VitrineError) as info:
        verify_token(settings, token)
    error = info.value
    assert error.code == code
    # The error never carries the token, nor PyJWT's exception (which could).
    assert not token.strip() or token not in str(error)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.mark.parametrize("token", [None, b"bytes.are.not", 42, "x" * 8193], ids=["none", "bytes", "int", "over_8k"])
def test_verify_token_refuses_non_tokens(settings: Settings, token: Any) -> None:
    with pytest.raises(VitrineError) as info:
        verify_token(settings, token)
    assert info.value.code == ErrorCode.INVALID_TOKEN


@pytest.mark.parametrize(
    ("expired_s_ago", "code"), [(30, None), (59, None), (61, "token_expired"), (120, "token_expired")]
)
def test_leeway_is_sixty_seconds(settings: Settings, expired_s_ago: int, code: str | None) -> None:
    assert settings.token_leeway_s == 60
    token = signed(claims(settings, exp=int(time.time()) - expired_s_ago, iat=0, nbf=0))
    if code is None:
        assert verify_token(settings, token).sub == "mallory"
    else:
        with pytest.raises(VitrineError) as info:
            verify_token(settings, token)
        assert info.value.code == code


def test_an_empty_grants_object_means_no_grants(settings: Settings) -> None:
    verified = verify_token(settings, signed(claims(settings, grants={})))
    assert verified.grants == Grants()
    assert isinstance(verified, JoinClaims)


# -- the registered claims JWT libraries add (docs/tokens.md) ---------------------------------------------

PUBLIC_URL = "https://video.shop.example"


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"jti": "6f1c0e0a-2a8e-4c53-9d0f-5f3b1e2a7c11"}, id="jti"),
        pytest.param({"aud": "vitrine:join"}, id="aud_join"),
        pytest.param({"aud": PUBLIC_URL}, id="aud_public_url"),
        pytest.param({"aud": "shop-backend-7"}, id="aud_configured"),
        pytest.param({"aud": ["https://billing.example", "vitrine:join"]}, id="aud_list_naming_us"),
        pytest.param({"jti": "n-1", "aud": PUBLIC_URL, "iat": time.time(), "nbf": time.time()}, id="fractional_dates"),
    ],
)
def test_registered_claims_are_accepted(extra: dict[str, Any]) -> None:
    settings = make_settings(public_url=PUBLIC_URL + "/", token_audiences="shop-backend-7")
    verified = verify_token(settings, signed(claims(settings, **extra)))
    assert (verified.sub, verified.room, verified.role) == ("mallory", ROOM, Role.HOST)
    assert verified.grants.room_create is True
    assert verified.jti == extra.get("jti") and verified.aud == extra.get("aud")
    assert isinstance(verified.iat, int) and isinstance(verified.nbf, int)


def test_fractional_dates_are_floored(settings: Settings) -> None:
    exp = time.time() + 600.75
    verified = verify_token(settings, signed(claims(settings, exp=exp)))
    assert verified.exp == int(exp)


def test_the_public_url_is_an_audience_only_when_configured(settings: Settings) -> None:
    assert settings.public_url is None
    with pytest.raises(VitrineError) as info:
        verify_token(settings, signed(claims(settings, aud=PUBLIC_URL)))
    assert info.value.code == ErrorCode.INVALID_TOKEN


@pytest.mark.parametrize("audience", ["vitrine:desk", "vitrine:inspect-buyer", "vitrine:anything"])
def test_vitrine_audiences_cannot_be_configured_as_join_audiences(audience: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        make_settings(token_audiences=[audience])


def test_join_and_desk_tokens_do_not_open_each_other(settings: Settings) -> None:
    """A join token that names its audience is still no console login, and a console login joins nothing."""
    join = signed(claims(settings, aud="vitrine:join", jti="j-1"))
    with pytest.raises(VitrineError) as info:
        verify_desk_token(settings, join, "agent")
    assert info.value.code == ErrorCode.INVALID_TOKEN
    desk = mint_desk_token(settings, shop="acme", subject="ana", role="agent", ttl_s=600)
    with pytest.raises(VitrineError) as info:
        verify_token(settings, desk)
    assert info.value.code == ErrorCode.INVALID_TOKEN


def test_a_console_token_minted_by_a_library_is_accepted(settings: Settings) -> None:
    now = time.time()
    token = signed(
        {"iss": settings.api_key, "aud": "vitrine:desk", "sub": "ana", "shop": "acme", "role": "agent"}
        | {"exp": now + 600, "iat": now, "nbf": now, "jti": "c-1"}
    )
    verified = verify_desk_token(settings, token, "agent")
    assert (verified.sub, verified.shop, verified.jti) == ("ana", "acme", "c-1")
    with pytest.raises(VitrineError) as info:
        verify_desk_token(settings, token, "host")
    assert info.value.code == ErrorCode.PERMISSION_DENIED


# -- the WebSocket join ----------------------------------------------------------------------------


@pytest.fixture
async def probes() -> AsyncIterator[list[Probe]]:
    created: list[Probe] = []
    yield created
    for probe in reversed(created):
        await probe.close()


async def _opened(server: RunningServer, probes: list[Probe], token: str = "") -> Probe:
    probe = Probe(server, token)
    probes.append(probe)
    await probe.open()
    return probe


async def _rooms(server: RunningServer) -> list[str]:
    async with server.api() as api:
        response = await api.get("/v1/rooms")
    assert response.status_code == 200, response.text
    return [room["name"] for room in response.json()]


@pytest.mark.parametrize("name", TOKEN_CASES)
async def test_websocket_join_refuses(
    server: RunningServer, probes: list[Probe], leak_guard: LeakGuard, name: str
) -> None:
    token, code = bad_token(name, server.settings, leak_guard)
    probe = await _opened(server, probes)
    refused = await probe.join(token)
    assert refused["type"] == "error", refused
    assert (refused["code"], refused.get("ref")) == (code, "join")
    assert not token.strip() or token not in refused["message"]
    await probe.assert_alive()
    assert await _rooms(server) == []  # the forged room_create grant created nothing
    # The same socket can still join with a good token.
    good = leak_guard.watch(server.token(ROOM, "alice", Role.CUSTOMER))
    joined = await probe.join(good)
    assert joined["type"] == "joined" and joined["participant"]["identity"] == "alice", joined


async def test_websocket_token_over_the_message_limit(server: RunningServer, probes: list[Probe]) -> None:
    """Over 8 KiB the join message itself is invalid (``join.token`` is capped by the protocol)."""
    probe = await _opened(server, probes)
    refused = await probe.join("x" * 8193)
    assert (refused["type"], refused["code"]) == ("error", "invalid_message"), refused
    await probe.assert_alive()


async def test_websocket_accepts_a_token_expired_within_the_leeway(
    server: RunningServer, probes: list[Probe], leak_guard: LeakGuard
) -> None:
    token = leak_guard.watch(signed(claims(server.settings, exp=int(time.time()) - 30, iat=0, nbf=0)))
    probe = await _opened(server, probes)
    joined = await probe.join(token)
    assert joined["type"] == "joined", joined
    assert joined["room"]["name"] == ROOM and joined["participant"]["identity"] == "mallory"


async def test_a_token_with_jti_and_aud_joins_and_publishes(
    server: RunningServer, probes: list[Probe], leak_guard: LeakGuard
) -> None:
    """What a JWT library's defaults produce gets into the room, over the WebSocket and over WHIP."""
    token = leak_guard.watch(signed(claims(server.settings, aud="vitrine:join", jti="a1b2c3d4-0001")))
    probe = await _opened(server, probes)
    joined = await probe.join(token)
    assert joined["type"] == "joined", joined
    assert joined["room"]["name"] == ROOM and joined["participant"]["identity"] == "mallory"
    other = leak_guard.watch(signed(claims(server.settings, sub="obs", aud=["vitrine:join"], jti="a1b2c3d4-0002")))
    created = await _post(server, "whip", ROOM, await publisher_offer(), {"Authorization": _authorization(other)})
    assert created.status_code == 201, created.text
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        gone = await http.delete(created.headers["location"], headers={"Authorization": _authorization(other)})
    assert gone.status_code == 200


# -- WHIP and WHEP -----------------------------------------------------------------------------------


def _authorization(token: str) -> bytes:
    # Bytes, since httpx refuses a non-ASCII str header; no trailing space, which is not a legal header value.
    return (b"Bearer " + token.encode()).rstrip()


async def _post(server: RunningServer, kind: str, room: str, sdp: str, headers: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        return await http.post(f"/{kind}/{room}", content=sdp, headers={"Content-Type": "application/sdp", **headers})


@pytest.mark.parametrize("name", TOKEN_CASES)
async def test_whip_and_whep_refuse(server: RunningServer, leak_guard: LeakGuard, name: str) -> None:
    token, code = bad_token(name, server.settings, leak_guard)
    offers = {"whip": await publisher_offer(), "whep": await publisher_offer(recvonly=True)}
    for kind, sdp in offers.items():
        response = await _post(server, kind, ROOM, sdp, {"Authorization": _authorization(token)})
        assert response.status_code == 401, (kind, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["code"] == code, (kind, response.text)
    assert await _rooms(server) == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no_authorization"),
        pytest.param({"Authorization": "Bearer"}, id="bearer_without_token"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"testkey:" + SECRET).decode()}, id="api_key_as_basic"
        ),
        pytest.param({"Authorization": "Bearer " + TEST_SECRET}, id="api_secret_as_bearer"),
        pytest.param({"Authorization": "Token abc.def.ghi"}, id="other_scheme"),
    ],
)
async def test_whip_without_a_join_token(server: RunningServer, headers: dict[str, str]) -> None:
    response = await _post(server, "whip", ROOM, await publisher_offer(), headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"
    assert await _rooms(server) == []


async def test_whip_accepts_a_token_expired_within_the_leeway(server: RunningServer, leak_guard: LeakGuard) -> None:
    token = leak_guard.watch(signed(claims(server.settings, exp=int(time.time()) - 30, iat=0, nbf=0)))
    response = await _post(server, "whip", ROOM, await publisher_offer(), {"Authorization": _authorization(token)})
    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith(f"/whip/{ROOM}/")
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        gone = await http.delete(response.headers["location"], headers={"Authorization": _authorization(token)})
    assert gone.status_code == 200


async def test_a_token_for_another_room_is_refused(server: RunningServer, leak_guard: LeakGuard) -> None:
    token = leak_guard.watch(server.token(ROOM, "obs", Role.HOST))
    header = {"Authorization": _authorization(token)}
    for kind, sdp in (("whip", await publisher_offer()), ("whep", await publisher_offer(recvonly=True))):
        response = await _post(server, kind, OTHER_ROOM, sdp, header)
        assert response.status_code == 403, (kind, response.text)
        assert response.json()["code"] == "permission_denied"
    assert await _rooms(server) == []

    # A session it does own, in its own room, cannot be reached through the other room's path either.
    created = await _post(server, "whip", ROOM, await publisher_offer(), header)
    assert created.status_code == 201, created.text
    sid = created.headers["location"].rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        trickle = await http.patch(
            f"/whip/{OTHER_ROOM}/{sid}",
            content="a=end-of-candidates\r\n",
            headers={**header, "Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert trickle.status_code == 403 and trickle.json()["code"] == "permission_denied"
        stop = await http.delete(f"/whip/{OTHER_ROOM}/{sid}", headers=header)
        assert stop.status_code == 403 and stop.json()["code"] == "permission_denied"
        assert (await http.delete(created.headers["location"], headers=header)).status_code == 200
    assert await _rooms(server) == [ROOM]


# -- grants default to deny --------------------------------------------------------------------------


@pytest.fixture
async def publisher(server: RunningServer, leak_guard: LeakGuard) -> AsyncIterator[VitrineClient]:
    """A host publishing audio and video in ROOM, and a viewer proving the media flows."""
    host = VitrineClient(server.url, leak_guard.watch(server.token(ROOM, "host", Role.HOST)), tracks=av_tracks())
    viewer = VitrineClient(server.url, leak_guard.watch(server.token(ROOM, "viewer", Role.VIEWER, create=False)))
    counter = None
    try:
        await host.connect()
        await viewer.connect()
        counter = FrameCounter((await remote_tracks(viewer, 2, timeout=WAIT_S))["video"])
        await counter.more(5)
        yield host
    finally:
        if counter is not None:
            counter.stop()
        await viewer.close()
        await host.close()


def _stats(server: RunningServer) -> dict[str, int]:
    assert server.runtime is not None and server.runtime.media_worker is not None
    return server.runtime.media_worker.media_stats()


async def test_empty_grants_join_but_neither_publish_nor_subscribe(
    server: RunningServer, publisher: VitrineClient, probes: list[Probe], leak_guard: LeakGuard
) -> None:
    token = leak_guard.watch(signed(claims(server.settings, sub="nobody", role="customer", grants={})))
    before = _stats(server)
    probe = await _opened(server, probes, token)
    joined = await probe.join(token)
    assert joined["type"] == "joined", joined
    assert joined["grants"] == Grants().model_dump()
    assert len(joined["tracks"]) == 2  # it may see what is published...
    await probe.assert_alive()  # ...but a join offer would have come before this pong
    assert "offer" not in probe.history and probe.negotiations == 0, probe.history
    after = _stats(server)
    assert (after["participants"], after["subscriptions"]) == (before["participants"] + 1, before["subscriptions"])

    await probe.send_json({"type": "publish", "tracks": [{"kind": "video"}]})
    await probe.expect_error("permission_denied", ref="publish")
    await probe.send_json({"type": "offer", "sdp": await publisher_offer()})
    await probe.expect_error("permission_denied", ref="offer")
    await probe.assert_alive()
    assert _stats(server)["published_tracks"] == before["published_tracks"]

    # Another identity: a refused join with the same one would disturb the first (see test_bad_input).
    other = leak_guard.watch(signed(claims(server.settings, sub="nobody-2", role="customer", grants={})))
    second = await _opened(server, probes)
    refused = await second.join(other, publish=[{"kind": "audio"}])
    assert (refused["type"], refused.get("code"), refused.get("ref")) == ("error", "permission_denied", "join")

    for kind, sdp in (("whip", await publisher_offer()), ("whep", await publisher_offer(recvonly=True))):
        response = await _post(server, kind, ROOM, sdp, {"Authorization": _authorization(token)})
        assert response.status_code == 403, (kind, response.text)
        assert response.json()["code"] == "permission_denied"


async def test_empty_grants_cannot_subscribe_with_their_own_offer(
    server: RunningServer, publisher: VitrineClient, probes: list[Probe], leak_guard: LeakGuard
) -> None:
    token = leak_guard.watch(signed(claims(server.settings, sub="nobody", role="viewer", grants={})))
    probe = await _opened(server, probes, token)
    joined = await probe.join(token)
    assert joined["type"] == "joined" and joined["grants"]["can_subscribe"] is False, joined
    before = _stats(server)["subscriptions"]
    await probe.send_json({"type": "offer", "sdp": await publisher_offer(recvonly=True)})
    reply = await probe.expect("answer", "error")
    if reply["type"] == "error":
        assert reply["code"] == "permission_denied", reply
    else:
        directions = [line for line in reply["sdp"].splitlines() if line in ("a=sendonly", "a=sendrecv")]
        assert directions == [], f"the server sends media to a token without can_subscribe: {directions}"
    assert _stats(server)["subscriptions"] == before
    await probe.assert_alive()


# -- the REST API's Basic credentials ----------------------------------------------------------------

REST_CALLS = [
    pytest.param("GET", "/v1/rooms", None, id="list_rooms"),
    pytest.param("POST", "/v1/rooms", {"name": "made-by-mallory"}, id="create_room"),
    pytest.param("GET", f"/v1/rooms/{ROOM}", None, id="get_room"),
    pytest.param("DELETE", f"/v1/rooms/{ROOM}", None, id="close_room"),
    pytest.param("POST", "/v1/tokens", {"room": ROOM, "identity": "mallory", "role": "host"}, id="mint_token"),
]


def _basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


BAD_CREDENTIALS = [
    pytest.param({}, id="none"),
    pytest.param({"Authorization": _basic(b"testkey", b"wrong-secret")}, id="wrong_secret"),
    pytest.param({"Authorization": _basic(b"wrongkey", SECRET)}, id="wrong_key"),
    pytest.param({"Authorization": _basic(b"testkey", b"")}, id="empty_secret"),
    pytest.param({"Authorization": _basic(b"testkey", SECRET[:-1])}, id="secret_prefix"),
    pytest.param({"Authorization": _basic(SECRET, b"testkey")}, id="swapped"),
    pytest.param({"Authorization": "Bearer " + TEST_SECRET}, id="secret_as_bearer"),
]


@pytest.mark.parametrize(("method", "path", "body"), REST_CALLS)
@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
async def test_rest_api_refuses_bad_credentials(
    server: RunningServer, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> None:
    async with server.api() as api:
        created = await api.post("/v1/rooms", json={"name": ROOM})
        assert created.status_code == 201, created.text
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        response = await http.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"
    assert await _rooms(server) == [ROOM]  # nothing was created or closed


async def test_a_join_token_is_not_an_api_credential(server: RunningServer, leak_guard: LeakGuard) -> None:
    token = leak_guard.watch(server.token(ROOM, "admin", Role.HOST, grants=Grants(room_admin=True, room_create=True)))
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        response = await http.get("/v1/rooms", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"


async def test_rest_api_accepts_the_right_credentials(server: RunningServer, leak_guard: LeakGuard) -> None:
    async with server.api() as api:
        assert (await api.post("/v1/rooms", json={"name": ROOM})).status_code == 201
        assert [r["name"] for r in (await api.get("/v1/rooms")).json()] == [ROOM]
        minted = await api.post("/v1/tokens", json={"room": ROOM, "identity": "alice", "role": "customer"})
    assert minted.status_code == 200, minted.text
    token = leak_guard.watch(minted.json()["token"])
    assert verify_token(server.settings, token).sub == "alice"


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic !!!not-base64!!!", id="not_base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon-here").decode(), id="no_colon"),
    ],
)
async def test_rest_api_malformed_basic_credentials_get_a_code(server: RunningServer, authorization: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        response = await http.get("/v1/rooms", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json().get("code") == "invalid_token", response.text


async def test_media_survives_a_burst_of_bad_tokens(
    server: RunningServer, publisher: VitrineClient, probes: list[Probe], leak_guard: LeakGuard
) -> None:
    """Every bad token in a row on one socket: each refused, the room's media unaffected."""
    listener = VitrineClient(server.url, leak_guard.watch(server.token(ROOM, "listener", Role.VIEWER, create=False)))
    try:
        await listener.connect()
        counter = FrameCounter((await remote_tracks(listener, 2, timeout=WAIT_S))["video"])
        probe = await _opened(server, probes)
        for name in BAD_TOKENS:
            token, code = bad_token(name, server.settings, leak_guard)
            refused = await probe.join(token)
            assert (refused["type"], refused.get("code")) == ("error", code), (name, refused)
        await probe.assert_alive()
        try:
            await counter.more(10)
        finally:
            counter.stop()
        assert sorted(p["identity"] for p in (await asyncio.wait_for(_detail(server), WAIT_S))["participants"]) == [
            "host",
            "listener",
            "viewer",
        ]
    finally:
        await listener.close()


async def _detail(server: RunningServer) -> dict[str, Any]:
    async with server.api() as api:
        return (await api.get(f"/v1/rooms/{ROOM}")).json()


async def test_the_leak_guard_is_not_blind(
    server: RunningServer, leak_guard: LeakGuard, caplog: pytest.LogCaptureFixture
) -> None:
    """The check this module ends every test with does see server loggers, uvicorn's, and unwatched JWTs."""
    token = leak_guard.watch(server.token(ROOM, "canary", Role.HOST))
    logging.getLogger("signaling.session").debug("canary %s", token)
    with pytest.raises(AssertionError, match="signaling.session"):
        leak_guard.check()
    caplog.clear()

    logging.getLogger("uvicorn.error").error("canary %s", TEST_SECRET)  # uvicorn's loggers do not propagate
    with pytest.raises(AssertionError, match="uvicorn.error"):
        leak_guard.check()
    leak_guard.collector.records.clear()

    unwatched = mint_token(server.settings, room=ROOM, identity="someone", role=Role.VIEWER)
    logging.getLogger("media.worker").info("canary %s", unwatched)
    with pytest.raises(AssertionError, match="media.worker"):
        leak_guard.check()
    caplog.clear()
    leak_guard.check()
