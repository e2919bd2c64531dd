"""relational_llm: the template tasks in context, for any LM backend (hf, vllm, openai, scratch).

A prompt holds ``shots`` labelled examples, one per line, and then a query line without its label::

    Each line is a sequence of symbols and its label. Label the last sequence.
    k w k: A
    c n n: B
    ...
    q x q:

The query's symbols never occur in the prompt's examples (the in-context version of the disjoint test alphabet),
so the model can only answer by the pattern. Templates with number labels (aba:+1,abb:-1) name their labels by
``label_words`` in order of first appearance; templates with symbolic labels (odd_one_out: aab:b, ...) are answered
by one of the query's own symbols. Scored by the loglikelihood of each candidate answer (``mode=loglikelihood``,
the default) or by the first word of a greedy completion (``mode=generate``). Labels are balanced over the shots
and over the queries, so chance is 1 / (number of candidates).

``margin`` (loglikelihood mode) is the loglikelihood of the right answer minus that of the best wrong one. A model
that always prefers one label is at chance accuracy whatever it knows; since the labels are balanced, such a
constant preference cancels in the mean margin, which is above 0 only when the answer follows the pattern.
"""

from __future__ import annotations

from harness.plugins.relational.templates import NAMED_TEMPLATES, Template, is_wildcard, parse_templates

from harness.errors import UsageError
from harness.evaluation import EvalTask

INSTRUCTION = "Each line is a sequence of symbols and its label. Label the last sequence.\n"
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
WORDS = tuple(
    "apple river stone cloud tiger piano candle forest mirror garden rocket pencil bottle castle dragon island "
    "jacket ladder magnet needle orange parrot rabbit saddle tunnel violin wallet yogurt zebra anchor basket "
    "button carpet desert engine feather guitar hammer igloo jungle kettle lemon meadow napkin oyster pepper "
    "quilt ribbon spider tomato umbrella valley window barrel cactus dolphin eagle falcon glacier harbor insect "
    "jewel koala lantern mango nectar olive panda quartz raven salmon turtle unicorn vessel walrus yacht bridge "
    "coral dune ember fossil goblet helmet ivory jasmine kayak lotus marble nickel onion pebble quiver rose "
    "silver thunder velvet willow".split()
)
SYMBOLS = ("letters", "words", "tokens")
MODES = ("loglikelihood", "generate")


