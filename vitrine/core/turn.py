"""ICE servers for one client session, with a TURN REST credential of its own.

coturn's ``use-auth-secret`` accepts ``username = "<expiry>:<identity>"`` and
``credential = base64(HMAC-SHA1(secret, username))`` until the expiry, so a
leaked credential stops working on its own and no long-lived TURN password
ever reaches a browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from vitrine.core.config import IceServer, Settings


def turn_credential(secret: str, identity: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    expiry = int(now if now is not None else time.time()) + ttl_s
    username = f"{expiry}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(settings: Settings, identity: str) -> list[IceServer]:
    servers = list(settings.ice_servers)
    if settings.turn_urls and settings.turn_secret is not None:
        username, credential = turn_credential(
            settings.turn_secret.get_secret_value(), identity, settings.turn_credential_ttl_s
        )
        servers.append(IceServer(urls=list(settings.turn_urls), username=username, credential=credential))
    return servers
