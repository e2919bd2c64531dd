"""A response cache in front of any engine, in SQLite so that concurrent runs and resumed runs share it.

Keys are sha256 over the model fingerprint, the method, the request and the sampling parameters (the seed is part
of them only for sampled requests). Only misses reach the engine, in one batched call.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

from harness.backends.base import LM, Completion, PartialResults, SamplingParams


class CachedLM(LM):
    """Wraps ``lm``; attributes it does not define (the white-box surface) are forwarded to ``lm``."""

    def __init__(self, lm: LM, db_path: Path):
        self.lm = lm
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.db_path, timeout=60, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA busy_timeout=60000")
        self._con.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name):
        """The wrapped engine's attributes (module, tokenizer, embedding_matrix, forward_embeddings, ...)."""
        lm = self.__dict__.get("lm")
        if lm is None:
            raise AttributeError(name)
        return getattr(lm, name)

    @property
    def fingerprint(self) -> str:
        return self.lm.fingerprint

    @property
    def name(self) -> str:
        return self.lm.name

    def _key(self, method: str, request, params: dict | None = None) -> str:
        text = json.dumps([self.lm.fingerprint, method, request, params], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def _cached(
        self, method: str, requests: list, compute, params: dict | None = None, encode=lambda v: v, decode=lambda v: v
    ) -> list:
        """Look every request up; send the misses to ``compute`` in one call; store what it returns."""
        if not self.lm.fingerprint:  # an engine that cannot name its weights is never cached
            return compute(requests)
        keys = [self._key(method, r, params) for r in requests]
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self._con.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk))
        missing, queued = [], set()
        for i, key in enumerate(keys):  # each distinct miss once, in request order
            if key not in found and key not in queued:
                queued.add(key)
                missing.append(i)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:  # all misses in one engine call, so the engine can batch them
            try:
                results = compute([requests[i] for i in missing])
            except PartialResults as exc:  # keep what finished, so a re-run asks only for the failed ones
                self._store([(keys[i], json.dumps(encode(v))) for i, v in zip(missing, exc.results) if v is not None])
                raise
            rows = [(keys[i], json.dumps(encode(v))) for i, v in zip(missing, results)]
            self._store(rows)
            found.update(rows)
        return [decode(json.loads(found[k])) for k in keys]

    def _store(self, rows: list[tuple[str, str]]) -> None:
        self._con.execute("BEGIN IMMEDIATE")  # one transaction: one fsync, and concurrent writers queue
        self._con.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)", rows)
        self._con.execute("COMMIT")

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        return self._cached(
            "generate",
            list(prompts),
            lambda ps: self.lm.generate(ps, params),
            params.key(),
            encode=lambda cs: [asdict(c) for c in cs],
            decode=lambda cs: [Completion(**c) for c in cs],
        )

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return self._cached(
            "loglikelihood",
            [list(r) for r in requests],
            lambda rs: self.lm.loglikelihood([tuple(r) for r in rs]),
            decode=tuple,
        )

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        return self._cached("loglikelihood_rolling", list(texts), self.lm.loglikelihood_rolling)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self.lm.close()
