"""Worker processes that die with their parent.

Tasks that train several models side by side and local sweeps run work in spawned processes. A worker asks the
kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``, Linux), so a ``kill -9`` of ``harness run`` never
leaves trainers behind writing into a run folder whose lock is already free.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterable, Iterator


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


def map_in_processes(function: Callable, items: Iterable, workers: int, threads: int | None = None) -> list:
    """``[function(item) for item in items]`` in up to ``workers`` spawned processes that die with this one, each
    on ``threads`` torch threads (None: torch's default).

    ``function`` and the items must be picklable. Results come back in order; the first exception is raised once
    every submitted item has finished or failed.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with process_pool(min(workers, len(items)), initargs=(threads,)) as pool:
        futures = [pool.submit(function, item) for item in items]
        return [future.result() for future in futures]


@contextlib.contextmanager
def process_pool(workers: int, **options) -> Iterator:
    """A ``ProcessPoolExecutor`` of spawned workers that die with this process, closed on every way out.

    An error in an item lets the others finish (the pool shuts down as ``with`` would). An interruption (Ctrl-C,
    or SIGTERM, which ``harness`` turns into one) stops the workers at once (:func:`stop_workers`) instead of
    waiting minutes for them, and still shuts the pool down: its queues' named semaphores are released, where an
    exit that skipped this left the resource tracker to report "leaked semaphore objects".
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=worker_start, **options)
    try:
        yield pool
    except (KeyboardInterrupt, SystemExit):
        stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(pool, grace: float = 10.0) -> None:
    """Stop a pool's workers now. SIGTERM is a KeyboardInterrupt in a worker (:func:`worker_start`): it leaves its
    item, takes the pool's sentinel and exits through its finalizers (killed outright it would leak its own
    semaphores, tqdm's lock among them); SIGKILL for any still alive after ``grace`` seconds."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)  # the pool sends each worker its sentinel once items return
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=grace)
        if process.is_alive():
            process.kill()
            process.join(timeout=grace)


def worker_start(threads: int | None = None) -> None:
    """A pool worker's initializer: die with the parent, take SIGTERM as KeyboardInterrupt (see stop_workers), and
    run on ``threads`` torch threads when given."""
    die_with_parent()
    signal.signal(signal.SIGTERM, _interrupt)
    if threads:
        import torch

        torch.set_num_threads(threads)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block on ``threads`` torch threads (None: as they are) and restore the count after: the run sets a
    task's thread count (its ``threads``), so tasks of one suite or sweep process do not inherit each other's."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) raises KeyboardInterrupt in the main thread, so a killed run is
    recorded as interrupted and closes its worker pools like Ctrl-C, instead of exiting past every ``finally``."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
