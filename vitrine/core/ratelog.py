"""Logging for events a peer can cause once per packet or per connection: one line per cause per interval.

A publisher sending malformed packets, or one host opening connections past its cap, would otherwise
write a line (or a traceback) per event and flood the log. What is suppressed is counted, and the next
line says how many; the event itself is counted in a metric by its caller.
"""

from __future__ import annotations

import logging
import time
from collections import Counter


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self.logger, self.interval_s = logger, interval_s
        self._next: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warning(self, cause: str, message: str, *args: object, exc_info: bool = False) -> None:
        """Log ``message`` unless ``cause`` was logged within the interval; with the current exception's traceback
        only when ``exc_info`` (a bug of ours, not a peer's bad input)."""
        now = time.monotonic()
        if now < self._next.get(cause, 0.0):
            self._suppressed[cause] += 1
            return
        self._next[cause] = now + self.interval_s
        suppressed = self._suppressed.pop(cause, 0)
        if suppressed:
            message += f" ({suppressed} more like it since the last such line)"
        self.logger.warning(message, *args, exc_info=exc_info)
