"""JSON from clients, decoded by one function for every route and transport, with bounds.

Python's `json` follows nesting until the interpreter's recursion limit (a
RecursionError no handler expects), reads a number of thousands of digits
into an int that no float conversion survives, and accepts `NaN` and
`Infinity`. `decode_json` refuses nesting deeper than `MAX_DEPTH`, number
literals longer than `MAX_NUMBER_CHARS`, floats that overflow and the
non-standard constants, raising InvalidRequest that names what was decoded
(`body`, `message`) and the problem.
"""

from __future__ import annotations

import json
import math
from typing import Any

from media_server.errors import InvalidRequest

MAX_DEPTH = 32
"""Arrays and objects nested in each other, the outermost one included."""
MAX_NUMBER_CHARS = 40
"""Longest number literal: a 64-bit seed is 20, a float written in full a few more."""


class _Refused(Exception):
    """A hook's reason to stop decoding (not a ValueError, so it is not mistaken for bad syntax)."""


def decode_json(raw: str | bytes, what: str) -> Any:
    """The value of `raw` (text, or bytes in UTF-8/16/32); raises InvalidRequest naming `what` and why."""
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _Refused as exc:
        raise InvalidRequest(f"{what}: {exc}") from None
    except RecursionError:
        raise InvalidRequest(f"{what}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # syntax errors and undecodable bytes alike
        raise InvalidRequest(f"{what}: not valid JSON ({exc})") from None
    if _brackets(raw) > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise InvalidRequest(f"{what}: JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _brackets(raw: str | bytes) -> int:
    """Opening brackets in `raw`, strings included: an upper bound of the depth, counted at C speed."""
    if isinstance(raw, bytes):
        return raw.count(b"[") + raw.count(b"{")
    return raw.count("[") + raw.count("{")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels in `value` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _number_literal(literal: str) -> str:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(literal)} characters; at most {MAX_NUMBER_CHARS} are read")
    return literal


def _int(literal: str) -> int:
    return int(_number_literal(literal))


def _float(literal: str) -> float:
    value = float(_number_literal(literal))
    if not math.isfinite(value):
        raise _Refused(f"the number {literal} is out of range")
    return value


def _constant(name: str) -> float:
    raise _Refused(f"{name} is not a JSON value")
