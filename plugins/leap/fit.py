"""A log-log slope with its standard error: the exponent of steps against d (the fit is the core's, in
:mod:`harness.stats`, shared with the ntk experiment)."""

from __future__ import annotations

from harness.stats import loglog_slope

__all__ = ["loglog_slope"]
