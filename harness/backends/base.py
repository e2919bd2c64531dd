"""The request API every engine implements, and what every engine shares: how its ``--model-args`` are
checked, the dtype policy and the fingerprint that keys the response cache."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from harness.errors import UsageError

# The dtype policy of the local engines (hf, vllm, scratch): these three, float32 on a CPU and bfloat16 on a GPU
# unless --model-args dtype=... says otherwise. float16 is allowed but never a default (it overflows in some models).
DTYPES = ("float32", "bfloat16", "float16")
SAMPLER_VERSION = 2  # bumped when the same seed starts giving other samples (keys sampled requests in the cache)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; the same fields on every engine. ``temperature=0`` means greedy."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # keep sampling past EOS (PROPANE samples documents this way)

    def key(self) -> dict:
        """The fields that identify a request in the response cache (the seed only matters when sampling)."""
        fields = asdict(self)
        if self.temperature == 0:
            fields.pop("seed")
        else:
            fields["sampler"] = SAMPLER_VERSION
        return fields


@dataclass
class Completion:
    """One generated continuation."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # per generated token, under the model (before temperature)
    finish_reason: str = "length"  # "stop" (EOS or stop string) or "length"


class Token(NamedTuple):
    """One generated token, reported while generation runs (``LM.generate``'s ``on_step``, on engines that stream)."""

    prompt: int  # index into generate's prompts
    sample: int  # which of that prompt's n samples
    token_id: int
    logprob: float


# Called on the engine's thread after each decode step with that step's new tokens (none at a batch's start); returns
# the prompts to stop generating for (a server's departed clients): their completions end with finish_reason "abort".
OnStep = Callable[[list[Token]], Collection[int]]


class PartialResults(RuntimeError):
    """Some requests of a call failed for good: ``results`` holds the finished ones (None where ``failed``), so
    the response cache keeps them and a re-run asks only for the rest."""

    def __init__(self, message: str, results: list, failed: list[int]):
        super().__init__(message)
        self.results = results
        self.failed = failed


class LM:
    """An engine behind the one request API. Subclasses implement the three request methods."""

    name: str = "lm"
    fingerprint: str = ""  # weights hash or revision + dtype + chat template hash; keys the response cache
    streams: bool = False  # generate takes ``on_step`` (see OnStep): tokens reported as produced, prompts stoppable

    @classmethod
    def check_args(cls, model_args: dict) -> None:
        """``--model-args`` against ``__init__``'s signature (its first parameter, the spec's target, is not the
        user's to set): unknown names get "did you mean", wrong plain types exit 2. Call before loading anything."""
        from harness.options import validate

        target = list(inspect.signature(cls.__init__).parameters)[1:2]
        validate(cls, model_args, f"backend '{cls.name}'", "--model-args", skip=tuple(target))
        check_dtype(model_args)

    @classmethod
    def from_spec(cls, target: str, **model_args) -> LM:
        """The engine for ``--model scheme:target --model-args ...``: args checked first, then built."""
        cls.check_args(model_args)
        return cls(target, **model_args)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions for each prompt, in prompt order."""
        raise NotImplementedError

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        """For each (context, continuation): sum of continuation logprobs and whether it is the greedy choice."""
        raise NotImplementedError

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        """Total logprob of each text, scored from its first token (perplexity-style)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release engine resources (processes, servers); safe to call twice."""


def default_device() -> str:
    """The GPU when there is one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> str:
    """The dtype policy (see DTYPES): the given one if allowed, else float32 on a CPU and bfloat16 on a GPU."""
    if dtype is None:
        return "float32" if str(device).startswith("cpu") else "bfloat16"
    if dtype not in DTYPES:
        raise UsageError(f"dtype={dtype}: choose one of {', '.join(DTYPES)} (--model-args dtype=...)")
    return dtype


def check_dtype(model_args: dict) -> None:
    """A ``dtype`` model arg outside the policy is a usage error before anything loads."""
    if model_args.get("dtype") is not None:
        resolve_dtype(model_args["dtype"], "cpu")


def fingerprint(engine: str, folder: Path, dtype: str, chat_template: str | None = None) -> str:
    """What keys an engine's responses: its weights (sha256), dtype and chat template (None: chat off)."""
    from harness.backends.weights import weights_digest

    chat = "off" if chat_template is None else hashlib.sha256(chat_template.encode()).hexdigest()[:16]
    return f"{engine}:{weights_digest(Path(folder))[:16]}:{dtype}:chat={chat}"
