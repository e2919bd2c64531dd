"""Experiment trackers (``--log NAME``): a run's config, metrics, training series and artifacts sent to MLflow,
W&B, TensorBoard or a third party's tracker, each a plugin registered through ``harness_register_trackers``.

The run's own records come first: the config is on disk before a tracker starts, a series point is in
``metrics.jsonl`` before a tracker sees it, ``metrics.json`` before the tracker's end. A tracker that raises (a bad
URI, a server that is down, its library missing) is named in one line on stderr and dropped for the rest of the
run; the run goes on, and ``harness log RUN --to NAME`` sends it later.

Series are streamed from the process that opened the run; points logged in worker processes (a task's
``ctx.map``) and before a resume reach the trackers from ``metrics.jsonl`` when the run ends. Each attempt of a run
is one complete run in the tracker.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Protocol

from harness.store import Run

ENV = "HARNESS_LOG"
OPTION_HELP = "send the run to an experiment tracker: mlflow, wandb, tensorboard (repeatable; default $HARNESS_LOG=a,b)"
RECORDS = ("config.yaml", "metrics.json", "samples.jsonl", "metrics.jsonl")  # sent as artifacts when present
PLOTS = (".png", ".svg", ".pdf")
SECRET = re.compile(r"(api[_-]?key|token|secret|password|passwd|credentials?)$", re.IGNORECASE)
Points = list[tuple[int, dict[str, float]]]


class Tracker(Protocol):
    """What a tracker factory returns; the core calls these in order, each at most once but ``series``."""

    def start(self, run: Run, parent: str | None) -> None:
        """The run begins (its ``config.yaml`` is written): ``run.config``, ``run.id``, ``run.dir``, ``run.out``;
        ``parent`` is the id of the harness run this one belongs to (a sweep's, for its points), else None."""

    def series(self, points: Points) -> None:
        """Points of the run's training series, ``[(step, {name: value})]``, in the order they were logged."""

    def metrics(self, metrics: dict[str, float]) -> None:
        """The run's final scalar metrics (``metrics.json``; non-numbers left out)."""

    def artifact(self, path: Path) -> None:
        """A file of the run (a plot, ``samples.jsonl``, ``config.yaml``); its name is ``path.relative_to(run.dir)``."""

    def end(self, status: str, error: str) -> None:
        """The run is over: ``status`` is ``finished``, ``failed`` or ``interrupted``; ``error`` the reason line."""


def selected(names: list[str] | None) -> list[str]:
    """The trackers asked for: ``--log`` (repeatable, each may be ``a,b``), else ``$HARNESS_LOG=a,b``; each once."""
    given = names if names else [os.environ.get(ENV, "")]
    found = [n.strip() for text in given for n in text.split(",") if n.strip()]
    return list(dict.fromkeys(found))


def check(names: list[str]) -> None:
    """Refuse an unknown tracker name before the run starts (exit 2, with did-you-mean)."""
    from harness.registry import get_plugins

    for name in names:
        get_plugins().registry("trackers").get(name)


def numbers(values: dict) -> dict[str, float]:
    """The numeric entries of ``values`` as floats (a tracker plots numbers; strings and lists stay in the files)."""
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and k != "step"}


