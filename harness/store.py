"""Run records: one folder per run plus a SQLite index (WAL) that show/compare/leaderboard read.

A run's id is derived from its configuration, so re-running the same configuration finds the same folder and
resumes: finished samples (``samples.jsonl``) are read back instead of recomputed. Every file is written so that a
kill -9 at any moment leaves something consistent: JSON files by write-then-rename, JSONL by whole appended lines
(a torn last line is dropped on read), the index in transactions.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    task_version TEXT,
    model TEXT NOT NULL,
    fingerprint TEXT,
    status TEXT NOT NULL,
    primary_metric TEXT,
    metrics TEXT,
    created REAL NOT NULL,
    finished REAL,
    dir TEXT NOT NULL,
    variant TEXT,
    family TEXT,
    run_limit TEXT,
    model_args TEXT,
    error TEXT
)
"""
# columns added after the first schema (the task family, the run's --limit, its model args as JSON, the error line
# of a failed run): an index written before them gains them when opened
LATER_COLUMNS = ("variant", "family", "run_limit", "model_args", "error")


def config_hash(config: dict) -> str:
    """A short stable hash of the parts of a config that define the result."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def run_id(identity: dict) -> str:
    """A run's folder name: its task and a hash of its identity. A shard's (``--shard i/N``) is its whole run's id
    plus ``-<i>of<N>``, so the shards of one evaluation sit beside the run they merge into."""
    shard = identity.get("shard")
    whole = {key: value for key, value in identity.items() if key != "shard"}
    name = f"{_slug(identity.get('task', 'run'))}-{config_hash(whole)}"
    return f"{name}-{shard['index']}of{shard['count']}" if shard else name


def finished_status(config: dict) -> str:
    """A finished shard is indexed as "shard", not "finished": its metrics cover part of the samples, so the
    leaderboard and comparisons leave it out until ``harness merge`` makes the whole run."""
    return "shard" if config.get("shard") else "finished"


def write_json_atomic(path: Path, data) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file: a reader sees the old file or the new, never a part.
    The temporary file is this process's and thread's own: writers of one path at once (a run's worker processes
    updating its config) each replace the file whole instead of renaming each other's half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def append_jsonl(path: Path, records: list[dict], sync: bool = False, default: Callable[[Any], Any] = str) -> None:
    """Append records as JSON lines in a single write on an O_APPEND descriptor, so lines from several processes
    never mix; ``sync`` also waits until they are on disk (a kill after the call loses none). The one JSONL writer:
    samples, a run's series and the trainer's metrics all come through here."""
    if not records:
        return
    text = "".join(json.dumps(record, default=default) + "\n" for record in records)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = text.encode()
        while data:  # one write() normally; a short write (a full disk, a signal) continues where it stopped
            data = data[os.write(fd, data) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL file; a torn last line (from a kill mid-write) is ignored, other bad lines are errors."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # last line without newline: an interrupted append
                break
            raise UsageError(f"{path}:{number}: not valid JSON; fix or delete that line") from None
        if not isinstance(record, dict):
            raise UsageError(f"{path}:{number}: expected a JSON object per line; fix or delete that line")
        records.append(record)
    return records


def read_json(path: Path, fix: str = "delete it to recompute it") -> Any:
    """A JSON file a run reads back; a damaged one (a disk filled, a copy cut short) is a UsageError that names
    the file and ``fix``, never a bare JSONDecodeError."""
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is damaged ({_reason(exc)}); {fix}") from None


def read_intermediate(path: Path) -> Any | None:
    """A recomputable JSON intermediate of a run: None when absent, and also when damaged, after it is set aside
    (:func:`set_aside`), so the caller recomputes it instead of failing on every retry."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        set_aside(path, _reason(exc))
        return None


def set_aside(path: Path, reason: str) -> Path:
    """Move a damaged intermediate to ``<name>.damaged`` (kept for a look) with one warning line naming it."""
    aside = path.with_name(path.name + ".damaged")
    os.replace(path, aside)
    print(f"harness: warning: {path} was damaged ({reason}); moved it to {aside.name}, recomputing", file=sys.stderr)
    return aside


def _use_wal(con: sqlite3.Connection, patience: float = 60.0) -> None:
    """Switch the index to write-ahead logging (it stays so); SQLite answers 'locked' at once, without waiting,
    while another process holds the file, so the switch is retried."""
    deadline = time.monotonic() + patience
    while con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            con.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _reason(exc: Exception) -> str:
    return f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else type(exc).__name__


