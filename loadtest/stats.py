"""Summaries of measured samples: percentiles by linear interpolation, as numpy computes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Distribution:
    """The shape of one measured quantity (milliseconds unless the field name says otherwise)."""

    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float


def distribution(values: Sequence[float]) -> Distribution | None:
    """Percentiles of `values`; None when there are none."""
    if not values:
        return None
    data = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = (float(v) for v in np.percentile(data, [50, 95, 99]))
    return Distribution(
        n=len(values),
        p50=round(p50, 1),
        p95=round(p95, 1),
        p99=round(p99, 1),
        max=round(float(data.max()), 1),
        mean=round(float(data.mean()), 1),
    )
