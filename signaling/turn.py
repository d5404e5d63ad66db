"""Short-lived TURN credentials in coturn's REST-API scheme (`use-auth-secret`).

The TURN server and this service share a secret. A credential is valid until
the expiry written into its username: `"<expiry unix time>:<user>"`, and its
password is `base64(HMAC-SHA1(secret, username))`, which the TURN server
recomputes; nothing is stored and nothing needs revoking.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any


def turn_credential(secret: str, user: str, ttl_s: int, now: float) -> tuple[str, str]:
    """The (username, credential) pair for `user`, valid `ttl_s` seconds from `now`."""
    username = f"{int(now) + ttl_s}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(frozen=True)
class TurnServers:
    """TURN servers that accept credentials made with `secret`."""

    urls: tuple[str, ...]
    secret: str
    ttl_s: int = 3600

    def ice_server(self, user: str | None = None, now: float | None = None) -> dict[str, Any]:
        """An RTCIceServer entry with fresh credentials (`user` defaults to a random opaque id)."""
        username, credential = turn_credential(
            self.secret, user or secrets.token_hex(8), self.ttl_s, time.time() if now is None else now
        )
        return {"urls": list(self.urls), "username": username, "credential": credential}
