"""Every numeric synthesis parameter's allowed range, in one table.

Checked at admission (`VoiceCatalog.admit`), so every route and transport
refuses the same values with the same message, naming the field and the range,
whether or not the loaded backend uses the parameter (Piper ignores the
sampling ones: a request that would be wrong on one backend is wrong on all).
The OpenAPI document takes its minimum and maximum from here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from media_server.engine.types import SynthesisRequest
from media_server.errors import InvalidRequest


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    integer: bool = False
    above_low: bool = False
    """The low end itself is not allowed (top_p: more than 0)."""
    meaning: str = ""

    def describe(self) -> str:
        low = f"({self.low:g}" if self.above_low else f"[{self.low:g}"
        kind = "an integer in " if self.integer else ""
        return f"{kind}{low}, {self.high:g}]"

    def check(self, name: str, value: float | int) -> None:
        if isinstance(value, bool) or (self.integer and not isinstance(value, int)):
            raise InvalidRequest(f"{name}: {value!r} is not {self.describe()}")
        finite = isinstance(value, int) or math.isfinite(value)
        below = value <= self.low if self.above_low else value < self.low
        if not finite or below or value > self.high:
            raise InvalidRequest(f"{name}: {_shown(value)} is outside {self.describe()}")


PARAMETERS: dict[str, Bound] = {
    "speed": Bound(0.25, 4.0, meaning="rate of speech; 2 is twice as fast"),
    "temperature": Bound(0.0, 2.0, meaning="0 is greedy"),
    "top_p": Bound(0.0, 1.0, above_low=True),
    "top_k": Bound(0, 1000, integer=True, meaning="0 is no limit"),
    "repetition_penalty": Bound(1.0, 2.0, meaning="1 is none"),
    "seed": Bound(0, 2**63 - 1, integer=True),
}


def check_parameters(request: SynthesisRequest) -> None:
    """Raise InvalidRequest for the first parameter of `request` outside its range."""
    PARAMETERS["speed"].check("speed", request.speed)
    for name in ("temperature", "top_p", "top_k", "repetition_penalty", "seed"):
        value = getattr(request.sampling, name)
        if value is not None:
            PARAMETERS[name].check(name, value)


def _shown(value: float | int) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
