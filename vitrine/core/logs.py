"""Log setup for every process: text for a terminal, or one JSON object per line for a log pipeline.

An operator following one call through the logs needs to know, on every line, which request, room and participant
it concerns, and which node wrote it. Those ids live in context variables, set where they become known: the HTTP
and WebSocket boundary (``RequestIds``, an ``X-Request-ID`` taken from the client or generated, and echoed back),
the join (``bind`` in ``signaling.rooms``) and a worker's command (``media.service``). asyncio copies context into
every task it starts, so whatever a request, a socket or a command spawns logs with the same ids, and nothing else
does. A filter copies them onto each record; the formatters write them.

Secrets: the URL-credential redaction (``vitrine.core.redaction``) runs on every record's message and arguments
(the access log's too) and again on what the formatter produces, tracebacks included.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

from vitrine.core.redaction import RedactSecrets, redact_secrets

LogFormat = Literal["text", "json"]

REQUEST_ID_HEADER = "x-request-id"
# A client's id is kept only if it is short and plain: anything else could forge log lines or smuggle a secret.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_request_id: ContextVar[str | None] = ContextVar("vitrine_log_request_id", default=None)
_room: ContextVar[str | None] = ContextVar("vitrine_log_room", default=None)
_participant: ContextVar[str | None] = ContextVar("vitrine_log_participant", default=None)

CONTEXT_FIELDS = ("node", "request_id", "room", "participant")


def bind(*, room: str | None = None, participant: str | None = None) -> None:
    """Name the room and participant (its sid) that what runs next in this task, and the tasks it starts, is
    about. A field left out keeps its value."""
    if room is not None:
        _room.set(room)
    if participant is not None:
        _participant.set(participant)


def context() -> dict[str, str]:
    """The ids known here: ``request_id``, ``room``, ``participant`` (those that are set)."""
    values = {"request_id": _request_id.get(), "room": _room.get(), "participant": _participant.get()}
    return {key: value for key, value in values.items() if value is not None}


class ContextFilter(logging.Filter):
    """Put the node and the context's ids on every record (as attributes the formatters read)."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node
        for key, value in context().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class TextFormatter(logging.Formatter):
    """The classic line, with the ids that are known in brackets at its end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{key}={value}" for key in CONTEXT_FIELDS[1:] if (value := getattr(record, key, None)))
        if ids:
            head, newline, rest = line.partition("\n")  # after the message, before a traceback
            line = f"{head} [{ids}]{newline}{rest}"
        return redact_secrets(line)


class JsonLinesFormatter(JsonFormatter):
    """One object per line: ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``node``, and when
    known ``request_id``, ``room``, ``participant``; ``exc_info`` with a traceback. Nothing else a library puts on
    a record (uvicorn's coloured copy of the message, say) is written."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["message"] = redact_secrets(record.message)
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                log_data[key] = value
        for key in ("exc_info", "stack_info"):
            value = message_dict.get(key)
            if value:
                log_data[key] = redact_secrets(value) if isinstance(value, str) else value


def configure(level: str, fmt: LogFormat, node: str) -> None:
    """Send every logger's records (uvicorn's included: it is started without its own config) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    handler.addFilter(ContextFilter(node))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aioice tells every candidate pair's every state at INFO: thousands of lines for a show's opening minute.
    # Its warnings and errors stay; `debug` shows it all.
    logging.getLogger("aioice").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)


# -- the HTTP and WebSocket boundary -------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` if it is a plain token, else a new one (32 hex digits)."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return secrets.token_hex(16)


class RequestIds:
    """Pure ASGI middleware: each HTTP request and WebSocket runs with its request id in the log context, and its
    response (or the WebSocket's accept) carries it back in ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
