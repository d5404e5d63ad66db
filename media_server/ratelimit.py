"""Token buckets: HTTP requests per client (API key or address) and messages per session.

A bucket holds up to `burst` tokens and gains `rate_per_s` tokens a second;
each request or message takes one. An empty bucket says how long until the
next token, which becomes a 429's `Retry-After` or a `rate_limited` event's
`retry_after_s`.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from media_server.errors import RateLimited

# Clients with a bucket at once; past it the least recently seen client's bucket is dropped (it starts
# full again next time), so a flood of new addresses costs bounded memory.
MAX_CLIENTS = 10_000


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._at = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when there was one, else the seconds until there will be (nothing taken)."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_per_s


class ClientBuckets:
    """One bucket per client, `per_minute` requests a minute with bursts of `burst`."""

    def __init__(self, per_minute: int, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        self.per_minute = per_minute
        self._rate_per_s = per_minute / 60.0
        self._burst = max(1, burst)
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, now: float | None = None) -> float:
        """Take a token from `client`'s bucket: 0.0, or the seconds to wait."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self._rate_per_s, self._burst, now)
            if len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        return bucket.take(now)


class MessageRate:
    """A session's message budget: `per_second` messages a second, bursts of as many (0: no limit).

    Over it, messages are dropped. Only the first drop in a row is reported, so
    a flood cannot make the server queue an error event per message.
    """

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._bucket = TokenBucket(per_second, max(1.0, per_second), time.monotonic()) if per_second > 0 else None
        self._dropping = False

    def admit(self) -> bool:
        """True: handle the message. False: drop it. Raises RateLimited on the first drop in a row."""
        if self._bucket is None:
            return True
        wait_s = self._bucket.take(time.monotonic())
        if not wait_s:
            self._dropping = False
            return True
        if self._dropping:
            return False
        self._dropping = True
        raise RateLimited(
            f"message: over {self.per_second:g} messages a second: this one and the next are dropped, "
            f"unreported, until the rate falls; the next is taken in {wait_s:.2f} s",
            retry_after_s=max(0.001, round(wait_s, 3)),  # a wait under half a millisecond is still a wait
        )
