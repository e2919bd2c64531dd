"""The two numbers the experiment fits: the alpha that keeps a deviation below epsilon, and a log-log slope."""

from __future__ import annotations

import math


def alpha_needed(alphas: list[float], deviations: list[float], epsilon: float) -> float:
    """The smallest alpha whose deviation is <= epsilon, interpolated linearly in (log alpha, log deviation).

    ``alphas`` increasing, ``deviations`` the sup gaps at one T. NaN when no alpha of the grid gets below epsilon
    or the smallest one already does (the answer lies outside the grid; it is not extrapolated).
    """
    below = [i for i, dev in enumerate(deviations) if dev <= epsilon]
    if not below or below[0] == 0:
        return math.nan
    i = below[0]  # deviations[i - 1] > epsilon >= deviations[i]
    x0, x1 = math.log(alphas[i - 1]), math.log(alphas[i])
    y0, y1 = math.log(deviations[i - 1]), math.log(max(deviations[i], 1e-300))
    share = (math.log(epsilon) - y0) / (y1 - y0)
    return math.exp(x0 + share * (x1 - x0))


def loglog_slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope of log y on log x and its standard error (NaN pairs are dropped; 0 for 2 points)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0 and math.isfinite(y)]
    n = len(pairs)
    if n < 2:
        return math.nan, math.nan
    mx = sum(p[0] for p in pairs) / n
    my = sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    slope = sum((p[0] - mx) * (p[1] - my) for p in pairs) / sxx
    if n == 2:
        return slope, 0.0
    residual = sum((p[1] - my - slope * (p[0] - mx)) ** 2 for p in pairs)
    return slope, math.sqrt(residual / (n - 2) / sxx)