class Index:
    """The SQLite index of an output folder (``<out>/runs.db``)."""

    def __init__(self, out: Path):
        self.path = Path(out) / "runs.db"

    @contextlib.contextmanager
    def connect(self):
        """A connection; a read-only results folder is opened read-only, a damaged index is rebuilt first."""
        if self.path.exists() and not os.access(self.path.parent, os.W_OK):
            con = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True)
            con.row_factory = sqlite3.Row
            try:
                yield con
            finally:
                con.close()
            return
        try:
            con = self._open()
        except sqlite3.OperationalError:  # locked, busy, read-only: the file is fine, the error is the caller's
            raise
        except sqlite3.DatabaseError as exc:  # not a database, malformed: the run folders hold everything
            broken = self.path.with_name(f"runs.db.broken-{int(time.time())}")
            os.replace(self.path, broken)
            print(
                f"harness: {self.path} was damaged ({exc}); moved it to {broken.name} and rebuilt the index "
                "from the run folders",
                file=sys.stderr,
            )
            self.rebuild()
            con = self._open()
        try:
            yield con
        finally:
            con.close()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=60000")
            _use_wal(con)
            con.execute("BEGIN IMMEDIATE")  # processes opening one new index at once create and migrate it in turn
            con.execute(SCHEMA)
            have = {column[1] for column in con.execute("PRAGMA table_info(runs)")}
            for column in LATER_COLUMNS:
                if column not in have:
                    con.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
            con.execute("COMMIT")
            con.execute("SELECT count(*) FROM runs").fetchone()  # reads the table: a damaged file fails here
        except sqlite3.DatabaseError:
            con.close()
            raise
        con.row_factory = sqlite3.Row
        return con

    def rebuild(self) -> int:
        """Index every run folder under the results folder (config.yaml, metrics.json); returns how many."""
        import yaml

        count = 0
        for config_file in sorted(self.path.parent.glob("*/config.yaml")):
            try:
                config = yaml.safe_load(config_file.read_text()) or {}
            except (yaml.YAMLError, UnicodeDecodeError) as exc:  # one damaged folder does not hide the others
                print(
                    f"harness: warning: {config_file} is damaged ({type(exc).__name__}); not indexed", file=sys.stderr
                )
                continue
            run = Run(self.path.parent, config_file.parent.name, config)
            started = {"created": started_time(config)}  # the run's own start, not the rebuild's
            metrics_file = run.dir / "metrics.json"
            try:
                metrics = json.dumps(read_json(metrics_file, "delete it and re-run to finish the run"))
            except (OSError, UsageError) as exc:
                metrics = None
                if metrics_file.exists():
                    print(f"harness: warning: {exc}", file=sys.stderr)
            if metrics is not None:
                finished = metrics_file.stat().st_mtime
                primary = config.get("primary_metric")
                run._index(
                    finished_status(config), primary_metric=primary, metrics=metrics, finished=finished, **started
                )
            else:
                run._index("interrupted", error=config.get("error") or "", **started)
            count += 1
        return count

    def upsert(self, **row) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c}=excluded.{c}" for c in row if c not in ("run_id", "created"))
        with self.connect() as con:
            con.execute(
                f"INSERT INTO runs ({cols}) VALUES ({marks}) ON CONFLICT(run_id) DO UPDATE SET {updates}",
                list(row.values()),
            )

    def runs(self, status: str | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        with self.connect() as con:
            query = "SELECT * FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY created"
            return [_row(r) for r in con.execute(query, (status,) if status else ())]

    def remove(self, run_id: str) -> None:
        """Forget a run (its folder is the caller's to delete)."""
        with self.connect() as con:
            con.execute("DELETE FROM runs WHERE run_id=?", (run_id,))

    def get(self, run_id: str) -> dict:
        """The run whose id is ``run_id`` or starts with it (unique prefix)."""
        with self.connect() as con:  # a literal prefix: no LIKE wildcards, case counts
            rows = [
                _row(r) for r in con.execute("SELECT * FROM runs WHERE substr(run_id, 1, ?) = ?", (len(run_id), run_id))
            ]
        exact = [r for r in rows if r["run_id"] == run_id]
        if exact or len(rows) == 1:
            return (exact or rows)[0]
        if not rows:
            from harness.errors import unknown

            raise unknown("run", run_id, [r["run_id"] for r in self.runs()])
        raise UsageError(f"run id '{run_id}' is ambiguous ({len(rows)} runs match); give more characters")


def started_time(config: dict) -> float | None:
    """When a run began, from config.yaml's ``started`` (``%Y-%m-%dT%H:%M:%S%z``); None when missing or unreadable."""
    from datetime import datetime

    started = config.get("started")
    if isinstance(started, datetime):  # YAML may have read it as a timestamp already
        return started.timestamp()
    try:
        return datetime.strptime(str(started), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def _row(row: sqlite3.Row) -> dict:
    data = dict(row)
    if data["status"] == "running" and not _locked(Path(data["dir"])):
        data["status"] = "interrupted"  # killed: no process holds its lock any more
    data["metrics"] = json.loads(data["metrics"]) if data["metrics"] else {}
    data["model_args"] = json.loads(data["model_args"]) if data.get("model_args") else {}
    return data


def _locked(folder: Path) -> bool:
    """Whether a live process holds the run's lock (a killed process's lock is released by the kernel)."""
    try:
        with open(folder / ".lock") as f:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


class Run:
    """One run's folder: config, samples, metrics, time series and plots."""

    def __init__(self, out: Path, run_id: str, config: dict):
        self.out = Path(out).absolute()
        self.id = run_id
        self.config = config
        self.dir = self.out / run_id
        self.index = Index(self.out)
        self._lock = None
        self.listeners: list[Callable[[int, dict], None]] = []  # told of each series point after it is written

    def __getstate__(self) -> dict:
        # the lock belongs to the process that opened the run, and so do its listeners (trackers)
        return {**self.__dict__, "_lock": None, "listeners": []}

    @classmethod
    def open(cls, out: Path, config: dict, identity: dict) -> Run:
        """Create or reopen the run defined by ``identity`` (the result-defining part of ``config``)."""
        run = cls(out, run_id(identity), config)
        try:
            run.dir.mkdir(parents=True, exist_ok=True)
            (run.dir / ".write-check").touch()
        except OSError as exc:
            raise UsageError(
                f"--out {out}: cannot write a run folder there ({exc.strerror}); give a writable folder"
            ) from None
        run._acquire()
        resumed = (run.dir / "config.yaml").exists()
        run.write_config()
        run._index("running")
        run.resumed = resumed
        return run

    def _acquire(self) -> None:
        self._lock = open(self.dir / ".lock", "w")  # noqa: SIM115 - held for the run's lifetime
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"run {self.id} is already running in another process; wait for it or change --seed/--out"
            ) from None

    def write_config(self) -> None:
        import yaml

        write_bytes_atomic(self.dir / "config.yaml", yaml.safe_dump(self.config, sort_keys=False).encode())

    def update_config(self, **fields) -> None:
        """Record something learned during the run (a model fingerprint, a chat template)."""
        self.config.update(fields)
        self.write_config()

    # samples ---------------------------------------------------------------------------------------------------
    @property
    def samples_path(self) -> Path:
        return self.dir / "samples.jsonl"

    def samples(self) -> list[dict]:
        return read_jsonl(self.samples_path)

    def append_samples(self, records: list[dict]) -> None:
        """Append whole lines and flush them to disk so that a kill keeps every finished sample."""
        if not records:
            return
        self._repair_tail(self.samples_path)
        append_jsonl(self.samples_path, records, sync=True)

    @staticmethod
    def _repair_tail(path: Path) -> None:
        """Cut a torn last line left by a kill, so the next append starts on a fresh line."""
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])

    # metrics ---------------------------------------------------------------------------------------------------
    def log(self, step: int, values: dict) -> None:
        """Append one point of a time series to ``metrics.jsonl``, then tell the listeners (the run's trackers)."""
        append_jsonl(self.dir / "metrics.jsonl", [{"step": step, **values}], default=float)
        for listener in self.listeners:
            listener(step, values)

    def series(self) -> list[dict]:
        return read_jsonl(self.dir / "metrics.jsonl")

    def finish(self, metrics: dict, primary_metric: str | None = None) -> None:
        self.update_config(primary_metric=primary_metric)  # the folder alone can rebuild the index
        write_json_atomic(self.dir / "metrics.json", metrics)
        self._index(
            finished_status(self.config),
            primary_metric=primary_metric,
            metrics=json.dumps(metrics, default=float),
            finished=time.time(),
        )

    def fail(self, status: str = "failed", reason: str = "") -> None:
        """Mark the run failed (or interrupted) and keep the error line that says why."""
        self._index(status, error=reason.strip().splitlines()[-1][:500] if reason.strip() else "", finished=time.time())

    def _index(self, status: str, **fields) -> None:
        """Write this run's row; ``created`` is kept from the first write."""
        self.index.upsert(
            run_id=self.id,
            task=self.config.get("task") or "",
            model=self.config.get("model") or "",
            task_version=str(self.config.get("task_version", "")),
            fingerprint=self.config.get("fingerprint") or "",
            status=status,
            created=fields.pop("created", None) or time.time(),  # popped before ``fields`` is spread below
            dir=str(self.dir),
            variant=self.config.get("variant") or "",
            family=self.config.get("task_family") or "",
            run_limit="" if self.config.get("limit") is None else str(self.config["limit"]),
            model_args=json.dumps(self.config.get("model_args") or {}, sort_keys=True, default=str),
            **{"error": "", **fields},
        )

    def path(self, name: str) -> Path:
        """Where to write an artifact (a plot, a checkpoint) of this run."""
        return self.dir / name

    def close(self) -> None:
        if self._lock:
            self._lock.close()
            self._lock = None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)[:40]
