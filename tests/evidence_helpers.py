"""What the evidence channel's tests share (tests/test_evidence_channel.py, tests/test_evidence_ack.py): the
page's end of the channel, a buyer that has it, test photos, and what is left in the case's folder."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from aiortc import RTCDataChannel

from tests.media_helpers import av_tracks
from tests.worker_harness import CHUNK, JPEG, TIMEOUT_S, Harness, Page, wait_for
from vitrine.core.errors import ErrorCode
from vitrine.core.models import Role


class Evidence:
    """The page's end of the ``evidence`` channel."""

    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        channel.on("message", lambda message: self.replies.put_nowait(json.loads(message)))

    @classmethod
    async def of(cls, page: Page) -> Evidence:
        channel = await asyncio.wait_for(page.channels.get(), TIMEOUT_S)
        assert channel.label == "evidence" and channel.ordered
        evidence = cls(channel)
        await wait_for(lambda: channel.readyState == "open", "the evidence channel to open")
        return evidence

    def header(self, request: str, size: int, **fields: Any) -> None:
        self.channel.send(
            json.dumps(
                {
                    "type": "photo",
                    "request": request,
                    "content_type": "image/jpeg",
                    "bytes": size,
                    "width": 4000,
                    "height": 3000,
                    "method": "takePhoto",
                    **fields,
                }
            )
        )

    def send_photo(self, request: str, payload: bytes, chunk: int = CHUNK, **fields: Any) -> None:
        self.header(request, len(payload), **fields)
        for offset in range(0, len(payload), chunk):
            self.channel.send(payload[offset : offset + chunk])

    async def reply(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.replies.get(), TIMEOUT_S)

    async def error(self, code: ErrorCode, request: str | None = None) -> dict[str, Any]:
        reply = await self.reply()
        assert reply["type"] == "error" and reply["code"] == code.value, reply
        assert reply.get("request") == request, reply
        return reply


async def buyer_with_channel(harness: Harness, hostile: bool = False) -> tuple[Page, Evidence]:
    buyer = await harness.join("buyer", Role.BUYER, av_tracks(), hostile=hostile)
    evidence = await Evidence.of(buyer)
    await harness.published(2)
    return buyer, evidence


def photo(size: int) -> bytes:
    return JPEG + os.urandom(size - len(JPEG))


def leftovers(harness: Harness) -> list[str]:
    return sorted(p.name for p in harness.case_dir.glob("*")) if harness.case_dir.exists() else []
