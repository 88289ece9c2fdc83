"""The request body limit, enforced as the body streams in, before any route parses or authenticates it.

A pure ASGI middleware, outermost in the app: a ``Content-Length`` over the limit is refused at once,
without reading a byte of the body; a chunked body is counted as it arrives and refused as soon as it
passes the limit, so no request ever holds more than the limit in memory. It also bounds how long a
client may pause while sending a body (uvicorn has no such timeout), so a trickled body cannot hold a
connection and a task forever. Refusals carry the API's typed error and ``Connection: close``: the rest
of the body is never read.
"""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signaling.metrics import METRICS
from vitrine.core.errors import ErrorCode, VitrineError


class _Refused(VitrineError):
    """Raised into the app by ``receive`` (body over the limit, or stalled): whatever the app answers to it
    is replaced by this error."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(code, message)
        METRICS.http_refused.labels(reason=code.value).inc()


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float) -> None:
        self.app, self.max_bytes, self.read_timeout_s = app, max_bytes, read_timeout_s

    def _too_large(self) -> _Refused:
        return _Refused(ErrorCode.MESSAGE_TOO_LARGE, f"request bodies are limited to {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            await _refuse(send, self._too_large())
            return
        received, body_done = 0, False
        refused: _Refused | None = None
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done, refused
            if refused is not None:
                raise refused
            if body_done:  # after the body only a disconnect comes, whenever it comes: no timeout
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except TimeoutError:
                refused = _Refused(ErrorCode.REQUEST_TIMEOUT, f"no request body for {self.read_timeout_s:g} s")
                raise refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    refused = self._too_large()
                    raise refused
            else:
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                return  # the app's answer to the exception is dropped: the refusal is sent instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _Refused:
            pass  # an app that let it through; the refusal goes out below
        if refused is not None and not started:
            await _refuse(send, refused)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1  # uvicorn's parser refuses these first; never trust one here
    return None


async def _refuse(send: Send, refused: _Refused) -> None:
    response = JSONResponse(refused.body(), status_code=refused.http_status, headers={"connection": "close"})
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