def flat(config: dict, prefix: str = "") -> dict:
    """A run's config flattened to ``{"a.b": value}`` for a tracker's params; a key that names a secret (an API key,
    a token, a password) is left out, so nothing a record holds under such a name reaches a tracker."""
    found = {}
    for key, value in config.items():
        if SECRET.search(str(key)):
            continue
        if isinstance(value, dict) and value:
            found.update(flat(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def artifacts(run_dir: Path) -> list[Path]:
    """The files a tracker keeps of a run: its records and every plot in its folder (checkpoints stay behind)."""
    run_dir = Path(run_dir)
    found = [run_dir / name for name in RECORDS if (run_dir / name).is_file()]
    plots = [p for p in run_dir.rglob("*") if p.suffix in PLOTS and p.is_file() and "wandb" not in p.parts]
    return found + sorted(plots)


class Tracking:
    """The trackers of one run: every event goes to each of them, and one that fails is named once and dropped."""

    def __init__(self, run: Run, names: list[str], parent: str | None = None):
        from harness.registry import get_plugins

        self.run = run
        self.active: dict[str, Tracker] = {}
        self.sent: set[tuple[int, str]] = set()  # (step, name) streamed in this process
        registry = get_plugins().registry("trackers") if names else None
        for name in names:
            tracker = self._guard(name, lambda n=name: registry.get(n).factory())
            if tracker is not None:
                self.active[name] = tracker
                self._call(name, "start", run, parent)

    @classmethod
    def start(cls, run: Run, names: list[str], parent: str | None = None) -> Tracking:
        """Start the trackers ``names`` on ``run`` and stream its series to them from now on."""
        tracking = cls(run, names, parent)
        if tracking.active:
            run.listeners.append(tracking.log)
        return tracking

    def log(self, step: int, values: dict) -> None:
        """One series point, just appended to ``metrics.jsonl`` by this process."""
        point = numbers(values)
        if self.active and point:
            self.sent.update((step, k) for k in point)
            self._each("series", [(step, point)])

    def finish(self, metrics: dict | None, status: str = "finished", error: str = "") -> None:
        """The run ended (its records are written): the series points not streamed yet, the metrics, the files, the
        end. ``metrics`` None: a failed run (its series and files so far are still sent)."""
        if not self.active:
            return
        if self.log in self.run.listeners:
            self.run.listeners.remove(self.log)
        rest = []  # points logged by worker processes, or before a resume
        for record in self.series():
            step = record["step"]
            if values := {k: v for k, v in numbers(record).items() if (step, k) not in self.sent}:
                rest.append((step, values))
        if rest:
            self._each("series", rest)
        if metrics is not None:
            self._each("metrics", {k: v for k, v in numbers(metrics).items() if math.isfinite(v)})
        for path in artifacts(self.run.dir):
            self._each("artifact", path)
        self._each("end", status, error)

    def series(self) -> list[dict]:
        try:
            return [r for r in self.run.series() if isinstance(r.get("step"), int)]
        except Exception:  # a malformed metrics.jsonl is the run's problem, not the tracker's
            return []

    def _each(self, method: str, *args) -> None:
        for name in list(self.active):
            self._call(name, method, *args)

    def _call(self, name: str, method: str, *args) -> None:
        if name in self.active:
            self._guard(name, lambda: getattr(self.active[name], method)(*args))

    def _guard(self, name: str, action):
        """``action()``, or None after one stderr line that names the tracker and how to send the run later."""
        try:
            return action()
        except Exception as exc:  # a tracker never takes the run down
            self.active.pop(name, None)
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            print(
                f"harness: tracker '{name}' failed ({type(exc).__name__}: {reason}); the run is kept in "
                f"{self.run.dir}: send it later with `harness log {self.run.id} --to {name}`",
                file=sys.stderr,
            )
            return None


def replay(run: Run, names: list[str], status: str, error: str = "", parent: str | None = None) -> list[str]:
    """Send a recorded run to the trackers ``names`` (``harness log``); returns the ones that took it."""
    import json

    if not names:
        return []
    tracking = Tracking(run, names, parent)
    metrics_file = run.dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else None
    tracking.finish(metrics, status, error)
    return list(tracking.active)


def replay_folder(folder: Path, names: list[str], status: str = "finished", error: str = "", parent=None) -> list[str]:
    """:func:`replay` for the run in ``folder`` (its ``config.yaml`` read back)."""
    import yaml

    folder = Path(folder)
    config_file = folder / "config.yaml"
    config = (yaml.safe_load(config_file.read_text()) if config_file.exists() else None) or {}
    return replay(Run(folder.parent, folder.name, config), names, status, error, parent)
