"""The request API every engine implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
        return fields


@dataclass
class Completion:
    """One generated continuation."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # per generated token, under the model (before temperature)
    finish_reason: str = "length"  # "stop" (EOS or stop string) or "length"


class LM:
    """An engine behind the one request API. Subclasses implement the three request methods."""

    name: str = "lm"
    fingerprint: str = ""  # weights hash or revision + dtype + chat template hash; keys the response cache

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
