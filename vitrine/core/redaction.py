"""Keep credentials carried in URLs out of logs.

A reviewer's signed bundle URL (``?exp=...&sig=...``) works for anyone who reads it until it expires, and
uvicorn logs every request line in full. The filter rewrites a record's message and arguments in place, so
formatters that read ``record.args`` (uvicorn's access formatter) keep working.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("sig", "signature", "token", "access_token", "key", "api_key", "secret", "password", "credential")
REDACTED = "[redacted]"
_SECRET_QUERY = re.compile(r"([?&;](?:" + "|".join(SECRET_PARAMS) + r")=)[^&;#\s\"']*", re.IGNORECASE)


def redact_secrets(text: str) -> str:
    """``text`` with the value of every credential-like query parameter replaced."""
    return _SECRET_QUERY.sub(r"\1" + REDACTED, text) if "=" in text else text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_secrets(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
