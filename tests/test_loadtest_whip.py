"""The load-test harness over WHIP/WHEP (``--transport whip``): real runs, and bad server answers.

Real runs are small (at most 3 clients, a few seconds) and assert on counts and states, never on timings.
The bad-answer tests put a fake HTTP server in front of real aiortc peer connections: a refusal or a
broken 201 must become a counted failure with a short reason, never a crash and never a token in the record.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from loadtest import cli, scenarios
from loadtest.config import RunConfig
from loadtest.context import AgentContext, TokenSource
from loadtest.schema import load_schema, validate
from loadtest.whip_agent import WhipAgent
from tests.loadtest_helpers import RUN_TIMEOUT_S, assert_monotonic, harness


def _check_run(report: dict, clients: int) -> None:
    assert validate(report, load_schema()) == []
    assert report["config"]["transport"] == "whip"
    summary = report["summary"]
    assert summary["clients"] == clients
    assert summary["failures"]["count"] == 0, summary["failures"]
    assert summary["joined"] == clients
    assert set(summary["stages_ms"]) == {
        "token",
        "offer",
        "http_answer",
        "ice_connected",
        "connected",
        "first_rtp",
        "first_frame",
    }
    for client in report["clients"]:
        assert client["ok"], client["failure"]
        assert_monotonic(client, "whip")
        if client["watches"]:
            assert client["media"]["frames_delivered"] > 0
            assert client["media"]["glass_to_glass_ms"]["n"] > 0  # matched to the publisher it asked for
            assert client["whep_retries"] >= 0


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_consult_over_whip_and_whep(tmp_path: Path) -> None:
    code, report, output = harness(
        tmp_path,
        "--scenario",
        "consult",
        "--pairs",
        "1",
        "--transport",
        "whip",
        "--duration",
        "3",
        "--slo-join-p95",
        "100000",
    )
    assert code == cli.EXIT_OK, output[-4000:]
    _check_run(report, 2)
    customer, agent = report["clients"]
    assert customer["publishes"] and customer["watches"] and agent["publishes"] and agent["watches"]
    assert (customer["remote_identity"], agent["remote_identity"]) == (agent["identity"], customer["identity"])
    assert report["summary"]["media"]["subscribers"] == 2
    assert "over WHIP/WHEP" in (tmp_path / "report.md").read_text()


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_live_sale_watched_over_whep(tmp_path: Path) -> None:
    code, report, output = harness(
        tmp_path,
        "--scenario",
        "live",
        "--viewers",
        "2",
        "--transport",
        "whip",
        "--duration",
        "3",
        "--slo-join-p95",
        "100000",
    )
    assert code == cli.EXIT_OK, output[-4000:]
    _check_run(report, 3)
    host, *viewers = report["clients"]
    assert host["publishes"] and not host["watches"] and host["media"] is None
    assert host["join_ms"] == host["stages_ms"]["connected"]
    assert "remote_identity" not in host
    for viewer in viewers:
        assert viewer["remote_identity"] == host["identity"]
        assert viewer["join_ms"] == viewer["stages_ms"]["first_frame"]
        assert viewer["media"]["audio"] is not None


# -- bad answers ---------------------------------------------------------------------------------

SECRET = "s" * 40


def _refuse_track_not_found(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"code": "track_not_found", "message": "nothing is published in this room yet"})


def _html_500(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, text="<html>upstream error</html>", headers={"content-type": "text/html"})


def _no_location(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, text="v=0\r\n", headers={"content-type": "application/sdp"})


def _garbage_answer(request: httpx.Request) -> httpx.Response:
    if request.method == "DELETE":
        return httpx.Response(200)
    return httpx.Response(
        201, text="not an SDP", headers={"content-type": "application/sdp", "location": f"{request.url.path}/PA_fake"}
    )


async def _run_one(role: str, handler, requests: list[httpx.Request]) -> dict:
    config = RunConfig(
        scenario="inspection",
        embedded=True,
        pairs=1,
        transport="whip",
        source="live",
        audio=False,
        join_timeout_s=2.0,
        video_width=64,
        video_height=48,
    )
    _, clients = scenarios.build(config, "bad")
    spec = next(c for c in clients if c.role == role)
    tokens = TokenSource("http://vitrine.test", "key", SECRET, mint_locally=True)
    ctx = AgentContext(config, "http://vitrine.test", tokens, lambda client, event: None)
    await ctx.http.aclose()

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    ctx.http = httpx.AsyncClient(base_url="http://vitrine.test", transport=httpx.MockTransport(record))
    task = asyncio.create_task(WhipAgent(spec, ctx).run())
    ctx.go(1, time.monotonic())
    ctx.set_hold_end(time.monotonic())
    try:
        result = await asyncio.wait_for(task, 30)
    finally:
        await ctx.close()
    text = json.dumps(result)
    assert "eyJ" not in text and "Bearer" not in text  # no join token (a JWT starts with eyJ) in the record
    return result


@pytest.mark.parametrize(
    ("role", "handler", "stage", "reason"),
    [
        ("buyer", _html_500, "http_answer", "whip: HTTP 500"),
        ("buyer", _no_location, "http_answer", "whip: 201 without a Location"),
        ("buyer", _garbage_answer, "http_answer", "whip: answer rejected (ValueError)"),
        ("inspector", _refuse_track_not_found, "http_answer", "whep: track_not_found"),
    ],
)
async def test_a_bad_answer_is_a_counted_failure(role, handler, stage: str, reason: str) -> None:
    requests: list[httpx.Request] = []
    record = await _run_one(role, handler, requests)
    assert record["ok"] is False and record["join_ms"] is None
    assert record["failure"] == {"stage": stage, "reason": reason}
    posts = [r for r in requests if r.method == "POST"]
    assert all(
        r.headers["content-type"] == "application/sdp" and "a=candidate:" in r.content.decode() for r in posts
    )  # non-trickle: every candidate gathered before the POST
    if role == "inspector":  # WHEP was retried within the join timeout, asking for the buyer by name
        assert record["whep_retries"] == len(posts) - 1 >= 2
        assert all(r.url.params["participant"] == "buyer-0" for r in posts)
    if handler is _garbage_answer:  # the server made a session: it is deleted
        assert [r.url.path for r in requests if r.method == "DELETE"] == [posts[0].url.path + "/PA_fake"]
