"""Worker processes that die with their parent.

Tasks that train several models side by side and local sweeps run work in spawned processes. A worker asks the
kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``, Linux), so a ``kill -9`` of ``harness run`` never
leaves trainers behind writing into a run folder whose lock is already free.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterable


def die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent process exits (Linux; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def map_in_processes(function: Callable, items: Iterable, workers: int) -> list:
    """``[function(item) for item in items]`` in up to ``workers`` spawned processes that die with this one.

    ``function`` and the items must be picklable. Results come back in order; the first exception is raised once
    every submitted item has finished or failed.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ProcessPoolExecutor(
        min(workers, len(items)), mp_context=get_context("spawn"), initializer=die_with_parent
    ) as pool:
        futures = [pool.submit(function, item) for item in items]
        return [future.result() for future in futures]
