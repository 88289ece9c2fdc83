"""The ``vitrine`` command as a user runs it: real subprocesses."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import httpx

from tests.servers import TEST_SECRET, free_port
from vitrine.core.auth import verify_token
from vitrine.core.config import Settings

BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitrine.cli", *args],
        env={**BASE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_token_prints_only_a_verifiable_token() -> None:
    env = {"VITRINE_API_KEY": "shop", "VITRINE_API_SECRET": TEST_SECRET}
    result = run_cli(
        "token", "--room", "consult-9", "--identity", "alice", "--role", "customer", "--create", "--ttl", "600", env=env
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    claims = verify_token(Settings(api_key="shop", api_secret=TEST_SECRET), lines[0])
    assert (claims.room, claims.sub, claims.role.value) == ("consult-9", "alice", "customer")
    assert claims.grants.room_create and claims.grants.can_publish
    assert claims.exp - claims.iat == 600


def test_token_without_create_cannot_create() -> None:
    env = {"VITRINE_API_SECRET": TEST_SECRET}
    result = run_cli("token", "--room", "r", "--identity", "v", "--role", "viewer", env=env)
    claims = verify_token(Settings(api_secret=TEST_SECRET), result.stdout.strip())
    assert not claims.grants.room_create and not claims.grants.can_publish and claims.grants.can_subscribe


def test_refuses_missing_or_placeholder_secret() -> None:
    for secret in (None, "changeme", "short"):
        env = {"VITRINE_API_SECRET": secret} if secret else {}
        token = run_cli("token", "--room", "r", "--identity", "a", "--role", "customer", env=env)
        assert token.returncode != 0 and "VITRINE_API_SECRET" in token.stderr and token.stdout == ""
        serve = run_cli("serve", "--port", str(free_port()), env=env, timeout=60)
        assert serve.returncode != 0 and "VITRINE_API_SECRET" in serve.stderr


def test_bad_configuration_is_reported() -> None:
    result = run_cli("serve", env={"VITRINE_API_SECRET": TEST_SECRET, "VITRINE_RTC_PORT_MIN": "50000"})
    assert result.returncode != 0 and "VITRINE_RTC_PORT_MAX" in result.stderr


def test_scaled_pieces_require_redis() -> None:
    for command in ("signaling", "media"):
        result = run_cli(command, env={"VITRINE_API_SECRET": TEST_SECRET})
        assert result.returncode != 0 and "VITRINE_REDIS_URL" in result.stderr


async def test_serve_dev_generates_a_secret_once_and_becomes_healthy() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitrine.cli", "serve", "--dev", "--port", str(port)],
        env={**BASE_ENV, "VITRINE_LOG_LEVEL": "warning"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first_line = await asyncio.to_thread(proc.stdout.readline)
        while "VITRINE_API_SECRET=" not in first_line:
            assert first_line, "serve --dev exited without printing a secret"
            first_line = await asyncio.to_thread(proc.stdout.readline)
        secret = re.search(r"VITRINE_API_SECRET=(\S+)", first_line).group(1)
        assert len(secret) >= 32
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("serve --dev never became healthy")
            rooms = await client.get(f"http://127.0.0.1:{port}/v1/rooms", auth=("vitrine", secret))
            assert rooms.status_code == 200 and rooms.json() == []
            page = await client.get(f"http://127.0.0.1:{port}/")
            assert page.status_code == 200 and "vitrine-client.js" in page.text
    finally:
        proc.terminate()
        output, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    assert secret not in output, "the generated secret is printed once, never logged again"


def test_loadtest_is_a_vitrine_subcommand() -> None:
    result = run_cli("loadtest", "run", "--help")
    assert result.returncode == 0 and "--scenario" in result.stdout and "--loss" in result.stdout
