"""Limits a stranger meets before any route runs: body size, slow headers, connections per address, and
what the access log keeps of a signed URL. Raw sockets, so the test controls every byte and pause."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import websockets

from signaling.metrics import METRICS
from tests.servers import RunningServer, embedded_server

WAIT_S = 10.0


def _refused(reason: str) -> float:
    return METRICS.registry.get_sample_value("vitrine_http_refused_total", {"reason": reason}) or 0.0


async def _open(server: RunningServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.settings.port)


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One whole response, then the connection must be closed by the server (EOF)."""
    raw = await asyncio.wait_for(reader.read(), WAIT_S)  # until EOF
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_a_declared_oversized_body_is_refused_before_authentication_and_unread() -> None:
    async with embedded_server() as server:
        for path in ("/v1/shops", "/whip/some-room", "/v1/inspect/redeem"):
            before = _refused("message_too_large")
            reader, writer = await _open(server)
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {200 * 1024 * 1024}\r\n\r\n".encode()
            )  # and not one byte of it
            status, headers, body = await _response(reader)
            writer.close()
            assert (status, json.loads(body)["code"]) == (413, "message_too_large"), path  # not 401: no auth ran
            assert headers["connection"] == "close"
            assert _refused("message_too_large") == before + 1


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit() -> None:
    limit = 64 * 1024
    async with embedded_server(max_body_bytes=limit) as server:
        reader, writer = await _open(server)
        writer.write(
            b"PUT /v1/shops/acme/products/mug-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 4096
        sent = 0
        answer = asyncio.ensure_future(_response(reader))
        try:
            while not answer.done() and sent < 100 * limit:  # a client that would send 6.4 MB
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent += len(chunk)
                await asyncio.wait({answer}, timeout=0.01)
        except ConnectionError:
            pass  # the server closed the connection while we were still sending
        status, _, body = await answer
        writer.close()
        assert (status, json.loads(body)["code"]) == (413, "message_too_large")
        assert sent < 100 * limit  # refused on the way, not after the whole body


async def test_slow_request_headers_are_cut_off_on_new_and_kept_alive_connections() -> None:
    async with embedded_server(http_read_timeout_s=0.5) as server:
        before = _refused("header_timeout")
        reader, writer = await _open(server)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and the headers never end
        started = time.monotonic()
        status, _, _ = await _response(reader)
        assert status == 408 and time.monotonic() - started < WAIT_S

        reader, writer = await _open(server)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
        assert first.startswith(b"HTTP/1.1 200")
        length = int(
            next(line.split(b":")[1] for line in first.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        await reader.readexactly(length)
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # the kept-alive connection's next request stalls
        status, _, _ = await _response(reader)
        assert status == 408
        assert _refused("header_timeout") == before + 2


async def test_connections_per_client_address_are_capped_websockets_included() -> None:
    async with embedded_server(max_connections_per_client=3) as server:
        held = [await _open(server) for _ in range(2)]
        for _, writer in held:
            writer.write(b"GET /healthz HTTP/1.1\r\n")  # half-sent, as an attacker would
        socket = await websockets.connect(server.ws_url, open_timeout=WAIT_S)  # the third
        before = _refused("too_many_connections")
        reader, writer = await _open(server)
        status, _, _ = await _response(reader)
        assert status == 503 and _refused("too_many_connections") == before + 1

        await socket.close()  # a closed WebSocket gives its place back
        deadline = time.monotonic() + WAIT_S
        while True:
            reader, writer = await _open(server)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, _ = await _response(reader)
            if status == 200:
                break
            assert time.monotonic() < deadline, "the WebSocket's place was never released"
            await asyncio.sleep(0.05)
        for _, writer in held:
            writer.close()


async def test_signed_urls_and_tokens_are_redacted_from_the_access_log() -> None:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    async with embedded_server() as server:
        keep, level = Keep(), access.level
        access.addHandler(keep)
        access.setLevel(logging.INFO)
        try:
            reader, writer = await _open(server)
            writer.write(
                b"GET /v1/evidence/acme/case-1/bundle.zip?exp=1999999999&sig=S3CRETSIGNATURE HTTP/1.1\r\n"
                b"Host: x\r\nConnection: close\r\n\r\n"
            )
            status, _, _ = await _response(reader)
            reader, writer = await _open(server)
            writer.write(b"GET /healthz?token=S3CRETTOKEN&x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await _response(reader)
        finally:
            access.removeHandler(keep)
            access.setLevel(level)
    assert status == 401  # a wrong signature; what matters is the line logged for it
    assert len(lines) == 2, lines
    assert not any("S3CRET" in line for line in lines), lines
    assert "exp=1999999999&sig=[redacted]" in lines[0] and "token=[redacted]&x=1" in lines[1]
