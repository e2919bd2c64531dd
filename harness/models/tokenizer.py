"""A whitespace word tokenizer for the synthetic languages of from-scratch experiments."""

from __future__ import annotations

import json

from harness.errors import UsageError


class WordTokenizer:
    """One id per word: the specials first (``<pad>`` = 0, ``<bos>``, ``<eos>`` by default), then ``tokens``.

    ``encode`` splits on whitespace; a word outside the vocabulary maps to ``<unk>`` when that is a special,
    else it is an error (silently merging unknown words would corrupt a synthetic task).
    """

    def __init__(self, tokens: list[str], specials: tuple[str, ...] = ("<pad>", "<bos>", "<eos>")):
        self.specials = tuple(specials)
        self.tokens: list[str] = []
        for token in [*self.specials, *tokens]:
            if token not in self.tokens:
                self.tokens.append(token)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def _special(self, name: str) -> int | None:
        return self.index.get(name)

    @property
    def pad_id(self) -> int | None:
        return self._special("<pad>")

    @property
    def bos_id(self) -> int | None:
        return self._special("<bos>")

    @property
    def eos_id(self) -> int | None:
        return self._special("<eos>")

    def encode(self, text: str) -> list[int]:
        unk = self.index.get("<unk>")
        ids = []
        for word in text.split():
            if word in self.index:
                ids.append(self.index[word])
            elif unk is not None:
                ids.append(unk)
            else:
                raise UsageError(f"word '{word}' is not in the tokenizer's vocabulary; add it to the token list")
        return ids

    def decode(self, ids, skip_specials: bool = False) -> str:
        words = [self.tokens[int(i)] for i in ids]
        if skip_specials:
            words = [w for w in words if w not in self.specials]
        return " ".join(words)

    def to_json(self) -> str:
        return json.dumps({"specials": list(self.specials), "tokens": self.tokens[len(self.specials) :]})

    @classmethod
    def from_json(cls, text: str) -> WordTokenizer:
        data = json.loads(text)
        return cls(data["tokens"], specials=tuple(data["specials"]))

    def __len__(self) -> int:
        return self.vocab_size
