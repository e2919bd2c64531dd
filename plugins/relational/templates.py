"""Template tasks over abstract symbols (arXiv 2310.09753): parsing, the vocabulary, the train/val/test splits.

A template is a string of one-character slots. Lowercase letters are wildcards; any other character (an uppercase
letter, a digit, ``=``) is a fixed token that appears as itself. An example fills every wildcard of a template with
a symbol, distinct wildcards with distinct symbols, all drawn from the alphabet of its split; the train, validation
and test alphabets are disjoint ranges of token ids, so every test symbol is unseen in training. Its label is the
template's: a number (regression: ``aba:+1,abb:-1``) or, for next-token prediction with symbolic labels, one
slot character (``ab:a``: the label is the symbol that fills wildcard ``a``; a fixed character names itself).

Pure Python (no torch), so the CLI validates arguments without loading torch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.errors import UsageError

SETTINGS = ("regression", "next_token")

NAMED_TEMPLATES = {  # name -> (setting it is written for, template list)
    "aba_abb": ("regression", "aba:+1,abb:-1"),
    "same_different": ("regression", "aa:+1,ab:-1"),
    "aabb_abab": ("regression", "aabb:+1,abab:-1"),
    "copy": ("next_token", "ab:a"),  # repeat the first symbol of the string
    "odd_one_out": ("next_token", "aab:b,aba:b,abb:a"),  # name the symbol that occurs once
}
DEFAULT_TEMPLATES = {"regression": "aba_abb", "next_token": "copy"}

CLS = 0  # token id of the CLS token appended in the regression setting


def is_wildcard(char: str) -> bool:
    return "a" <= char <= "z"


@dataclass(frozen=True)
class Template:
    pattern: str  # slot characters, e.g. "aba"
    label: float | str  # a number (regression) or one slot character (next_token)

    @property
    def wildcards(self) -> list[str]:
        """Distinct wildcards in order of first appearance."""
        return list(dict.fromkeys(c for c in self.pattern if is_wildcard(c)))

    def shape(self) -> tuple:
        """The template up to renaming wildcards: equal shapes cannot be told apart by any model."""
        names = {w: i for i, w in enumerate(self.wildcards)}
        return tuple(("w", names[c]) if is_wildcard(c) else ("f", c) for c in self.pattern)


def parse_templates(text: str, setting: str) -> list[Template]:
    """``aba:+1,abb:-1`` (or a name from NAMED_TEMPLATES) -> templates; every mistake is a one-line UsageError."""
    if setting not in SETTINGS:
        raise UsageError(f"setting={setting}: choose one of {', '.join(SETTINGS)}")
    text = DEFAULT_TEMPLATES[setting] if text == "auto" else text
    if text in NAMED_TEMPLATES:
        written_for, text = NAMED_TEMPLATES[text]
        if written_for != setting:
            raise UsageError(
                f"templates for setting={written_for} given with setting={setting}; choose "
                f"{', '.join(k for k, (s, _) in NAMED_TEMPLATES.items() if s == setting)} or a list"
            )
    templates = [_parse_one(part.strip(), setting) for part in text.split(",") if part.strip()]
    if not templates:
        raise UsageError(f"templates={text!r}: give PATTERN:LABEL pairs, e.g. templates=aba:+1,abb:-1")
    lengths = {len(t.pattern) for t in templates}
    if len(lengths) > 1:
        raise UsageError(f"templates={text}: all templates must have the same length (got {sorted(lengths)})")
    shapes = {}
    for template in templates:
        other = shapes.setdefault(template.shape(), template)
        if other is not template:
            raise UsageError(
                f"templates {other.pattern} and {template.pattern} are the same up to renaming "
                "wildcards; give templates no model could confuse"
            )
    if setting == "regression" and len({t.label for t in templates}) < 2:
        raise UsageError(f"templates={text}: regression needs at least two different labels")
    return templates


def _parse_one(part: str, setting: str) -> Template:
    pattern, sep, label = part.partition(":")
    if not sep or not pattern or not label:
        raise UsageError(f"template {part!r}: write PATTERN:LABEL, e.g. aba:+1 (regression) or ab:a (next_token)")
    if not any(is_wildcard(c) for c in pattern):
        raise UsageError(f"template {pattern!r} has no wildcard: use lowercase letters for wildcards")
    if setting == "regression":
        try:
            return Template(pattern, float(label))
        except ValueError:
            raise UsageError(f"template {part!r}: setting=regression needs a number label, e.g. aba:+1") from None
    if len(label) != 1 or (is_wildcard(label) and label not in pattern):
        raise UsageError(
            f"template {part!r}: setting=next_token needs one slot character as label, a wildcard "
            "of the pattern (ab:a) or a fixed character"
        )
    return Template(pattern, label)


@dataclass(frozen=True)
class Vocabulary:
    """Token ids: CLS, the fixed tokens, then the train, validation and test alphabets as disjoint ranges."""

    fixed: tuple[str, ...]  # fixed slot characters (and fixed labels), sorted
    sizes: tuple[int, int, int]  # alphabet sizes of train, val, test

    @classmethod
    def build(cls, templates: list[Template], train: int, val: int, test: int) -> Vocabulary:
        chars = {c for t in templates for c in t.pattern if not is_wildcard(c)}
        chars |= {t.label for t in templates if isinstance(t.label, str) and not is_wildcard(t.label)}
        return cls(tuple(sorted(chars)), (train, val, test))

    def fixed_id(self, char: str) -> int:
        return 1 + self.fixed.index(char)

    def alphabet(self, split: str) -> range:
        """The token ids of a split's symbols."""
        start = 1 + len(self.fixed)
        index = ("train", "val", "test").index(split)
        start += sum(self.sizes[:index])
        return range(start, start + self.sizes[index])

    @property
    def size(self) -> int:
        return 1 + len(self.fixed) + sum(self.sizes)


@dataclass
class Split:
    """One split's examples: token ids (count x template length), labels, and which template each came from."""

    tokens: list[list[int]]
    labels: list  # floats (regression) or token ids (next_token)
    template_index: list[int]


def fill(template: Template, symbols: list[int], vocab: Vocabulary) -> tuple[list[int], float | int]:
    """The example a template gives with its wildcards mapped to ``symbols`` (in order of first appearance)."""
    mapping = dict(zip(template.wildcards, symbols))
    tokens = [mapping[c] if is_wildcard(c) else vocab.fixed_id(c) for c in template.pattern]
    label = template.label
    if isinstance(label, str):
        label = mapping[label] if is_wildcard(label) else vocab.fixed_id(label)
    return tokens, label


def make_split(templates: list[Template], count: int, alphabet: range, rng: random.Random, vocab: Vocabulary) -> Split:
    """``count`` examples, templates in equal shares (shuffled), wildcards filled without replacement."""
    need = max(len(t.wildcards) for t in templates)
    if len(alphabet) < need:
        raise UsageError(
            f"an alphabet of {len(alphabet)} symbols cannot fill {need} distinct wildcards; give a larger alphabet"
        )
    order = [i % len(templates) for i in range(count)]
    rng.shuffle(order)
    split = Split([], [], [])
    for index in order:
        template = templates[index]
        tokens, label = fill(template, rng.sample(alphabet, len(template.wildcards)), vocab)
        split.tokens.append(tokens)
        split.labels.append(label)
        split.template_index.append(index)
    return split
