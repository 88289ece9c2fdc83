"""Malformed RTP header extensions are dropped as malformed packets, counted, and logged at a bounded rate.

aiortc reads a header extension's value with ``struct.unpack`` and no length check, so an audio-level or
abs-send-time element of the wrong length raises ``struct.error`` where every other malformed packet raises
``ValueError``. Both receive paths (the fast path's socket callback and aiortc's own) drop a packet on
``ValueError`` only: ``struct.error`` escaped the datagram callback, and asyncio logged a full traceback for
every packet a misbehaving publisher sent. Patched on import of ``media.taps``: it changes nothing for a
well-formed packet, so no process that handles RTP should run without it.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from typing import Any

from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap

from vitrine.core.ratelog import RateLimitedLog

logger = logging.getLogger(__name__)


class MalformedPackets:
    """Malformed packets from peers, by cause, since the process started (exported by ``/metrics``)."""

    counts: Counter[str] = Counter()
    log = RateLimitedLog(logger)

    @classmethod
    def record(cls, cause: str, exc: BaseException) -> None:
        cls.counts[cause] += 1
        cls.log.warning(cause, "dropped a malformed packet (%s): %s", cause, exc)


_original_get = HeaderExtensionsMap.get


def _checked_get(self: HeaderExtensionsMap, extension_profile: int, extension_value: bytes) -> HeaderExtensions:
    try:
        return _original_get(self, extension_profile, extension_value)
    except (struct.error, ValueError) as exc:  # ValueError: truncated elements, a mid or rid that is not text
        MalformedPackets.record("rtp_header_extension", exc)
        raise ValueError("malformed RTP header extension") from None


def _install() -> None:
    if HeaderExtensionsMap.get is not _checked_get:
        patched: Any = _checked_get
        HeaderExtensionsMap.get = patched  # type: ignore[method-assign]


_install()
