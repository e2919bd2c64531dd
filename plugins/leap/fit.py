"""A log-log slope with its standard error: the exponent of steps against d."""

from __future__ import annotations

import math


def loglog_slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope of log y on log x and its standard error (non-positive pairs dropped; 0 for 2 points)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0 and math.isfinite(y)]
    n = len(pairs)
    if n < 2:
        return math.nan, math.nan
    mx, my = sum(p[0] for p in pairs) / n, sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    slope = sum((p[0] - mx) * (p[1] - my) for p in pairs) / sxx
    if n == 2:
        return slope, 0.0
    residual = sum((p[1] - my - slope * (p[0] - mx)) ** 2 for p in pairs)
    return slope, math.sqrt(residual / (n - 2) / sxx)
