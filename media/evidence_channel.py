"""The buyer's evidence channel: full-resolution photos over the inspection's data channel, video untouched.

For a participant whose join carries an evidence folder (``JoinCommand.evidence``: signaling gives one to
an inspection's buyer) the worker opens a reliable, ordered data channel labelled ``evidence`` on its
connection before its first offer, so the page gets it in ``ondatachannel``. The phone takes a
still (``ImageCapture.takePhoto``, ``grabFrame`` or a canvas) and sends it while the video keeps running:

    page -> worker  text    {"type": "photo", "request": R, "content_type": "image/jpeg" | "image/png" |
                             "image/webp", "bytes": N, "width": W, "height": H,
                             "method": "takePhoto" | "grabFrame" | "canvas"}            starts one transfer
    page -> worker  binary  the file in order, in chunks of at most 256 KiB (the worker's SDP
                            max-message-size), exactly N bytes in all
    page -> worker  text    {"type": "cancel"}                   drops the transfer in progress (no reply)
    worker -> page  text    {"type": "stored", "request": R, "artifact": {Artifact}}
    worker -> page  text    {"type": "error", "code": C, "message": M, "request": R | null}

``R`` matches ``[A-Za-z0-9_-]{1,64}`` (the inspector's photo request, ``vitrine.core.wire.inspect_actions``).
``stored`` comes once the file is renamed into that folder (the case's) with its SHA-256 and signaling has
committed it to the case's record (``ArtifactStored``, acknowledged over Redis when scaled). Every
problem is an ``error`` and drops the transfer and its partial file (a refused text message during a
transfer gets its own error, and the photo one naming its request); the channel stays open for the next
photo. ``code`` is a ``vitrine.core.errors.ErrorCode``:

* ``invalid_json``: a text message that is not one JSON object (or repeats a key);
* ``invalid_message``: an unknown ``type`` or a bad field; binary data with no transfer in progress; data
  whose first bytes are not the announced type (JPEG ``FF D8 FF``, PNG ``89 50 4E 47 0D 0A 1A 0A``, WebP
  ``RIFF....WEBP``: checked as soon as 12 bytes are in); a transfer with no data for 30 s; a new
  ``photo`` before the last one was complete (the error names the old request; the new one goes ahead);
* ``message_too_large``: ``bytes`` over the worker's limit (``VITRINE_INSPECT_MAX_PHOTO_BYTES``), a
  chunk over 256 KiB, more data than announced, a text message over 4096 characters;
* ``not_joined``: a ``photo`` while the buyer still waits to be admitted;
* ``case_not_found``, ``case_closed``: the case cannot take the photo any more (the file is removed);
* ``storage_unavailable``: the server did not confirm the photo in time (it may have been recorded: the
  file stays; send it again);
* ``internal``: the worker could not store the file.

After an error that ended a transfer, binary data is dropped silently until the page's next text message:
the channel is ordered, so whatever the page sent before that message was the failed transfer's tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from aiortc import RTCDataChannel
from pydantic import Field, TypeAdapter, ValidationError

from vitrine.core.artifacts import ArtifactStore, ArtifactWriter
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Strict, now_ms
from vitrine.core.wire.inspect import Artifact, ArtifactKind
from vitrine.core.wire.inspect_actions import RequestId
from vitrine.core.wire.rpc import Unconfirmed
from vitrine.core.wire.rtc import decode_json_object, first_problem

logger = logging.getLogger(__name__)

EVIDENCE_LABEL = "evidence"
MAX_CHUNK_BYTES = 256 * 1024  # what aiortc's SDP advertises as max-message-size
MAX_TEXT_CHARS = 4096
IDLE_TIMEOUT_S = 30.0
# Chunks are gathered into writes of about this size, each run in a thread: a 64 KiB write per message
# would cost a thread hop per message, and a write on the event loop would stall forwarding on a slow disk.
FLUSH_BYTES = 1 << 20
MAX_UNREAD_REPLIES = 1 << 20  # bytes queued for a page that does not read: further errors are dropped
CLOSE_TIMEOUT_S = 10.0
MAGIC_BYTES = 12
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

ContentType = Literal["image/jpeg", "image/png", "image/webp"]


class PhotoStart(Strict):
    type: Literal["photo"]
    request: RequestId
    content_type: ContentType
    bytes: int = Field(gt=0)  # the upper bound is a setting, checked by the channel
    width: int = Field(ge=1, le=20_000)
    height: int = Field(ge=1, le=20_000)
    method: Literal["takePhoto", "grabFrame", "canvas"]


class Cancel(Strict):
    type: Literal["cancel"]


class Stored(Strict):
    type: Literal["stored"] = "stored"
    request: RequestId
    artifact: Artifact


class ChannelError(Strict):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    request: RequestId | None = None


PageMessage = Annotated[PhotoStart | Cancel, Field(discriminator="type")]
_page_adapter: TypeAdapter[PageMessage] = TypeAdapter(PageMessage)
_request_adapter: TypeAdapter[str] = TypeAdapter(RequestId)


def magic_matches(content_type: str, head: bytes) -> bool:
    """Whether a file's first bytes are those of its announced type."""
    if content_type == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if content_type == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


