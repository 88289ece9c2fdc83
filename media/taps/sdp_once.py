"""One parse of a client's SDP on the worker: the guard's, handed on to aiortc.

The worker checks every client description with ``vitrine.core.sdp_guard.parse_sdp`` before aiortc sees it
(aiortc validates with ``assert`` and can fail half-way), and aiortc's ``setRemoteDescription`` then parses the
same text again. A WHEP offer's parse is about 0.4 ms here, a tenth of what applying it costs the worker
(issue 17, a join's cost). ``parsed_once(text, description)`` hands the guard's result to aiortc's next parse of
that very string object, once; any other parse runs as before. Between the guard and aiortc's parse nothing
yields to the event loop (``setRemoteDescription`` parses before its first ``await``), and the hand-off is
taken back when the block ends, so no other connection can see it. Installed by ``LeanAiortc.install``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from aiortc import sdp as aiortc_sdp

_original_parse = aiortc_sdp.SessionDescription.parse
_handed: list[tuple[str, aiortc_sdp.SessionDescription]] = []  # at most one: the text and its parse


@contextlib.contextmanager
def parsed_once(text: str, description: aiortc_sdp.SessionDescription) -> Iterator[None]:
    """aiortc's next parse of ``text`` (this object, not an equal string) returns ``description``."""
    _handed[:] = [(text, description)]
    try:
        yield
    finally:
        _handed.clear()


def _parse(cls: Any, sdp: str) -> aiortc_sdp.SessionDescription:
    if _handed and _handed[0][0] is sdp:
        return _handed.pop()[1]
    return _original_parse(sdp)


def install() -> None:
    aiortc_sdp.SessionDescription.parse = classmethod(_parse)  # type: ignore[method-assign,assignment]
