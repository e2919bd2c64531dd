"""The ``graph_cot`` task family: one factory, two modes chosen by ``--model``.

- ``--model scratch`` (or no model): the experiment. Train a from-scratch transformer per CoT strategy
  and sweep
  sequential budgets B x parallel samples N (see experiment.py).
- any other model spec (``hf:smollm2``, ``vllm:...``, ``openai:...``, ``scratch:RUN/dfs``,
  ``baseline:random-path``):
  an evaluation task scored by the same metrics (see llm.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.plugins.graph_cot.graphs import MAX_DEPTH, default_pool, node_count
from harness.plugins.graph_cot.strategies import check_strategy

from harness.errors import UsageError
from harness.options import Options, option, takes

POSITIONS = ("learned", "rotary", "sinusoidal")
PROMPTS = ("auto", "raw", "text")


@dataclass(frozen=True)
class GraphCoTOptions(Options):
    """The problems and the evaluation, then (experiment mode) the model, its training and where it runs."""

    # problems and evaluation (both modes)
    depth: int = option(1, "Bridge(depth): the graphs' depth, trained and evaluated", ge=1, le=MAX_DEPTH)
    cot: str = option("dfs,path", "the CoT strategies trained (one model each), comma-separated; the first leads")
    pool: int = option(0, "node names drawn from 0..pool-1 (0: the depth's default pool)", ge=0)
    examples: int = option(100, "evaluation problems", ge=1)
    samples: int = option(16, "parallel samples N drawn per problem (the largest N of the sweep)", ge=1)
    budgets: str | int = option(
        "auto", "sequential token budgets B, comma-separated (auto: a ladder to the longest CoT)"
    )
    budget: int = option(0, "LLM mode: the token budget of a completion (0: fit to depth)", ge=0)
    temperature: float | None = option(None, "LLM mode: the sampling temperature (default 1; one greedy for N=1)")
    prompt: str = option(
        "auto", "LLM mode: prompt style (auto: raw for scratch and baseline models, text for LLMs)", choices=PROMPTS
    )
    # the model (experiment mode)
    d_model: int = option(64, "the transformer's width", ge=1)
    n_layer: int = option(3, "transformer layers", ge=1)
    n_head: int = option(4, "attention heads", ge=1)
    positions: str = option("learned", "position encoding (experiment.py says why learned)", choices=POSITIONS)
    attention: str = option("identity", "attention component (identity: arXiv 2310.09753; sdpa: the plain one)")
    ffn: str = option("gelu", "feed-forward component")
    norm: str = option("layernorm", "normalisation component")
    # training (experiment mode)
    steps: int = option(2500, "AdamW steps per strategy", ge=1)
    batch_size: int = option(32, "fresh problems per step", ge=1)
    lr: float = option(3e-3, "peak learning rate (warmup, then cosine)", gt=0)
    weight_decay: float = option(0.05, "AdamW weight decay", ge=0)
    curriculum: bool = option(False, "each step's batch at a depth drawn from 1..depth (the deeper presets use it)")
    walk_warmup: int = option(
        0, "first steps train on random-walk chains (edge lookup) before the strategy's own, for every strategy", ge=0
    )
    warmup: float = option(0.1, "fraction of the steps with a linear learning-rate warmup", ge=0, lt=1)
    adam_beta2: float = option(0.95, "AdamW's second-moment decay", gt=0, lt=1)
    init_scale: float = option(1.0, "every weight matrix times this after init", gt=0)
    identity_init: float = option(0.0, "the identity attention's token-matching logit a_h at init (0: plain)")
    eval_depths: str | int = option("", "also score the models at these smaller depths, comma-separated")
    # where it runs (experiment mode)
    eval_batch: int = option(512, "rows per evaluation forward pass", ge=1)
    threads: int = option(1, "torch threads per training process", ge=1)
    workers: int = option(2, "strategies trained side by side, one process each", ge=1)
    device: str = option("cpu", "cpu or cuda[:i]")

    def check(self) -> None:
        if self.pool and self.pool < 2 * node_count(self.depth):
            need = 2 * node_count(self.depth)
            raise UsageError(f"pool={self.pool} is too small for depth {self.depth}: give at least {need}")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise UsageError(f"device={self.device}: choose cpu or cuda")
        self.strategies  # noqa: B018 (parsing is the check)
        parse_budgets(self.budgets)
        parse_eval_depths(self.eval_depths, self.depth)

    @property
    def strategies(self) -> list[str]:
        try:
            strategies = [check_strategy(s.strip()) for s in str(self.cot).split(",") if s.strip()]
        except ValueError as exc:
            raise UsageError(f"cot={self.cot}: {exc}") from None
        if not strategies:
            raise UsageError("cot is empty: give strategies, e.g. cot=dfs,path")
        return strategies


@takes(GraphCoTOptions)
class GraphCoT:
    """Sequential vs parallel test-time scaling on Bridge(d) connectivity (arXiv 2505.21825).

    Defaults are the CPU preset's; every choice is explained in experiment.py.
    """

    name = "graph_cot"
    version = "1"
    primary_metric = "evidence_accuracy"  # in experiment mode: the first strategy's
    variant_args = ("depth",)  # one leaderboard column per depth, for trained models, baselines and LLMs alike

    def __init__(self, options: GraphCoTOptions):
        o = self.options = options
        self.strategies = o.strategies
        self.budget_grid = parse_budgets(o.budgets)
        self.eval_depths = parse_eval_depths(o.eval_depths, o.depth)
        self.depth, self.pool = o.depth, o.pool or default_pool(o.depth)
        self.examples, self.samples, self.budget = o.examples, o.samples, o.budget
        self.temperature, self.prompt_style = o.temperature, o.prompt
        self.eval_batch, self.threads, self.workers, self.device = o.eval_batch, o.threads, o.workers, o.device

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

    def shardable(self, model: str | None) -> bool:
        """An evaluation of a model splits by problem (``--shard i/N``); the experiment, which trains, does not."""
        return not self.is_experiment(model)

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """Over seeds (``harness sweep --task graph_cot --seeds ...``): the strategies paired seed by seed."""
        from harness.plugins.graph_cot.seeds import seed_summary

        return seed_summary(points, ctx)

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
