"""The ``graph_cot`` task family: one factory, two modes chosen by ``--model``.

- ``--model scratch`` (or no model): the experiment. Train a from-scratch transformer per CoT strategy
  and sweep
  sequential budgets B x parallel samples N (see :mod:`experiment`).
- any other model spec (``hf:smollm2``, ``vllm:...``, ``openai:...``, ``scratch:RUN/dfs``,
  ``baseline:random-path``):
  an evaluation task scored by the same metrics (see :mod:`llm`).
"""

from __future__ import annotations

from harness.plugins.graph_cot.graphs import MAX_DEPTH, default_pool, node_count
from harness.plugins.graph_cot.strategies import check_strategy

from harness.errors import UsageError


class GraphCoT:
    """Sequential vs parallel test-time scaling on Bridge(d) connectivity (arXiv 2505.21825).

    Defaults are the CPU preset's; every choice is explained in :mod:`experiment`.
    """

    name = "graph_cot"
    version = "1"
    primary_metric = "evidence_accuracy"  # in experiment mode: the first strategy's
    variant_args = ("depth",)  # one leaderboard column per depth, for trained models, baselines and LLMs alike

    def __init__(
        self,
        depth: int = 1,
        cot: str = "dfs,path",
        pool: int = 0,
        examples: int = 100,
        samples: int = 16,
        budgets: str | int = "auto",
        budget: int = 0,
        temperature: float | None = None,
        prompt: str = "auto",
        steps: int = 2500,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 0.05,
        d_model: int = 64,
        n_layer: int = 3,
        n_head: int = 4,
        positions: str = "learned",
        attention: str = "identity",
        ffn: str = "gelu",
        norm: str = "layernorm",
        eval_batch: int = 512,
        threads: int = 1,
        workers: int = 2,
        curriculum: bool = False,
        eval_depths: str | int = "",
        device: str = "cpu",
    ):
        if not 1 <= depth <= MAX_DEPTH:
            raise UsageError(f"depth={depth}: choose a depth between 1 and {MAX_DEPTH}")
        if pool and pool < 2 * node_count(depth):
            raise UsageError(f"pool={pool} is too small for depth {depth}: give at least {2 * node_count(depth)}")
        for name, value in (
            ("examples", examples),
            ("samples", samples),
            ("steps", steps),
            ("batch_size", batch_size),
            ("eval_batch", eval_batch),
        ):
            if value < 1:
                raise UsageError(f"{name}={value}: give a positive number")
        if budget < 0:
            raise UsageError(f"budget={budget}: give a positive number of tokens (0: fit to depth)")
        if positions not in ("learned", "rotary", "sinusoidal"):
            raise UsageError(f"positions={positions}: choose learned, rotary or sinusoidal")
        if device != "cpu" and not device.startswith("cuda"):
            raise UsageError(f"device={device}: choose cpu or cuda")
        if prompt not in ("auto", "raw", "text"):
            raise UsageError(f"prompt={prompt}: choose auto, raw or text")
        try:
            self.strategies = [check_strategy(s.strip()) for s in str(cot).split(",") if s.strip()]
        except ValueError as exc:
            raise UsageError(f"cot={cot}: {exc}") from None
        if not self.strategies:
            raise UsageError("cot is empty: give strategies, e.g. cot=dfs,path")
        self.budget_grid = parse_budgets(budgets)
        self.eval_depths = parse_eval_depths(eval_depths, depth)
        self.depth, self.pool = depth, pool or default_pool(depth)
        self.examples, self.samples, self.budget = examples, samples, budget
        self.temperature, self.prompt_style = temperature, prompt
        self.train = {
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "d_model": d_model,
            "n_layer": n_layer,
            "n_head": n_head,
            "positions": positions,
            "attention": attention,
            "ffn": ffn,
            "norm": norm,
            "curriculum": curriculum,
        }
        self.eval_batch, self.threads, self.workers, self.device = eval_batch, threads, workers, device

    @property
    def cores(self) -> int:
        """Cores one run occupies (sweeps run cpu_count // cores points at once): the strategies train in up to
        ``workers`` processes of ``threads`` threads each."""
        return max(1, self.threads) * max(1, min(self.workers, len(self.strategies)))

    def metric_prefix(self, strategy: str | None = None, depth: int | None = None) -> str:
        """``<strategy>/`` when several strategies train, then ``d<depth>/`` for a depth's evaluation when several
        depths are evaluated (training metrics take no depth)."""
        prefix = f"{strategy or self.strategies[0]}/" if len(self.strategies) > 1 else ""
        if depth is not None and len(self.eval_depths) > 1:
            prefix += f"d{depth}/"
        return prefix

    def is_experiment(self, model: str | None) -> bool:
        return model in (None, "", "scratch")

    def run(self, ctx) -> dict[str, float]:
        if self.is_experiment(ctx.model):
            from harness.plugins.graph_cot.experiment import run_experiment

            return run_experiment(self, ctx)
        from harness.plugins.graph_cot.llm import LLMTask, prompt_style

        task = LLMTask(
            self.depth,
            self.samples,
            self.budget,
            self.temperature,
            prompt_style(ctx.model, self.prompt_style),
            self.examples,
            self.pool,
        )
        return task.run(ctx)


def parse_eval_depths(eval_depths: str | int, depth: int) -> list[int]:
    """The depths the experiment's models are evaluated at: ``depth`` (the training depth) always, and the
    listed smaller ones (positions and budgets are sized for ``depth``, so deeper graphs are refused)."""
    if eval_depths in ("", None):
        return [depth]
    try:
        values = sorted({int(d) for d in str(eval_depths).split(",") if str(d).strip()} | {depth})
    except ValueError:
        values = [0]
    if values[0] < 1 or values[-1] > depth:
        raise UsageError(
            f"eval_depths={eval_depths}: give depths between 1 and the training depth {depth}, e.g. eval_depths=1,2"
        )
    return values


def parse_budgets(budgets: str | int) -> list[int] | None:
    """``auto`` -> None (a ladder fitted to the longest CoT); else a comma list of positive token counts."""
    if budgets == "auto":
        return None
    try:
        values = sorted({int(b) for b in str(budgets).split(",") if str(b).strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise UsageError(f"budgets={budgets}: give auto or positive token counts, e.g. budgets=4,8,16")
    return values
