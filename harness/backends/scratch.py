"""``scratch:``: serve a model trained by the harness (a checkpoint folder or a run folder holding one).

Generation recomputes the whole sequence each step (no KV cache: these models are small) but batches all rows
of a request list: prompts are right-padded, each row reads the logits at its own last token, and causal
attention means padding after a row's end never changes its logits. Sampling is harness.sampling's: the k-th
sample of a prompt draws from ``derive_seed(seed, prompt, k)``, so a prompt's samples do not depend on which
other prompts share the batch. Sequences are cut to ``max_seq_len`` from the left; generation stops at
``max_seq_len`` total tokens. Logprobs are the model's (before temperature and filtering), as on every engine.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from harness.backends.base import (
    LM,
    Completion,
    OnStep,
    SamplingParams,
    Token,
    default_device,
    fingerprint,
    resolve_dtype,
)
from harness.errors import UsageError
from harness.sampling import sample, sample_generator


def find_checkpoint(target: str) -> Path:
    """The checkpoint folder named by ``target``: the folder itself, or its ``checkpoint/`` or ``model/``."""
    path = Path(target).expanduser()
    for candidate in (path, path / "model", path / "checkpoint"):
        if (candidate / "config.json").exists() and (candidate / "model.safetensors").exists():
            return candidate
    raise UsageError(
        f"scratch:{target}: no checkpoint (config.json + model.safetensors) in it, its model/ or "
        "checkpoint/; give a folder written by save_checkpoint_dir or the Trainer"
    )


class ScratchLM(LM):
    """A harness Transformer with its WordTokenizer behind the request API, plus the white-box surface."""

    name = "scratch"
    streams = True

    def __init__(
        self,
        target: str,
        device: str | None = None,
        batch_size: int = 64,
        add_bos: bool | None = None,
        dtype: str | None = None,
    ):
        """target: a checkpoint folder or a run folder holding one; device: the GPU if any; dtype: the shared policy
        (base.DTYPES); batch_size: rows per forward; add_bos: default from the checkpoint's extra.json."""
        from harness.models.checkpoint import load_checkpoint_dir

        if batch_size < 1:
            raise UsageError(f"batch_size={batch_size}: give a positive number of rows (--model-args batch_size=...)")
        device = device or default_device()
        self.dtype = resolve_dtype(dtype, device)
        folder = find_checkpoint(target)
        module, tokenizer, extra = load_checkpoint_dir(folder, device=device)
        if tokenizer is None or getattr(module, "config", None) is None or module.config.head != "lm":
            raise UsageError(f"scratch:{target}: need a language model (head='lm') saved with its tokenizer")
        self.module = module.eval().to(device=device, dtype=getattr(torch, self.dtype))
        self.tokenizer = tokenizer
        self.extra = extra
        self.fingerprint = fingerprint("scratch", folder, self.dtype)
        self.device = device
        self.batch_size = batch_size
        self.add_bos = extra.get("add_bos", True) if add_bos is None else add_bos
        self.max_len = module.config.max_seq_len

    # white-box surface --------------------------------------------------------------------------------------
    @property
    def embedding_matrix(self) -> torch.Tensor:
        return self.module.tok_emb.weight

    @property
    def eos_token_id(self) -> int | None:
        return self.tokenizer.eos_id

    def forward_embeddings(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) from token embeddings (B, T, C); positions are added inside the model."""
        return self.module(inputs_embeds=inputs_embeds)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids)

    def _prefix(self) -> list[int]:
        return [self.tokenizer.bos_id] if self.add_bos and self.tokenizer.bos_id is not None else []

    # requests -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _logits(self, rows: list[list[int]]) -> torch.Tensor:
        """Log-probabilities (N, T_max, V) for right-padded rows."""
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_id or 0
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
        return F.log_softmax(self.module(ids).float(), dim=-1)

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        results = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            rows, spans = [], []
            for context, continuation in chunk:
                ctx, cont = self._prefix() + self.encode(context), self.encode(continuation)
                if not cont:
                    raise UsageError("loglikelihood: empty continuation")
                if not ctx:
                    raise UsageError("loglikelihood: empty context and no <bos> to condition on; add_bos=true")
                row = (ctx + cont)[-self.max_len :]
                rows.append(row)
                spans.append(len(cont))
            logprobs = self._logits(rows)
            for i, (row, n) in enumerate(zip(rows, spans)):
                positions = torch.arange(len(row) - n - 1, len(row) - 1, device=self.device)
                targets = torch.tensor(row[-n:], device=self.device)
                scores = logprobs[i, positions]  # (n, V)
                total = float(scores.gather(1, targets[:, None]).sum())
                results.append((total, bool((scores.argmax(-1) == targets).all())))
        return results

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        """Total logprob of each text after <bos>, in disjoint windows of max_seq_len - 1 predicted tokens."""
        if self.tokenizer.bos_id is None:
            raise UsageError("loglikelihood_rolling needs a <bos> token in the tokenizer")
        totals = []
        for text in texts:
            tokens = [self.tokenizer.bos_id] + self.encode(text)
            pairs = []
            for start in range(1, len(tokens), self.max_len - 1):
                window = tokens[start - 1 : start - 1 + self.max_len]
                pairs.append((window, len(window) - 1))
            total = 0.0
            for window, n in pairs:
                logprobs = self._logits([window])[0]  # (T, V)
                targets = torch.tensor(window[1:], device=self.device)
                total += float(logprobs[:n].gather(1, targets[:, None]).sum())
            totals.append(total)
        return totals

    def generate(
        self, prompts: list[str], params: SamplingParams, on_step: OnStep | None = None
    ) -> list[list[Completion]]:
        """``on_step``: see base.OnStep (harness serve streams tokens and drops departed clients through it)."""
        rows = [(p, j) for p in range(len(prompts)) for j in range(params.n)]
        done: dict[tuple[int, int], Completion] = {}
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            gone = set(on_step([])) if on_step else set()  # stopped before their chunk began
            for key in chunk:
                done[key] = Completion("", finish_reason="abort")
            chunk = [(p, j) for p, j in chunk if p not in gone]
            if not chunk:
                continue
            for key, completion in zip(chunk, self._generate_rows(prompts, chunk, params, on_step)):
                done[key] = completion
        return [[done[(p, j)] for j in range(params.n)] for p in range(len(prompts))]

    @torch.no_grad()
    def _generate_rows(
        self, prompts: list[str], rows: list[tuple[int, int]], params: SamplingParams, on_step: OnStep | None
    ):
        """One completion per row; a row is (prompt index, sample index). ``on_step`` hears each step's tokens."""
        seqs = [(self._prefix() + self.encode(prompts[p]))[-(self.max_len - 1) :] for p, _ in rows]
        if not all(seqs):
            raise UsageError("generate: empty prompt and no <bos> to start from; pass add_bos=true")
        generators = [sample_generator(params.seed, prompts[p], j, self.device) for p, j in rows]
        banned = self.eos_token_id if params.ignore_eos else None
        outs = [Completion(text="") for _ in rows]
        active = list(range(len(rows)))
        for _ in range(params.max_tokens):
            active = [i for i in active if len(seqs[i]) < self.max_len]
            if not active:
                break
            logprobs = self._logits([seqs[i] for i in active])
            last = logprobs[torch.arange(len(active)), torch.tensor([len(seqs[i]) - 1 for i in active])]  # (R, V)
            tokens = sample(
                last, [generators[i] for i in active], params.temperature, params.top_k, params.top_p, banned=banned
            )
            step = []
            for row, (i, token) in enumerate(zip(active, tokens.tolist())):
                seqs[i].append(token)
                kept = len(outs[i].token_ids)
                self._extend(outs[i], token, float(last[row, token]), params)
                if len(outs[i].token_ids) > kept:  # not the EOS that ended it
                    step.append(Token(*rows[i], token, outs[i].logprobs[-1]))
            stopped = set(on_step(step)) if on_step else set()
            for i in active:
                if rows[i][0] in stopped:
                    outs[i].finish_reason = "abort"
            active = [i for i in active if outs[i].finish_reason not in ("stop", "abort")]
        return outs

    def _extend(self, out: Completion, token: int, logprob: float, params: SamplingParams) -> None:
        if token == self.eos_token_id and not params.ignore_eos:
            out.finish_reason = "stop"
            return
        out.token_ids.append(token)
        out.logprobs.append(logprob)
        out.text = self.decode(out.token_ids)
        for stop in params.stop:
            if stop and stop in out.text:
                out.text = out.text[: out.text.index(stop)]
                out.finish_reason = "stop"
                return
