"""The frames between ``vitrine serve`` and its media worker processes, over a private Unix socket.

A worker process of the embedded default has no Redis: its parent lends it the coordination it needs (the event
bus, its registration, the epoch) over this socket, so the worker serves the same RPC and sends the same pushes
(``vitrine/core/wire/rpc.py``) as a worker of a scaled deployment does over Redis. The parent is the broker: a
worker's subscription is the parent's subscription on its behalf, and lasts as long as the connection, as a
Redis subscription lasts as long as its connection.

One JSON object per line. Requests carry an ``id`` the answer repeats; either side may ask (the parent asks for
a worker's metrics). ``bridge.py`` beside this file is the parent's end, ``bridged.py`` the worker's. The frames
live with coordination, not in ``vitrine/core/wire/``, because they carry its ``WorkerNode``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from vitrine.core.models import Strict
from vitrine.core.state.nodes import WorkerNode

FRAME_LIMIT_BYTES = 16 * 1024 * 1024  # the longest line either side reads: an RPC with a big SDP is far less


class Hello(Strict):
    """A worker's first frame: which of its parent's slots it fills."""

    op: Literal["hello"] = "hello"
    slot: int = Field(ge=0)


class Welcome(Strict):
    """The parent's answer to ``Hello``: the worker's settings, with the node id of this slot
    (``Settings.for_worker_process``: without the secrets a worker never uses; the socket is in a folder only the
    server's user may enter)."""

    op: Literal["welcome"] = "welcome"
    settings: dict[str, object]


class _OnChannel(Strict):
    id: int
    channel: str


class Subscribe(_OnChannel):
    op: Literal["subscribe"] = "subscribe"


class Unsubscribe(_OnChannel):
    op: Literal["unsubscribe"] = "unsubscribe"


class Publish(_OnChannel):
    op: Literal["publish"] = "publish"
    message: str


class Listeners(_OnChannel):
    op: Literal["listeners"] = "listeners"


class Heartbeat(Strict):
    op: Literal["heartbeat"] = "heartbeat"
    id: int
    node: WorkerNode
    ttl_s: float = Field(gt=0)


class Deregister(Strict):
    op: Literal["deregister"] = "deregister"
    id: int
    worker_id: str


class Epoch(Strict):
    op: Literal["epoch"] = "epoch"
    id: int


class Scrape(Strict):
    """The parent asks a worker for its metrics' exposition (the parent's ``/metrics`` shows every worker's)."""

    op: Literal["scrape"] = "scrape"
    id: int


class Delivery(Strict):
    """A message published on a channel the worker subscribed to."""

    op: Literal["delivery"] = "delivery"
    channel: str
    message: str


class Answer(Strict):
    """The answer to a request: a count (publish, listeners), a token (epoch), a text (scrape), or nothing; or
    why the request failed."""

    op: Literal["answer"] = "answer"
    id: int
    value: int | str | None = None
    error: str | None = None


WorkerRequest = Subscribe | Unsubscribe | Publish | Listeners | Heartbeat | Deregister | Epoch
"""What a worker asks its parent, each answered with an ``Answer`` of the same ``id``."""

WorkerFrame = Annotated[Hello | WorkerRequest | Answer, Field(discriminator="op")]
"""What a worker sends its parent."""

ParentFrame = Annotated[Welcome | Delivery | Scrape | Answer, Field(discriminator="op")]
"""What the parent sends a worker."""

worker_frame_adapter: TypeAdapter[WorkerFrame] = TypeAdapter(WorkerFrame)
parent_frame_adapter: TypeAdapter[ParentFrame] = TypeAdapter(ParentFrame)


def encode(frame: Strict) -> bytes:
    return frame.model_dump_json().encode() + b"\n"