def templates_for_llm(text: str) -> list[Template]:
    """Number labels read as classes, symbol labels as the query's own symbols (named sets carry their setting)."""
    if text in NAMED_TEMPLATES:
        return parse_templates(text, NAMED_TEMPLATES[text][0])
    labels = [part.partition(":")[2].strip() for part in text.split(",") if part.strip()]
    return parse_templates(text, "regression" if all(is_number(label) for label in labels) else "next_token")


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class RelationalLLM(EvalTask):
    """Accuracy of an LM on template tasks in context, with query symbols unseen in the prompt."""

    name = "relational_llm"
    version = "1"
    metrics = ("accuracy",)
    chunk_size = 32
    variant_args = ("templates", "symbols", "mode")

    def __init__(
        self,
        templates: str = "aba_abb",
        examples: int = 200,
        shots: int = 8,
        symbols: str = "letters",
        label_words: str = "A,B",
        mode: str = "loglikelihood",
        max_tokens: int = 4,
    ):
        """
        Args:
            templates: a named set (aba_abb, same_different, aabb_abab, odd_one_out, copy) or PATTERN:LABEL pairs.
            examples: queries (prompts) to score.
            shots: labelled examples in each prompt.
            symbols: letters (a-z), words (common nouns) or tokens (random words of the model's own vocabulary;
                needs a backend with a tokenizer: hf, scratch).
            label_words: the names of number labels, in order of first appearance (aba:+1 -> A, abb:-1 -> B).
            mode: loglikelihood (score each candidate answer) or generate (greedy completion, first word).
            max_tokens: completion length in generate mode.
        """
        self.templates = templates_for_llm(templates)
        self.symbolic = isinstance(self.templates[0].label, str)
        numbers = list(dict.fromkeys(t.label for t in self.templates)) if not self.symbolic else []
        words = [w.strip() for w in label_words.split(",") if w.strip()]
        if numbers and len(words) != len(numbers):
            raise UsageError(f"label_words={label_words}: give {len(numbers)} words, one per label of the templates")
        if len(set(words)) != len(words) or any(" " in w for w in words):
            raise UsageError(f"label_words={label_words}: give distinct single words, e.g. label_words=A,B")
        self.names = dict(zip(numbers, words))
        if symbols not in SYMBOLS:
            raise UsageError(f"symbols={symbols}: choose one of {', '.join(SYMBOLS)}")
        if mode not in MODES:
            raise UsageError(f"mode={mode}: choose one of {', '.join(MODES)}")
        for name, value in (("examples", examples), ("shots", shots), ("max_tokens", max_tokens)):
            if value < 1:
                raise UsageError(f"{name}={value}: give a positive number")
        if symbols == "letters" and 2 * max(len(t.wildcards) for t in self.templates) > len(LETTERS):
            raise UsageError("templates with this many wildcards need symbols=words or symbols=tokens")
        self.n_examples, self.shots, self.symbols, self.mode, self.max_tokens = (
            examples,
            shots,
            symbols,
            mode,
            max_tokens,
        )
        self.metrics = ("accuracy", "margin") if mode == "loglikelihood" else ("accuracy",)

    # examples ------------------------------------------------------------------------------------------------------
    def pool(self, ctx) -> list[str]:
        if self.symbols == "letters":
            return list(LETTERS)
        if self.symbols == "words":
            return list(WORDS)
        return vocabulary_words(ctx.load_model(), ctx.seed)

    def examples(self, ctx) -> list[dict]:
        from harness.seeding import rng

        pool = self.pool(ctx)
        out = []
        for i in range(self.n_examples):
            random = rng(ctx.seed, "relational_llm", i)
            query_template = self.templates[i % len(self.templates)]  # queries balanced over templates
            query = random.sample(pool, len(query_template.wildcards))
            rest = [s for s in pool if s not in query]  # the shots never use the query's symbols
            order = [j % len(self.templates) for j in range(self.shots)]
            random.shuffle(order)
            shots = [self.line(self.templates[j], random.sample(rest, len(self.templates[j].wildcards))) for j in order]
            line, answer = self.line(query_template, query)
            candidates = list(self.names.values()) if not self.symbolic else list(dict.fromkeys(query))
            prompt = INSTRUCTION + "".join(f"{text}: {label}\n" for text, label in shots) + f"{line}:"
            out.append(
                {
                    "id": str(i),
                    "prompt": prompt,
                    "query": line,
                    "template": query_template.pattern,
                    "target": answer,
                    "candidates": candidates,
                }
            )
        return out

    def line(self, template: Template, symbols: list[str]) -> tuple[str, str]:
        """The text of one example and its label word."""
        mapping = dict(zip(template.wildcards, symbols))
        text = " ".join(mapping[c] if is_wildcard(c) else c for c in template.pattern)
        if not self.symbolic:
            return text, self.names[template.label]
        return text, mapping.get(template.label, template.label)

    # scoring -------------------------------------------------------------------------------------------------------
    def evaluate(self, lm, examples: list[dict], ctx) -> list[dict]:
        if self.mode == "generate":
            return self.evaluate_generate(lm, examples, ctx)
        requests = [(e["prompt"], f" {c}") for e in examples for c in e["candidates"]]
        scores = iter(lm.loglikelihood(requests))
        records = []
        for e in examples:
            logliks = [next(scores)[0] for _ in e["candidates"]]
            choice = e["candidates"][max(range(len(logliks)), key=logliks.__getitem__)]
            right = logliks[e["candidates"].index(e["target"])]
            wrong = max(ll for c, ll in zip(e["candidates"], logliks) if c != e["target"])
            records.append(
                {
                    **e,
                    "loglikelihoods": logliks,
                    "answer": choice,
                    "accuracy": float(choice == e["target"]),
                    "margin": right - wrong,
                }
            )
        return records

    def evaluate_generate(self, lm, examples: list[dict], ctx) -> list[dict]:
        from harness.backends import SamplingParams

        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens, stop=("\n",), seed=ctx.seed)
        outputs = lm.generate([e["prompt"] for e in examples], params)
        records = []
        for e, completions in zip(examples, outputs):
            text = completions[0].text
            words = text.replace(":", " ").split()
            answer = words[0] if words else ""
            records.append({**e, "completion": text, "answer": answer, "accuracy": float(answer == e["target"])})
        return records


def vocabulary_words(lm, seed: int, size: int = 512) -> list[str]:
    """``size`` distinct alphabetic words that are single tokens of the model's own vocabulary, drawn at random."""
    from harness.seeding import rng

    tokenizer = getattr(lm, "tokenizer", None)
    if tokenizer is None:
        raise UsageError("symbols=tokens needs a backend with a tokenizer (hf, scratch); use symbols=words")
    random, words = rng(seed, "relational_llm", "vocabulary"), {}
    ids = list(range(len(tokenizer)))
    random.shuffle(ids)
    for token_id in ids:
        text = tokenizer.decode([token_id]).strip()
        if text.isascii() and text.isalpha() and 2 <= len(text) <= 10:
            words.setdefault(text, None)
        if len(words) == size:
            break
    if len(words) < size:
        raise UsageError(f"the model's vocabulary has only {len(words)} alphabetic tokens; use symbols=words")
    return list(words)
