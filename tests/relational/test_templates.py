"""Template parsing and the split generator: distinct fills, disjoint alphabets, labels that follow the template."""

import random

import pytest
from harness.plugins.relational.templates import (
    CLS,
    Vocabulary,
    is_wildcard,
    make_split,
    parse_templates,
)

from harness.errors import UsageError


def splits(text: str, setting: str, sizes=(40, 30, 20), count=300, seed=0):
    templates = parse_templates(text, setting)
    vocab = Vocabulary.build(templates, *sizes)
    rng = random.Random(seed)
    return (
        templates,
        vocab,
        {name: make_split(templates, count, vocab.alphabet(name), rng, vocab) for name in ("train", "val", "test")},
    )


def test_alphabets_are_disjoint_ranges_after_cls_and_fixed_tokens():
    templates, vocab, data = splits("aXb:+1,abX:-1", "regression")
    train, val, test = (set(vocab.alphabet(s)) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert len(train) == 40 and len(val) == 30 and len(test) == 20
    assert vocab.fixed == ("X",) and vocab.fixed_id("X") == 1 and CLS == 0
    assert vocab.size == 1 + 1 + 90 and max(test) == vocab.size - 1
    for name, split in data.items():
        symbols = {t for row in split.tokens for t in row if t != vocab.fixed_id("X")}
        assert symbols <= set(vocab.alphabet(name))  # every symbol of a split comes from its own alphabet
    test_symbols = {t for row in data["test"].tokens for t in row}
    assert not test_symbols & {t for row in data["train"].tokens for t in row} - {vocab.fixed_id("X")}


@pytest.mark.parametrize("text", ["aba:+1,abb:-1", "aabb:+1,abab:-1", "aa:+1,ab:-1", "abcab:1,abcba:-1"])
def test_fills_follow_the_template_and_its_label(text):
    templates, vocab, data = splits(text, "regression")
    for split in data.values():
        for tokens, label, index in zip(split.tokens, split.labels, split.template_index):
            pattern = templates[index].pattern
            assert label == templates[index].label
            for i, j in [(i, j) for i in range(len(pattern)) for j in range(len(pattern))]:
                # equal wildcards get equal symbols, distinct wildcards distinct symbols
                assert (tokens[i] == tokens[j]) == (pattern[i] == pattern[j])


def test_templates_come_in_equal_shares_and_symbolic_labels_name_the_filled_symbol():
    templates, vocab, data = splits("aab:b,aba:b,abb:a", "next_token", count=301)
    shares = [data["train"].template_index.count(i) for i in range(3)]
    assert max(shares) - min(shares) <= 1
    for tokens, label, index in zip(data["test"].tokens, data["test"].labels, data["test"].template_index):
        pattern = templates[index].pattern
        assert label == tokens[pattern.index(templates[index].label)]
        assert sum(t == label for t in tokens) == 1  # odd one out: the label occurs once


def test_named_sets_and_defaults():
    assert [t.pattern for t in parse_templates("auto", "regression")] == ["aba", "abb"]
    assert [(t.pattern, t.label) for t in parse_templates("auto", "next_token")] == [("ab", "a")]
    assert [t.label for t in parse_templates("same_different", "regression")] == [1.0, -1.0]
    assert all(is_wildcard(c) for t in parse_templates("aabb_abab", "regression") for c in t.pattern)


@pytest.mark.parametrize(
    "text, setting, message",
    [
        ("aba:+1,bab:-1", "regression", "same up to renaming"),
        ("aba:+1,abba:-1", "regression", "same length"),
        ("aba:+1,abb:+1", "regression", "two different labels"),
        ("aba:yes,abb:no", "regression", "number label"),
        ("ab:c", "next_token", "one slot character"),
        ("XY:+1", "regression", "no wildcard"),
        ("aba", "regression", "PATTERN:LABEL"),
        ("copy", "regression", "setting=next_token"),
        ("aba:+1", "classification", "choose one of"),
    ],
)
def test_bad_templates_are_usage_errors(text, setting, message):
    with pytest.raises(UsageError, match=message):
        parse_templates(text, setting)


def test_an_alphabet_too_small_for_the_wildcards_is_refused():
    templates = parse_templates("abcab:1,abcba:-1", "regression")
    vocab = Vocabulary.build(templates, 2, 5, 5)
    with pytest.raises(UsageError, match="cannot fill 3 distinct wildcards"):
        make_split(templates, 4, vocab.alphabet("train"), random.Random(0), vocab)
