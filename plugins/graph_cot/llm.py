"""graph_cot as an evaluation task for any LM backend (hf, vllm, openai, scratch checkpoints, baselines).

Prompts come in two styles. ``raw`` is the training format itself (``graph: u v ... task: s to t1 or t2
/``), for
models trained by this plugin (``scratch:RUN/dfs``) and the baseline policies. ``text`` wraps the same
lines in
plain-English instructions with one worked example, for pretrained LLMs. ``auto`` picks raw for the
``scratch`` and
``baseline`` schemes and text otherwise. Answers are parsed tolerantly (:func:`scoring.parse_answer`).

``samples=N`` draws N completions per problem (temperature 1 unless ``temperature`` is given; one greedy
completion when N = 1), ``budget=B`` caps each at B new tokens. Metrics: ``decision_accuracy`` and
``evidence_accuracy`` from the first completion, and for N > 1 the majority vote and best-of-N as
``decision_accuracy@B=..,N=..`` and ``evidence_accuracy@B=..,N=..``. A completion that states no decision has
none: it is scored wrong and counted in ``parse_failure_rate``. Each sample record holds the full prompt.
"""

from __future__ import annotations

from harness.plugins.graph_cot.graphs import Problem, make_problem, node_count
from harness.plugins.graph_cot.scoring import decision_ok, evidence_ok, parse_answer, vote_and_best

from harness import seeding
from harness.evaluation import EvalTask

INSTRUCTIONS = (
    "The graph below is a list of undirected edges; each edge is a pair of node numbers.\n"
    "Exactly one of the two candidate nodes can be reached from the start node by following edges.\n"
    'Search the graph: write "work:" and then the nodes you visit, separated by spaces, starting at the '
    'start node and ending at the reachable candidate; then write "decision:" and that candidate.\n\n'
    "Example:\ngraph: 1 2 2 3 4 5\ntask: 1 to 5 or 3\nwork: 1 2 3 decision: 3\n\n"
)


def text_prompt(problem: Problem) -> str:
    graph = " ".join(name for edge in problem.edges for name in edge)
    t1, t2 = problem.candidates
    return f"{INSTRUCTIONS}graph: {graph}\ntask: {problem.start} to {t1} or {t2}\nwork:"


def prompt_style(model: str | None, style: str) -> str:
    if style != "auto":
        return style
    scheme = (model or "").partition(":")[0]
    return "raw" if scheme in ("scratch", "baseline") else "text"


def default_budget(depth: int, style: str) -> int:
    """Room for the longest trained CoT (DFS with backtracking visits at most 2n nodes) plus the decision;
    a BPE model spends a few tokens per node number."""
    nodes = node_count(depth)
    return 2 * nodes + 4 if style == "raw" else 6 * nodes + 16


class LLMTask(EvalTask):
    name = "graph_cot"
    version = "1"
    chunk_size = 16

    def __init__(
        self, depth: int, samples: int, budget: int, temperature: float | None, style: str, n_examples: int, pool: int
    ):
        self.depth, self.samples, self.style = depth, samples, style
        self.budget = budget or default_budget(depth, style)
        self.temperature = temperature if temperature is not None else (1.0 if samples > 1 else 0.0)
        self.n_examples, self.pool = n_examples, pool
        self.grid = f"@B={self.budget},N={samples}"
        self.metrics = ("evidence_accuracy", "decision_accuracy", "parse_failure_rate")
        if samples > 1:
            self.metrics += (f"evidence_accuracy{self.grid}", f"decision_accuracy{self.grid}")

    def examples(self, ctx) -> list[dict]:
        rng = seeding.rng(ctx.seed, "graph_cot-eval", self.depth)
        problems = [make_problem(self.depth, rng, self.pool or None) for _ in range(self.n_examples)]
        return [{"id": f"d{self.depth}-{i}", "problem": p.to_dict()} for i, p in enumerate(problems)]

    def prompt(self, problem: Problem) -> str:
        return problem.prompt() if self.style == "raw" else text_prompt(problem)

    def evaluate(self, lm, examples: list[dict], ctx) -> list[dict]:
        from harness.backends import SamplingParams

        problems = [Problem.from_dict(e["problem"]) for e in examples]
        params = SamplingParams(
            n=self.samples,
            temperature=self.temperature,
            max_tokens=self.budget,
            stop=("\n\n", "\ngraph:"),
            seed=ctx.seed,
        )
        outputs = lm.generate([self.prompt(p) for p in problems], params)
        return [
            self.score(example["id"], problem, completions, ctx.seed)
            for example, problem, completions in zip(examples, problems, outputs)
        ]

    def score(self, sample_id: str, problem: Problem, completions, seed: int) -> dict:
        answers = [parse_answer(c.text) for c in completions]
        first = answers[0]
        record = {
            "id": sample_id,
            "evidence_accuracy": float(evidence_ok(problem, first.cot)),
            "decision_accuracy": float(decision_ok(problem, first.decision)),
            "parse_failure_rate": float(first.decision is None),
            "prompt": self.prompt(problem),
            "completion": completions[0].text,
            "cot": first.cot,
            "decision": first.decision,
            "target": problem.target,
        }
        if self.samples > 1:
            voted, best = vote_and_best(problem, answers, seeding.rng(seed, "graph_cot-vote", sample_id))
            record[f"decision_accuracy{self.grid}"] = float(voted)
            record[f"evidence_accuracy{self.grid}"] = float(best)
        return record
