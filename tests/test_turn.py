"""Per-session TURN REST credentials, in the form coturn's use-auth-secret checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from pydantic import ValidationError

from loadtest.client import VitrineClient
from tests.servers import embedded_server
from vitrine.core.config import Settings
from vitrine.core.turn import turn_credential

TURN_SECRET = "turn-secret-for-tests"


def test_credential_is_what_coturn_expects() -> None:
    username, credential = turn_credential(TURN_SECRET, "alice", ttl_s=600, now=1_000_000)
    assert username == "1000600:alice"
    expected = base64.b64encode(hmac.new(TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()
    assert credential == expected


def test_turn_settings_come_in_pairs() -> None:
    with pytest.raises(ValidationError, match="VITRINE_TURN_SECRET"):
        Settings(turn_urls=["turn:turn.example:3478"])


async def test_joined_carries_a_fresh_credential_per_session() -> None:
    async with embedded_server(
        turn_urls=["turn:127.0.0.1:3478?transport=udp"], turn_secret=TURN_SECRET, turn_credential_ttl_s=300
    ) as server:
        client = VitrineClient(server.url, server.token("turn-room", "bob"))
        try:
            joined = await client.connect()
        finally:
            await client.close()
    turn = [s for s in joined["ice_servers"] if s["urls"] == ["turn:127.0.0.1:3478?transport=udp"]]
    assert len(turn) == 1
    expiry, identity = turn[0]["username"].split(":")
    assert identity == "bob" and 0 < int(expiry) - time.time() <= 300
    digest = hmac.new(TURN_SECRET.encode(), turn[0]["username"].encode(), hashlib.sha1).digest()
    assert turn[0]["credential"] == base64.b64encode(digest).decode()
