"""A sample rate a client asks for by name (a query parameter), checked against the rates its protocol allows."""

from __future__ import annotations

from collections.abc import Sequence

from media_server.errors import UnsupportedFormat

JAMBONZ_RATES = (8000, 16000, 24000, 32000, 48000)
"""The rates of the `audio/l16;rate=N` audio jambonz takes from a custom TTS vendor (HTTP and streaming)."""


def requested_rate(raw: str | None, field: str, allowed: Sequence[int], default: int) -> int:
    """`raw` as one of the `allowed` rates (`default` when absent); UnsupportedFormat naming `field` otherwise."""
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) not in allowed:
        choices = ", ".join(str(rate) for rate in allowed)
        raise UnsupportedFormat(f"{field}: {raw[:40]!r} is not one of {choices} Hz")
    return int(raw)
