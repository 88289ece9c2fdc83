"""Small statistics helpers shared by the harness's agents and its report."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def clean(values: Iterable[float | None]) -> list[float]:
    return sorted(float(v) for v in values if v is not None and not math.isnan(v))


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """Linear-interpolated percentile, ``q`` in 0..100; None for no data."""
    data = clean(values)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(data[lo] + (data[hi] - data[lo]) * (pos - lo), 2)


def distribution(values: Iterable[float | None]) -> dict[str, Any]:
    """n, p50, p95, p99, max and mean of some values (milliseconds, usually)."""
    data = clean(values)
    return {
        "n": len(data),
        "p50": percentile(data, 50),
        "p95": percentile(data, 95),
        "p99": percentile(data, 99),
        "max": round(data[-1], 2) if data else None,
        "mean": round(sum(data) / len(data), 2) if data else None,
    }
