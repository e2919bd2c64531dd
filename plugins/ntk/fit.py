"""The two numbers the experiment fits: the alpha that keeps a deviation below epsilon, and a log-log slope."""

from __future__ import annotations

import math

from harness.stats import loglog_slope  # the fit shared with leap; re-exported for the task

__all__ = ["alpha_needed", "loglog_slope"]


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
