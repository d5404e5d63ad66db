"""Every HTTP answer the adversarial clients got, counted by route and status, and the 5xx kept in full.

A status is counted as its number ("101", "400"), "no answer" when the connection failed or was
cut before a status came back, a 5xx with its error code ("503 busy"), and a body that broke off
after its status as "cut short" ("200 cut short": the server ends a stream that way when its
synthesis fails). A 503 `busy` is the server refusing work beyond its admission queue, with
`Retry-After`, as the design asks; any other 5xx, and a body cut short, is a server error, and the
first few are kept with their message so they can be reproduced.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

NO_ANSWER = "no answer"
CUT_SHORT = "cut short"
ADMISSION_REFUSALS = ("503 busy",)
"""5xx answers that are the server refusing work it has no room for, not failing at it."""
KEPT_ERRORS = 20
MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Answer:
    """What came back: the status (0: none), the error code of a JSON error body, the seconds a
    `Retry-After` asked for, and how many body bytes were read."""

    status: int
    code: str | None = None
    retry_after_s: float | None = None
    body_bytes: int = 0


@dataclass(frozen=True)
class ServerError:
    route: str
    what: str
    status: int
    code: str | None
    message: str | None


def status_key(status: int, code: str | None = None) -> str:
    if status == 0:
        return NO_ANSWER
    return f"{status} {code}" if code and (status >= 500 or code == CUT_SHORT) else str(status)


def status_class(key: str) -> str:
    """The class of a `status_key`: `2xx`, `4xx`, `5xx`..., `NO_ANSWER`, `CUT_SHORT`, or an admission refusal."""
    if key == NO_ANSWER or key in ADMISSION_REFUSALS:
        return key
    if key.endswith(CUT_SHORT):
        return CUT_SHORT
    return f"{key[0]}xx"


FAILURES = ("5xx", CUT_SHORT)


def server_errors(statuses: Mapping[str, Mapping[str, int]]) -> int:
    """How many answers in `statuses` (route -> status key -> count) were 5xx other than admission refusals,
    or bodies cut short."""
    return sum(n for counts in statuses.values() for key, n in counts.items() if status_class(key) in FAILURES)


class StatusTally:
    """The answers counted so far (see the module's docstring)."""

    def __init__(self) -> None:
        self.by_route: dict[str, Counter[str]] = {}
        self.errors: list[ServerError] = []

    def record(self, route: str, answer: Answer, what: str = "", message: str | None = None) -> str:
        """Count `answer` under `route`; `what` says which request it was, for a 5xx's report. Returns its key."""
        key = status_key(answer.status, answer.code)
        self.by_route.setdefault(route, Counter())[key] += 1
        if status_class(key) in FAILURES and len(self.errors) < KEPT_ERRORS:
            self.errors.append(ServerError(route, what, answer.status, answer.code, message))
        return key

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {route: dict(counts.most_common()) for route, counts in sorted(self.by_route.items())}


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (code if isinstance(code, str) else None), (str(message)[:MESSAGE_CHARS] if message is not None else None)


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    with contextlib.suppress(ValueError):
        return float(resp.headers.get("Retry-After", ""))
    return None


async def read_answer(resp: aiohttp.ClientResponse) -> tuple[Answer, str | None]:
    """The answer of `resp`, its body read to the end (an error body as JSON), and an error's message."""
    if resp.status < 400:
        size = 0
        try:
            async for data in resp.content.iter_any():
                size += len(data)
        except aiohttp.ClientPayloadError as exc:
            return Answer(resp.status, CUT_SHORT, body_bytes=size), f"after {size} bytes: {exc}"
        return Answer(resp.status, body_bytes=size), None
    raw = await resp.read()
    code: str | None = None
    message: str | None = raw[:MESSAGE_CHARS].decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        code, message = _error_fields(await resp.json(content_type=None))
    return Answer(resp.status, code, _retry_after(resp), len(raw)), message


async def post(
    http: aiohttp.ClientSession, base_url: str, route: str, tally: StatusTally, body: str | bytes, what: str = ""
) -> Answer:
    """POST the JSON text `body` to `route`, read the whole answer and count it."""
    try:
        async with http.post(base_url + route, data=body, headers={"Content-Type": "application/json"}) as resp:
            answer, message = await read_answer(resp)
    except (aiohttp.ClientError, TimeoutError) as exc:
        answer, message = Answer(0), f"{type(exc).__name__}: {exc}"
    tally.record(route, answer, what, message)
    return answer
