"""Logs an operator can follow: JSON lines with node, request, room and participant ids, and no secret anywhere."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.client import VitrineClient
from tests.metrics_helpers import SIGNALING_NODE, WORKER_NODE, scaled_cluster
from tests.servers import TEST_SECRET, ProcessGroup, RunningServer, free_port, make_settings, wait_healthy
from vitrine.core import logs

REQUIRED = {"timestamp", "level", "logger", "message", "node"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
URL_SECRET = "URLSECRET-a1b2c3d4e5"


def json_lines(output: str) -> Iterator[dict[str, object]]:
    """Every line of a process's output, each of which must be one JSON object with the required fields."""
    for line in output.splitlines():
        if not line.strip() or line.startswith("--- "):  # ProcessGroup.output's header of each log
            continue
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(record, dict) and REQUIRED <= record.keys(), record
        yield record


async def test_json_logs_carry_request_room_and_participant(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "VITRINE_API_KEY": "testkey",
        "VITRINE_API_SECRET": TEST_SECRET,
        "VITRINE_LOG_FORMAT": "json",
        "VITRINE_NODE_ID": "node-logs",
        "VITRINE_MEDIA_WORKERS": "2",
        "VITRINE_RTC_INTERFACES": "127.0.0.1",
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "VITRINE_RECORDINGS_DIR": str(tmp_path / "recordings"),
    }
    server = RunningServer(settings=make_settings(port=port), url=f"http://127.0.0.1:{port}")
    join_token = server.token("logs-room", "alice")
    with ProcessGroup(env).running() as group:
        group.start("serve", "--port", str(port))
        await wait_healthy(server.url, group)
        async with httpx.AsyncClient(base_url=server.url) as http:
            traced = await http.get("/healthz", headers={"X-Request-ID": "trace-42"})
            refused = await http.get(f"/v1/rooms/missing?token={URL_SECRET}", auth=("testkey", TEST_SECRET))
            forged = await http.get("/healthz", headers={"X-Request-ID": "x" * 200})
        assert traced.headers["x-request-id"] == "trace-42"
        assert GENERATED_ID.fullmatch(refused.headers["x-request-id"]), refused.headers
        assert GENERATED_ID.fullmatch(forged.headers["x-request-id"]), "an overlong id is replaced"
        client = VitrineClient(server.url, join_token)
        joined = await client.connect()
        sid = joined["participant"]["sid"]
        await client.close()
        group.stop()
        records = list(json_lines(group.output()))

    assert {r["node"] for r in records} == {"node-logs", "node-logs-0", "node-logs-1"}  # the worker processes' too
    output = group.output()
    for secret in (TEST_SECRET, URL_SECRET, join_token):
        assert secret not in output
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r.get("request_id") == "trace-42" and "/healthz" in str(r["message"]) for r in access), access
    refused_line = next(r for r in access if "/v1/rooms/missing" in str(r["message"]))
    assert refused_line["request_id"] == refused.headers["x-request-id"]
    assert "token=[redacted]" in str(refused_line["message"])
    join = next(r for r in records if str(r["message"]).startswith("participant joined"))
    assert (join["room"], join["participant"]) == ("logs-room", sid)
    assert GENERATED_ID.fullmatch(str(join["request_id"])), "the socket's request id"
    assert not [r for r in records if r["level"] in ("error", "critical")], records


async def test_scaled_worker_logs_json_with_its_node(redis_db_url: str, tmp_path: Path) -> None:
    async with scaled_cluster(redis_db_url, tmp_path, VITRINE_LOG_FORMAT="json") as cluster:
        client = VitrineClient(cluster.server.url, cluster.server.token("logs-scaled", "bob"))
        joined = await client.connect()
        await client.close()
        cluster.signaling.stop()
        cluster.worker.stop()
        worker_lines = list(json_lines(cluster.worker.output()))
        signaling_lines = list(json_lines(cluster.signaling.output()))
    assert {r["node"] for r in worker_lines} == {WORKER_NODE}
    assert {r["node"] for r in signaling_lines} == {SIGNALING_NODE}
    assert any(str(r["message"]).startswith("serving /metrics") for r in worker_lines)
    join = next(r for r in signaling_lines if str(r["message"]).startswith("participant joined"))
    assert (join["room"], join["participant"]) == ("logs-scaled", joined["participant"]["sid"])


def _handler(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(logs.ContextFilter("n1"))
    logger = logging.getLogger(f"tests.logs.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, stream


async def test_ids_stay_in_their_task_and_tracebacks_are_redacted() -> None:
    logger, stream = _handler(logs.JsonLinesFormatter())

    async def in_a_call() -> None:
        logs.bind(room="r1", participant="PA_1")
        logger.info("inside")

    await asyncio.create_task(in_a_call())
    logger.info("outside")  # the task's ids did not leak into its parent
    try:
        raise RuntimeError('fetching https://x.example/b?sig=SIGSECRET\\"&token=TOKSECRET failed')
    except RuntimeError:
        logger.exception("with a traceback")
    inside, outside, failed = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["room"], inside["participant"], inside["node"]) == ("r1", "PA_1", "n1")
    assert "room" not in outside and "participant" not in outside
    assert "SIGSECRET" not in stream.getvalue() and "TOKSECRET" not in stream.getvalue()
    assert "RuntimeError" in failed["exc_info"]


def test_text_lines_end_with_the_ids() -> None:
    logger, stream = _handler(logs.TextFormatter())

    def in_a_request() -> None:
        logs.bind(room="r2")
        logger.info("hello ?token=T0KEN")

    contextvars.copy_context().run(in_a_request)  # not this thread's context: later tests would inherit the room
    assert stream.getvalue().rstrip().endswith(f"INFO {logger.name}: hello ?token=[redacted] [room=r2]")
