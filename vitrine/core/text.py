"""What every typed-text feature shares: cleaning user text before it is stored, and a rate limit.

Text is stored as plain text and every client renders it with ``textContent``; cleaning only
removes what has no business in a chat line (control characters, bidi overrides that can
disguise a line) and refuses what is left empty.
"""

from __future__ import annotations

import re
import time

from vitrine.core.errors import ErrorCode, VitrineError

# C0 controls other than tab and newline, DEL, and bidi overrides (which can disguise text).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    cleaned = _UNPRINTABLE.sub("", text).strip()
    if not cleaned:
        raise VitrineError(ErrorCode.INVALID_MESSAGE, "text: empty")
    return cleaned


class TokenBucket:
    """``burst`` messages at once, then ``rate`` per second: one per sender, checked before any work."""

    def __init__(self, burst: int, rate: float) -> None:
        self.burst, self.rate, self.tokens, self.at = burst, rate, float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