@dataclass
class EvidenceTarget:
    """Where one buyer's photos go: its case's folder, and who records them in the case."""

    store: ArtifactStore
    shop: str
    case: str
    max_bytes: int
    on_stored: Callable[[Artifact], Awaitable[None]]  # raises: the photo is not recorded, so it is removed


class _Transfer:
    """One photo: counted and checked on the event loop, written by the channel's disk lane."""

    def __init__(self, start: PhotoStart, now: float) -> None:
        self.start = start
        self.received = 0
        self.head = b""
        self.pending = bytearray()
        self.last_data = now
        self.captured_at_ms = now_ms()
        self.writer: ArtifactWriter | None = None  # opened by the disk lane with the first write
        self.failed = False


_FINISH: Final = "finish"
_ABORT: Final = "abort"
_Job = tuple[_Transfer, bytearray | Literal["finish", "abort"]] | None  # None: close()'s wake-up


class EvidenceChannel:
    """Receives photos on one buyer's ``evidence`` channel; no message can break the channel or the peer.

    Messages are handled synchronously as aiortc delivers them (counting, checks, buffering), so limits
    hold at once and memory stays within one photo. Blocking file work runs in order on a disk lane (one
    task, each step in a thread), never on the event loop that forwards media.
    """

    def __init__(self, channel: RTCDataChannel, target: EvidenceTarget, owner: str) -> None:
        self.channel = channel
        self.target = target
        self.owner = owner  # the participant's sid, for logs
        self.accepting = True  # False while the buyer waits at the door: nothing is stored before the admit
        self.idle_timeout_s = IDLE_TIMEOUT_S
        self._loop = asyncio.get_running_loop()
        self._transfer: _Transfer | None = None
        self._discarding = False
        self._idle: asyncio.TimerHandle | None = None
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._closing = False
        self._lane = asyncio.create_task(self._run_lane(), name=f"evidence-{owner}")
        channel.on("message", self._on_message)
        channel.on("close", self._on_close)

    # -- what the page sends ----------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        if self._closing:
            return
        try:
            if isinstance(message, str):
                self._discarding = False
                self._on_text(message)
            else:
                self._on_chunk(message)
        except Exception:
            logger.exception("the evidence channel of %s failed on a message", self.owner)
            if self._transfer is not None:
                self._fail(self._transfer, ErrorCode.INTERNAL, "the message could not be handled")

    def _on_text(self, text: str) -> None:
        request = None
        try:
            if len(text) > MAX_TEXT_CHARS:
                raise VitrineError(ErrorCode.MESSAGE_TOO_LARGE, f"a text message is at most {MAX_TEXT_CHARS} chars")
            data = decode_json_object(text)
            request = _request_of(data)
            message = self._parse(data)
        except VitrineError as exc:
            if self._transfer is not None:
                self._fail(self._transfer, ErrorCode.INVALID_MESSAGE, "a refused message interrupted this photo")
            self._discarding = True  # the binary data that may follow belongs to what was refused
            self._reply_error(exc.code, exc.message, request)
            return
        current = self._transfer
        if isinstance(message, Cancel):
            if current is not None:
                self._abort(current)
            return
        if current is not None:
            self._fail(current, ErrorCode.INVALID_MESSAGE, "a new photo started before this one was complete")
            self._discarding = False
        self._transfer = _Transfer(message, self._loop.time())
        self._arm_idle()

    def _parse(self, data: dict[str, object]) -> PageMessage:
        try:
            message = _page_adapter.validate_python(data)
        except ValidationError as exc:
            raise VitrineError(ErrorCode.INVALID_MESSAGE, first_problem(exc)[1]) from None
        if isinstance(message, PhotoStart) and not self.accepting:
            raise VitrineError(ErrorCode.NOT_JOINED, "photos are taken once the seller has let you in")
        if isinstance(message, PhotoStart) and message.bytes > self.target.max_bytes:
            raise VitrineError(ErrorCode.MESSAGE_TOO_LARGE, f"a photo is at most {self.target.max_bytes} bytes")
        return message

    def _on_chunk(self, chunk: bytes) -> None:
        transfer = self._transfer
        if transfer is None:
            if not self._discarding:
                self._discarding = True  # one error for a burst, not one per chunk
                self._reply_error(ErrorCode.INVALID_MESSAGE, "binary data without a photo header")
            return
        start = transfer.start
        if len(chunk) > MAX_CHUNK_BYTES:
            self._fail(transfer, ErrorCode.MESSAGE_TOO_LARGE, f"a chunk is at most {MAX_CHUNK_BYTES} bytes")
            return
        if transfer.received + len(chunk) > start.bytes:
            self._fail(transfer, ErrorCode.MESSAGE_TOO_LARGE, f"more than the announced {start.bytes} bytes")
            return
        transfer.received += len(chunk)
        transfer.last_data = self._loop.time()
        complete = transfer.received == start.bytes
        if len(transfer.head) < MAGIC_BYTES:
            transfer.head += chunk[: MAGIC_BYTES - len(transfer.head)]
            if (len(transfer.head) == MAGIC_BYTES or complete) and not magic_matches(start.content_type, transfer.head):
                self._fail(transfer, ErrorCode.INVALID_MESSAGE, f"the data is not {start.content_type}")
                return
        transfer.pending += chunk
        if len(transfer.pending) >= FLUSH_BYTES or complete:
            self._jobs.put_nowait((transfer, transfer.pending))
            transfer.pending = bytearray()
        if complete:
            self._transfer = None
            self._disarm_idle()
            self._jobs.put_nowait((transfer, _FINISH))

    def _on_close(self) -> None:
        if self._transfer is not None:
            self._abort(self._transfer)

    # -- transfers ending -------------------------------------------------------------------

    def _fail(self, transfer: _Transfer, code: ErrorCode, message: str) -> None:
        logger.info("photo %s of %s refused: %s", transfer.start.request, self.owner, code)
        if transfer is self._transfer:
            self._discarding = True
        self._abort(transfer)
        self._reply_error(code, message, transfer.start.request)

    def _abort(self, transfer: _Transfer) -> None:
        if transfer.failed:
            return
        transfer.failed = True
        transfer.pending = bytearray()
        if transfer is self._transfer:
            self._transfer = None
            self._disarm_idle()
        self._jobs.put_nowait((transfer, _ABORT))

    def _arm_idle(self) -> None:
        self._disarm_idle()
        transfer = self._transfer
        if transfer is not None:
            self._idle = self._loop.call_at(transfer.last_data + self.idle_timeout_s, self._check_idle)

    def _disarm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _check_idle(self) -> None:
        """One timer per transfer, moved on only when it fires: chunks just note when they arrived."""
        self._idle = None
        transfer = self._transfer
        if transfer is None:
            return
        if self._loop.time() >= transfer.last_data + self.idle_timeout_s:
            self._fail(transfer, ErrorCode.INVALID_MESSAGE, f"no data for {self.idle_timeout_s:g} s")
        else:
            self._arm_idle()

    # -- the disk lane ----------------------------------------------------------------------

    async def _run_lane(self) -> None:
        """Until closed and drained: an abort queued by a failure during the close still runs."""
        while not (self._closing and self._jobs.empty()):
            job = await self._jobs.get()
            if job is None:
                continue  # close()'s wake-up
            transfer, step = job
            try:
                if isinstance(step, bytearray):
                    if not transfer.failed:
                        await asyncio.to_thread(self._write, transfer, step)
                elif step == _ABORT:
                    if transfer.writer is not None:
                        await asyncio.to_thread(transfer.writer.abort)
                elif not transfer.failed:
                    await self._finish(transfer)
            except VitrineError as exc:
                self._fail(transfer, exc.code, exc.message)
            except Exception:
                logger.exception("photo %s of %s could not be stored", transfer.start.request, self.owner)
                self._fail(transfer, ErrorCode.INTERNAL, "the photo could not be stored")

    def _write(self, transfer: _Transfer, data: bytearray) -> None:
        """In a thread: the first write creates the ``.part`` file in the case's folder."""
        if transfer.writer is None:
            target = self.target
            transfer.writer = target.store.open_writer(
                target.shop, target.case, EXTENSIONS[transfer.start.content_type], target.max_bytes
            )
        transfer.writer.write(data)

    async def _finish(self, transfer: _Transfer) -> None:
        writer, start = transfer.writer, transfer.start
        assert writer is not None
        if self._closing:  # the buyer left: nobody would see the reply, and the case would not list it
            transfer.failed = True
            await asyncio.to_thread(writer.abort)
            return
        artifact = await asyncio.to_thread(
            writer.finish,
            ArtifactKind.PHOTO,
            content_type=start.content_type,
            source=f"buyer camera ({start.method})",
            captured_at_ms=transfer.captured_at_ms,
            width=start.width,
            height=start.height,
            request=start.request,
        )
        try:
            await self.target.on_stored(artifact)
        except Unconfirmed:
            raise  # it may be in the case's record: the file stays, and the phone is asked to send it again
        except Exception:
            await asyncio.to_thread(writer.final.unlink, missing_ok=True)  # refused: the case does not list it
            raise
        logger.info("photo %s of %s stored as %s (%d bytes)", start.request, self.owner, artifact.id, artifact.bytes)
        self._send(Stored(request=start.request, artifact=artifact).model_dump_json())

    # -- replies and teardown ---------------------------------------------------------------

    def _reply_error(self, code: ErrorCode, message: str, request: str | None = None) -> None:
        if self.channel.bufferedAmount > MAX_UNREAD_REPLIES:
            return
        self._send(ChannelError(code=code, message=message, request=request).model_dump_json())

    def _send(self, text: str) -> None:
        if self.channel.readyState != "open":
            return
        try:
            self.channel.send(text)
        except Exception:  # the association went away meanwhile
            logger.info("the evidence channel of %s could not send a reply", self.owner)

    async def close(self) -> None:
        """Drop a transfer in progress and its partial file; a photo not yet finalized is dropped too."""
        if self._closing:
            return
        self._closing = True
        self._disarm_idle()
        if self._transfer is not None:
            self._abort(self._transfer)
        self._jobs.put_nowait(None)
        done, _ = await asyncio.wait({self._lane}, timeout=CLOSE_TIMEOUT_S)
        if not done:  # a stuck disk: the lane still removes the partial file when the write returns
            logger.warning("the evidence channel of %s is still writing", self.owner)


def _request_of(data: dict[str, object]) -> str | None:
    """The request a refused header named, when it is a valid one, so the page can tell which photo failed."""
    with contextlib.suppress(ValidationError):
        return _request_adapter.validate_python(data.get("request"))
    return None
