"""Per-sample scores and their aggregates, defined as lm-evaluation-harness 0.4 defines them.

- ``acc``: the gold choice has the highest loglikelihood (first maximum on ties, as numpy's argmax).
- ``acc_norm``: the same after dividing each choice's loglikelihood by its length in characters.
- ``exact_match``: completion == target after, in this order, removing ``regexes_to_ignore``, lower-casing
  (``ignore_case``), deleting punctuation (``ignore_punctuation``) and digits (``ignore_numbers``).
- ``perplexity`` (loglikelihood): exp(-mean loglikelihood).
- ``word_perplexity``, ``byte_perplexity``, ``bits_per_byte`` (loglikelihood_rolling): corpus-level, total
  loglikelihood over total words (``re.split(r"\\s+")`` pieces) or UTF-8 bytes.

Stderr: the standard error of the mean for the means; for the corpus-level ratios (and perplexity), the delta method
on the ratio estimator (our choice; lm-eval reports none for them).
"""

from __future__ import annotations

import math
import re
import string

from harness.evaluation import mean_stderr

RATIO_METRICS = {"word_perplexity": "words", "byte_perplexity": "bytes", "bits_per_byte": "bytes"}


def argmax(values: list[float]) -> int:
    return values.index(max(values))


def normalise(text: str, options: dict) -> str:
    for pattern in options.get("regexes_to_ignore") or ():
        text = re.sub(pattern, "", text)
    if options.get("ignore_case"):
        text = text.lower()
    if options.get("ignore_punctuation"):
        text = text.translate(str.maketrans("", "", string.punctuation))
    if options.get("ignore_numbers"):
        text = text.translate(str.maketrans("", "", string.digits))
    return text


def exact_match(completion: str, targets: list[str], options: dict) -> float:
    prediction = normalise(completion, options)
    return float(any(prediction == normalise(t, options) for t in targets))


def count_words(text: str) -> int:
    return len(re.split(r"\s+", text))


def ratio_stderr(numerators: list[float], denominators: list[float]) -> tuple[float, float]:
    """sum(x) / sum(w) and its delta-method standard error."""
    n, total_w = len(numerators), sum(denominators)
    ratio = sum(numerators) / total_w
    if n < 2:
        return ratio, 0.0
    mean_w = total_w / n
    residual = sum((x - ratio * w) ** 2 for x, w in zip(numerators, denominators)) / (n - 1)
    return ratio, math.sqrt(residual / n) / mean_w


def aggregate(metric: str, samples: list[dict]) -> tuple[float, float]:
    """A metric's value and stderr over the samples."""
    if metric in RATIO_METRICS:
        rate, se = ratio_stderr([s["loglikelihood"] for s in samples], [s[RATIO_METRICS[metric]] for s in samples])
        if metric == "bits_per_byte":
            return -rate / math.log(2), se / math.log(2)
        return math.exp(-rate), math.exp(-rate) * se
    if metric == "perplexity":
        mean, se = mean_stderr([s["loglikelihood"] for s in samples])
        return math.exp(-mean), math.exp(-mean) * se
    return mean_stderr([float(s[metric]) for s in samples])
