"""Oversized frames and deflate bombs on every WebSocket a stranger can open: ``/v1/rtc`` and both desk sockets.

A frame over the protocol's limit (``VITRINE_MAX_MESSAGE_BYTES``) but under the transport's gets a typed
``message_too_large`` and the socket goes on. A frame over the transport's cap (``WS_MAX_FRAME_BYTES``), sent
plain or compressed with permessage-deflate so that it only grows on the server, is refused by the
WebSocket layer with close code 1009 before it is held whole: the decompression stops at the cap. Each
case ends with a fresh socket that still gets its pong.
"""

from __future__ import annotations

import dataclasses
import json
import zlib

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from signaling.serving import WS_MAX_FRAME_BYTES
from tests.desk_helpers import DeskClient
from tests.servers import RunningServer

MESSAGE_TOO_BIG = 1009
BOMB_BYTES = 256 * 1024 * 1024  # 256 MiB once inflated


def socket_urls(server: RunningServer) -> list[str]:
    base = server.url.replace("http://", "ws://")
    return [server.ws_url, f"{base}/v1/consult/shopper", f"{base}/v1/consult/agent"]


async def assert_still_serving(url: str) -> None:
    client = await DeskClient.connect(url)
    try:
        await client.ws.send('{"type":"ping","ts":42}')
        assert await client.expect("pong", lambda m: m["ts"] == 42)
    finally:
        await client.close()


async def test_a_frame_over_the_protocol_limit_gets_a_typed_error_and_the_socket_goes_on(server: RunningServer) -> None:
    limit = server.settings.max_message_bytes
    for url in socket_urls(server):
        client = await DeskClient.connect(url)
        try:
            await client.ws.send(json.dumps({"type": "ping", "ts": 1, "pad": "x" * limit}))
            await client.ws.send('{"type":"ping","ts":2}')
            assert await client.expect("pong", lambda m: m["ts"] == 2)
            errors = client.of("error")
            assert [e["code"] for e in errors] == ["message_too_large"], url
            assert not client.of("pong") or all(m["ts"] == 2 for m in client.of("pong")), url
        finally:
            await client.close()


async def test_a_frame_over_the_transport_cap_closes_the_socket_with_1009(server: RunningServer) -> None:
    for url in socket_urls(server):
        async with websockets.connect(url, compression=None, max_size=None) as ws:
            await ws.send("x" * (WS_MAX_FRAME_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == MESSAGE_TOO_BIG, url
        await assert_still_serving(url)


async def test_a_deflate_bomb_is_cut_off_at_the_cap_and_the_server_goes_on(server: RunningServer) -> None:
    """256 MiB of spaces deflate to about 250 KiB: the frame on the wire is small, and only the server's
    inflating would make it large. It must stop at the cap and close, not inflate it all."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as permessage-deflate carries it
    chunk = b" " * (1024 * 1024)
    payload = b"".join(compressor.compress(chunk) for _ in range(BOMB_BYTES // len(chunk)))
    payload += compressor.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(b"\x00\x00\xff\xff") and len(payload) < WS_MAX_FRAME_BYTES
    for url in socket_urls(server):
        async with websockets.connect(url, compression="deflate", max_size=None) as ws:
            assert ws.protocol.extensions, "the server accepted permessage-deflate"
            await _send_compressed(ws, payload[:-4])  # permessage-deflate drops the flush's 4-byte tail
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == MESSAGE_TOO_BIG, url
        await assert_still_serving(url)


class _AlreadyDeflated:
    """Stands in for the client's permessage-deflate on one frame: sets RSV1 on a payload deflated by hand."""

    def encode(self, frame: Frame) -> Frame:
        return dataclasses.replace(frame, rsv1=True)


async def _send_compressed(ws: ClientConnection, deflated: bytes) -> None:
    """One compressed text frame built by hand, so that the client never holds the inflated message."""
    protocol = ws.protocol
    async with ws.send_context():
        extensions, protocol.extensions = protocol.extensions, [_AlreadyDeflated()]
        try:
            protocol.send_frame(Frame(Opcode.TEXT, deflated))
        finally:
            protocol.extensions = extensions
