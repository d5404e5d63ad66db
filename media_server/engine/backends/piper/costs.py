"""What each kind of unit costs, learned as it runs: seconds per id or frame, a moving average.

The backend uses these estimates only to decide whether one more unit fits the
current step's budget; they never change what a unit computes.
"""

from __future__ import annotations

import threading

from media_server.engine.backends.piper.sequence import Unit, UnitKind

# Starting points measured on the reference machine (one onnxruntime thread); replaced as units run.
_INITIAL_S_PER_ITEM: dict[UnitKind, float] = {"encode": 1.2e-4, "flow": 8e-5, "decode": 3.4e-4}
_WEIGHT = 0.1


class UnitCosts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per_item = dict(_INITIAL_S_PER_ITEM)

    def estimate_s(self, unit: Unit) -> float:
        return self._per_item[unit.kind] * max(1, unit.size)

    def record(self, unit: Unit, seconds: float) -> None:
        sample = seconds / max(1, unit.size)
        with self._lock:
            average = self._per_item[unit.kind]
            self._per_item[unit.kind] = average + _WEIGHT * (sample - average)
