"""One prompt-inversion problem: the model, the target prompt, its documents (train and held-out) and the KL.

Choices not fixed by the paper:
- ``n_docs`` documents are sampled for the search and ``n_heldout`` more (default: as many) for the held-out KL,
  all in one seeded batch from P(.|p*) at temperature 1 with every EOS id masked out.
- A ``--documents`` file is split the same way after a seeded shuffle; its documents are truncated to ``doc_len``
  tokens. Without a target prompt the KL needs each line's ``target_logprob`` (as written to documents.jsonl);
  otherwise only the cross-entropy is known and the KL metrics are NaN.
- The default initial prompt is "! " repeated ``prompt_len`` times (stripped), as in the paper.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from harness.plugins.propane.objective import Objective
from harness.plugins.propane.whitebox import Template, WhiteBox

from harness import seeding
from harness.errors import UsageError
from harness.evaluation import mean_stderr

RANK_DTYPES = ("bfloat16", "float32")  # float32: every proposal scored exactly


@dataclass
class Settings:
    """The options every PROPANE optimizer shares (CLI flags and --args)."""

    target_prompt: str | None = None
    documents: str | None = None
    steps: int = 100
    prompt_len: int | None = None  # default 15 for the "! " init; the --init's own length otherwise
    topk: int = 256
    n_docs: int = 32
    n_heldout: int | None = None
    doc_len: int = 32
    gamma: float = 0.0
    init: str | None = None
    batch_size: int = 64
    kl_threshold: float | None = None
    eval_every: int = 1
    max_batch_tokens: int = 8192
    rank_dtype: str = "bfloat16"  # proposals are ranked in this dtype, the best `rescore` rescored in float32
    rescore: int = 4

    def check(self) -> None:
        if not self.target_prompt and not self.documents:
            raise UsageError("give --args target_prompt=TEXT (or documents=FILE.jsonl) to say which outputs to match")
        if self.rank_dtype not in RANK_DTYPES:
            choices = ", ".join(RANK_DTYPES)
            raise UsageError(f"rank_dtype={self.rank_dtype}: choose one of {choices} (--args rank_dtype=...)")
        names = ("steps", "topk", "n_docs", "doc_len", "batch_size", "eval_every", "max_batch_tokens", "rescore")
        for name in names:
            if getattr(self, name) < 1 and not (name == "steps" and self.steps == 0):
                raise UsageError(f"{name} must be positive, got {getattr(self, name)} (--args {name}=...)")
        if self.prompt_len is not None and self.prompt_len < 1:
            raise UsageError(f"prompt_len must be positive, got {self.prompt_len} (--args prompt_len=...)")
        if self.gamma < 0:
            raise UsageError(f"gamma={self.gamma}: the fluency weight must be >= 0 (--args gamma=...)")


@dataclass
class Split:
    """Documents of one split, their objective, and log P(d | p*) (None when the target is unknown)."""

    docs: torch.Tensor
    mask: torch.Tensor
    objective: Objective
    target_nll: torch.Tensor | None

    def kl(self, doc_nll: torch.Tensor) -> torch.Tensor:
        """Per-document KL estimate log P(d|p*) - log P(d|p) (NaN without target log-probs)."""
        if self.target_nll is None:
            return torch.full_like(doc_nll, float("nan"))
        return doc_nll - self.target_nll


class Problem:
    """Everything an optimizer needs, built once per run."""

    def __init__(self, lm, settings: Settings, seed: int, chat: bool = False):
        settings.check()
        self.settings = settings
        self.seed = seed
        self.box = WhiteBox(lm, chat=chat)
        self.template: Template = self.box.template()
        self.allowed = self.box.allowed_tokens()
        self.target_ids = self.box.encode(settings.target_prompt) if settings.target_prompt else None
        if self.target_ids == []:
            raise UsageError("target_prompt encodes to no tokens; give a non-empty prompt")
        self.init_ids = self._init_ids()
        self._check_length()
        train, heldout, target_logprobs = self._documents()
        self.train = self._split(*train, target_logprobs[0])
        self.heldout = self._split(*heldout, target_logprobs[1])
        self._add_ranker()

    # prompts ---------------------------------------------------------------------------------------------------
    def _init_ids(self) -> list[int]:
        """Ids of --init (warm start) or of "! ! ...", padded with "!" or cut to --prompt-len when both are given."""
        length = self.settings.prompt_len
        if self.settings.init is None:
            return self.box.exclamations(length or 15)
        ids = self.box.encode(self.settings.init)
        if not ids:
            raise UsageError("init encodes to no tokens; give a non-empty initial prompt")
        if length is not None:
            ids = (ids + [self.box.filler_id()] * length)[:length]
        return ids

    def _check_length(self) -> None:
        """Template + prompt + document must fit the model (scratch models are often short)."""
        limit = self.box.max_length
        prompt = max(len(self.init_ids), len(self.target_ids or []))
        needed = len(self.context([0] * prompt)) + self.settings.doc_len
        if limit is not None and needed > limit:
            raise UsageError(
                f"prompt ({prompt} tokens) + template + doc_len {self.settings.doc_len} = {needed} "
                f"tokens, over the model's {limit}; lower doc_len or prompt_len (--args)"
            )

    def context(self, prompt_ids: list[int]) -> list[int]:
        return self.template.prefix + list(prompt_ids) + self.template.suffix

    # documents -------------------------------------------------------------------------------------------------
    def _documents(self):
        settings = self.settings
        n_heldout = settings.n_heldout if settings.n_heldout is not None else settings.n_docs
        if settings.documents:
            docs, mask, logprobs = read_documents(Path(settings.documents), self.box, settings.doc_len)
            order = list(range(len(docs)))
            seeding.rng(self.seed, "propane-split").shuffle(order)
            if len(order) < 2:
                raise UsageError(f"{settings.documents}: need at least 2 documents (train and held-out)")
            cut = min(settings.n_docs, len(order) - max(1, min(n_heldout, len(order) // 2)))
            train, heldout = order[:cut], order[cut : cut + n_heldout]
            pick = lambda idx: (docs[idx], mask[idx])  # noqa: E731
            known = logprobs if self.target_ids is None and logprobs is not None else None
            return (
                pick(train),
                pick(heldout),
                (None if known is None else known[train], None if known is None else known[heldout]),
            )
        generator = seeding.generator(self.seed, "propane-documents")
        docs = self.box.sample(self.context(self.target_ids), settings.n_docs + n_heldout, settings.doc_len, generator)
        mask = torch.ones_like(docs, dtype=torch.bool)
        cut = settings.n_docs
        return (docs[:cut], mask[:cut]), (docs[cut:], mask[cut:]), (None, None)

    def _split(self, docs, mask, known_logprob) -> Split:
        objective = Objective(self.box, self.template, docs, mask, self.settings.max_batch_tokens)
        if self.target_ids is not None:
            target_nll = objective.doc_nll(torch.tensor([self.target_ids]))[0]
        else:
            target_nll = None if known_logprob is None else -known_logprob
        return Split(docs, mask, objective, target_nll)

    def _add_ranker(self) -> None:
        """Rank training proposals with a bfloat16 copy of a float32 model (hf modules: they continue from a KV
        cache; a scratch model's forward is the backend's own and is left as it is)."""
        dtype = getattr(torch, self.settings.rank_dtype)
        if dtype == self.box.dtype or not self.box.continues_from_cache:
            return
        objective = self.train.objective
        objective.ranker = Objective(
            self.box.cast(dtype), self.template, self.train.docs, self.train.mask, self.settings.max_batch_tokens
        )
        objective.rescore = self.settings.rescore

    def heldout_kl(self, prompt) -> tuple[float, float]:
        """Held-out KL of a prompt (ids (L,) or embeddings (L, d)): mean and stderr over documents."""
        prompt = prompt if torch.is_tensor(prompt) else torch.tensor(prompt)
        nll = self.heldout.objective.doc_nll(prompt[None])[0]
        if self.heldout.target_nll is None:
            return float("nan"), float("nan")
        return mean_stderr(self.heldout.kl(nll).tolist())

    def document_records(self) -> list[dict]:
        """documents.jsonl lines: split, text, token ids and log P(d | p*) when known."""
        records = []
        for name, split in (("train", self.train), ("heldout", self.heldout)):
            for i, (doc, mask) in enumerate(zip(split.docs, split.mask)):
                ids = doc[mask].tolist()
                logprob = None if split.target_nll is None else -float(split.target_nll[i])
                records.append(
                    {"split": name, "text": self.box.decode(ids), "token_ids": ids, "target_logprob": logprob}
                )
        return records


def read_documents(path: Path, box: WhiteBox, doc_len: int):
    """Documents from JSONL (``text`` or ``token_ids`` per line): right-padded ids (n, Ld), mask, target logprobs."""
    if not path.exists():
        raise UsageError(f"--documents {path}: no such file; give a JSONL file with a 'text' per line")
    rows, logprobs = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            ids = record["token_ids"] if "token_ids" in record else box.encode(record["text"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UsageError(f"{path}:{number}: expected a JSON object with 'text' or 'token_ids'") from None
        if not ids:
            continue
        if max(ids) >= box.vocab_size or min(ids) < 0:
            raise UsageError(f"{path}:{number}: token id out of this model's vocabulary; give 'text' instead")
        rows.append([int(i) for i in ids][:doc_len])
        logprob = record.get("target_logprob")
        logprobs.append(float(logprob) if isinstance(logprob, int | float) and len(ids) <= doc_len else math.nan)
    if not rows:
        raise UsageError(f"{path}: no documents; give one JSON object with 'text' per line")
    width = max(len(r) for r in rows)
    docs = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        docs[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = True
    known = torch.tensor(logprobs)
    return docs, mask, (None if torch.isnan(known).any() else known)
