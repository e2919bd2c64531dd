"""The ``dataset`` task family: any dataset, scored as its task YAML says (see config.py for the keys).

A prompt is lm-eval's: ``description``, then ``num_fewshot`` solved examples (text, target delimiter, answer) joined
by the few-shot delimiter, then the document's text. Requests: ``multiple_choice`` scores target delimiter + each
choice by loglikelihood; ``generate_until`` generates up to ``max_gen_toks`` tokens or a stop string;
``loglikelihood`` scores the target; ``loglikelihood_rolling`` scores the whole target text (perplexity).

Few-shot examples come from ``fewshot_split`` (else the training, else the validation split), never the document
itself. Our choice for the default sampler: each document draws its own examples from the stream
``seed_for("fewshot", doc index)``, so a document's prompt does not depend on which others run (``--limit``) or in
what order; lm-eval draws from one stream in document order, so exact prompt parity needs ``fewshot_config:
{sampler: first_n}`` (the split's first k) or ``num_fewshot: 0``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness.plugins.dataset_tasks import data, metrics, repeats
from harness.plugins.dataset_tasks.config import TaskConfig, load_config

from harness.errors import UsageError, unknown
from harness.evaluation import EvalTask


def shipped_configs() -> dict[str, Path]:
    """The task YAMLs this plugin ships (``config=NAME``)."""
    folder = resources.files("harness.plugins.dataset_tasks")
    return {entry.name[: -len(".yaml")]: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def resolve_config(config: str) -> Path:
    """A path to a task YAML, or the name of a shipped one."""
    if not config:
        raise UsageError(
            f"the dataset task needs config=PATH.yaml (or a shipped name: {', '.join(sorted(shipped_configs()))})"
        )
    path = Path(config).expanduser()
    if path.is_file():
        return path
    shipped = shipped_configs()
    if config in shipped:
        return shipped[config]
    if path.suffix in (".yaml", ".yml"):
        raise UsageError(f"config={config}: no such file; check the path")
    raise unknown("dataset task config", config, shipped)


class DatasetTask(EvalTask):
    """A dataset scored by a task YAML (lm-eval's keys): multiple choice, generation or perplexity."""

    name = "dataset"
    version = "1"
    metrics = ("acc",)
    chunk_size = 64

    def __init__(
        self,
        config: str = "",
        num_fewshot: int = -1,
        split: str = "",
        repeats: int = 0,
        reducers: str = "",
        temperature: float = -1.0,
    ):
        """
        Args:
            config: the task YAML (a path, or a shipped name such as arithmetic or capitals).
            num_fewshot: solved examples in each prompt (-1: the YAML's num_fewshot).
            split: the split to score (default: the YAML's test_split, else validation_split).
            repeats: generate_until: completions sampled per document (0: the YAML's repeats, else 1).
            reducers: how a document's repeats become its score, e.g. mean,maj@5,pass@1 (default: the YAML's).
            temperature: generate_until: the sampling temperature (-1: the YAML's generation_kwargs).
        """
        self.config: TaskConfig = load_config(resolve_config(config))
        if num_fewshot < -1:
            raise UsageError(f"num_fewshot={num_fewshot}: give 0 or more (-1: the YAML's)")
        if num_fewshot >= 0:
            self.config.num_fewshot = num_fewshot
        if split:
            self.config.test_split = split
        self.reducers = self.sampling(repeats, reducers, temperature)
        if self.config.num_fewshot and not self.config.shot_split:
            raise UsageError(
                f"{self.config.source}: num_fewshot={self.config.num_fewshot} needs fewshot_split "
                "(or training_split / validation_split) to draw examples from"
            )
        self.metrics = tuple(r.key(m) for r in self.reducers for m in self.config.metric_names)
        self.version = f"1-{self.config.digest}"  # the YAML and its data define the task: edits are a new version
        self.variant = self.config.task  # its leaderboard column: dataset[<the YAML's task name>]

    def sampling(self, count: int, reducers: str, temperature: float) -> list[repeats.Reducer]:
        """Apply the command line's repeats, reducers and temperature over the YAML's; the reducers, checked."""
        config, where = self.config, str(self.config.source)
        if count < 0 or temperature < -1 or -1 < temperature < 0:
            raise UsageError(f"repeats={count}, temperature={temperature}: give repeats >= 1 and temperature >= 0")
        if (count or reducers or temperature != -1) and config.output_type != "generate_until":
            raise UsageError(f"{where}: repeats, reducers and temperature apply to generate_until tasks only")
        if count:
            config.repeats, where = count, "--repeats / task arg repeats"
        if reducers:
            config.reducers, where = reducers.split(","), "--reducers / task arg reducers"
        if temperature != -1:
            config.temperature = temperature
        if config.repeats > 1 and config.temperature == 0:
            raise UsageError(
                f"{where}: repeats={config.repeats} with greedy decoding repeats one completion; sample instead "
                "(generation_kwargs: {do_sample: true, temperature: 0.8}, or task arg temperature=0.8)"
            )
        return repeats.parse_reducers(config.reducers, config.repeats, where)

    # examples --------------------------------------------------------------------------------------------------------
    def examples(self, ctx) -> list[dict]:
        config = self.config
        docs = data.load_split(config, config.eval_split)
        pool = data.load_split(config, config.shot_split) if config.num_fewshot else []
        same_split = config.shot_split == config.eval_split
        out = []
        for i, doc in enumerate(docs):
            shots = self.shots(pool, i, same_split, ctx)
            out.append({"id": str(i), **self.request(doc, shots)})
        return out

    def shots(self, pool: list[dict], index: int, same_split: bool, ctx) -> list[dict]:
        """Document ``index``'s few-shot examples (never the document itself)."""
        k = self.config.num_fewshot
        candidates = [d for j, d in enumerate(pool) if not (same_split and j == index)]
        if k > len(candidates):
            raise UsageError(f"num_fewshot={k}, but the few-shot split has only {len(candidates)} other documents")
        if self.config.fewshot_sampler == "first_n" or not k:
            return candidates[:k]
        from harness.seeding import rng

        return rng(ctx.seed, "fewshot", index).sample(candidates, k)

    def context(self, doc: dict, shots: list[dict]) -> str:
        config = self.config
        description = data.render(config.description, doc) if config.description else ""
        solved = [data.doc_text(config, s) + config.target_delimiter + data.target_text(config, s) for s in shots]
        prefix = config.fewshot_delimiter.join(solved) + config.fewshot_delimiter if solved else ""
        return description + prefix + data.doc_text(config, doc)

    def request(self, doc: dict, shots: list[dict]) -> dict:
        """What a sample record shows: the full prompt, and the choices or target it is scored against."""
        config = self.config
        if config.output_type == "loglikelihood_rolling":
            return {"text": data.target_text(config, doc)}
        out = {"prompt": self.context(doc, shots)}
        if config.output_type == "multiple_choice":
            choices = data.doc_choices(config, doc)
            gold = data.gold_index(config, doc, choices)
            return {**out, "choices": choices, "gold": gold, "target": choices[gold]}
        target = data.doc_target(config, doc)
        return {**out, "target": [str(t) for t in target] if isinstance(target, list) else str(target)}

    # scoring ---------------------------------------------------------------------------------------------------------
    def run(self, ctx) -> dict[str, float]:
        chat = self.config.chat
        if chat is not None and bool(ctx.model_args.get("chat", False)) != chat:
            raise UsageError(
                f"{self.config.source} says chat: {str(chat).lower()}; run it as --task FILE.yaml "
                f"(which applies it) or add --model-args chat={str(chat).lower()}"
            )
        return super().run(ctx)

    def evaluate(self, lm, examples: list[dict], ctx) -> list[dict]:
        kind = self.config.output_type
        if kind == "multiple_choice":
            return self.score_choices(lm, examples)
        if kind == "generate_until":
            return self.score_generations(lm, examples, ctx)
        if kind == "loglikelihood":
            return self.score_targets(lm, examples)
        return self.score_texts(lm, examples)

    def score_choices(self, lm, examples: list[dict]) -> list[dict]:
        delimiter = self.config.target_delimiter
        pairs = [(e["prompt"], delimiter + c) for e in examples for c in e["choices"]]
        results = iter(lm.loglikelihood(pairs))
        records = []
        for e in examples:
            scored = [next(results) for _ in e["choices"]]
            lls = [ll for ll, _ in scored]
            normed = [ll / len(c) if c else ll for ll, c in zip(lls, e["choices"])]
            pred = metrics.argmax(lls)
            values = {"acc": float(pred == e["gold"]), "acc_norm": float(metrics.argmax(normed) == e["gold"])}
            records.append(
                {
                    **e,
                    "pred": e["choices"][pred],
                    "loglikelihoods": lls,
                    "is_greedy": [greedy for _, greedy in scored],
                    **self.pick(values),
                }
            )
        return records

    def score_generations(self, lm, examples: list[dict], ctx) -> list[dict]:
        from harness.backends import SamplingParams

        config = self.config
        stop = tuple(config.until if config.until is not None else [config.fewshot_delimiter])
        params = SamplingParams(
            n=config.repeats,
            max_tokens=config.max_gen_toks,
            stop=stop,
            temperature=config.temperature,
            seed=ctx.seed_for("generate"),  # the engine draws completion k of a prompt from (seed, prompt, k)
        )
        outputs = lm.generate([e["prompt"] for e in examples], params)
        options = next(m for m in config.metrics if m["metric"] == "exact_match")
        records = []
        for e, completions in zip(examples, outputs):
            targets = e["target"] if isinstance(e["target"], list) else [e["target"]]
            scores = [metrics.exact_match(c.text, targets, options) for c in completions]
            if self.reducers == [repeats.Reducer("mean")] and config.repeats == 1:  # one completion, as lm-eval
                completion = completions[0]
                text, reason = completion.text, completion.finish_reason
                records.append({**e, "completion": text, "finish_reason": reason, "exact_match": scores[0]})
                continue
            answers = [metrics.normalise(c.text, options) for c in completions]
            records.append(
                {
                    **e,
                    "completions": [c.text for c in completions],  # every repeat, in the engine's order
                    "finish_reasons": [c.finish_reason for c in completions],
                    "exact_match_repeats": scores,
                    **{r.key("exact_match"): repeats.reduce(r, scores, answers) for r in self.reducers},
                }
            )
        return records

    def score_targets(self, lm, examples: list[dict]) -> list[dict]:
        import math

        delimiter = self.config.target_delimiter
        results = lm.loglikelihood([(e["prompt"], delimiter + str(e["target"])) for e in examples])
        return [
            {
                **e,
                "loglikelihood": ll,
                "is_greedy": greedy,
                **self.pick({"acc": float(greedy), "perplexity": math.exp(-ll)}),
            }
            for e, (ll, greedy) in zip(examples, results)
        ]

    def score_texts(self, lm, examples: list[dict]) -> list[dict]:
        import math

        results = lm.loglikelihood_rolling([e["text"] for e in examples])
        records = []
        for e, ll in zip(examples, results):
            words, size = metrics.count_words(e["text"]), len(e["text"].encode("utf-8"))
            values = {
                "word_perplexity": math.exp(-ll / words),
                "byte_perplexity": math.exp(-ll / size),
                "bits_per_byte": -ll / size / math.log(2),
            }
            records.append({**e, "loglikelihood": ll, "words": words, "bytes": size, **self.pick(values)})
        return records

    def pick(self, values: dict) -> dict:
        return {name: values[name] for name in self.metrics}

    def aggregate(self, samples: list[dict]) -> dict[str, float]:
        out = {}
        for metric in self.metrics:
            out[metric], out[f"{metric}_stderr"] = metrics.aggregate(metric, samples)
        return out
