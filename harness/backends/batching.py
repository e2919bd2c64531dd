"""How an engine lays requests out in batches and rows: sorting by length and cutting at a token budget, packing
groups back to back in rows (best-fit decreasing), and left padding.

Pure bookkeeping over lengths and token ids, shared by the hf engine and testable without a model; torch is imported
only by the two padding helpers that build tensors.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

PACK_WIDTH = 256  # the widest packed scoring row: attention over a row grows with its width, the matmuls do not

Pair = tuple[list[int], list[int]]  # (context token ids, continuation token ids)


def pack(lengths: list[int], width: int) -> list[list[int]]:
    """Best-fit decreasing: item indices laid into rows of at most ``width`` tokens, each item (longest first) into
    the fullest row with room for it; an item longer than ``width`` gets a row of its own. Scoring packed rows
    spends no matmul on padding, which left-padding rows of mixed lengths did (11% of LAMBADA-like rows)."""
    rows: list[list[int]] = []
    room: list[tuple[int, int]] = []  # (tokens left, row), sorted
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        at = bisect.bisect_left(room, (lengths[i], -1))
        if at < len(room):
            left, row = room.pop(at)
            rows[row].append(i)
        else:
            left, row = width, len(rows)
            rows.append([i])
        if left - lengths[i] > 0:
            bisect.insort(room, (left - lengths[i], row))
    return rows


def batches(lengths: list[int], budget: int, rows_per_item: int = 1) -> Iterator[list[int]]:
    """Indices sorted longest first, cut into batches whose padded size (items x rows_per_item x longest) fits the
    budget; an item over the budget gets a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * rows_per_item * lengths[batch[0]] > budget:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def runs(lengths: list[int], budget: int) -> list[slice]:
    """Consecutive runs of rows whose padded size (rows x longest) fits the budget."""
    found, start, longest = [], 0, 0
    for end, length in enumerate(lengths):
        longest = max(longest, length)
        if end > start and (end + 1 - start) * longest > budget:
            found.append(slice(start, end))
            start, longest = end, length
    return found + [slice(start, len(lengths))]


def group_by_context(pairs: list[Pair]) -> dict[tuple[int, ...], list[int]]:
    """Request indices by context, in order of first appearance: a context asked about several times (multiple
    choice) is computed once for all of its continuations."""
    contexts: dict[tuple[int, ...], list[int]] = {}
    for i, (ctx, _) in enumerate(pairs):
        contexts.setdefault(tuple(ctx), []).append(i)
    return contexts


@dataclass
class PackedLayout:
    """Groups of requests (one context, its continuations) laid back to back in rows. In each row a token has a
    document (its group) and a segment (0 for the context, j for the group's j-th continuation): attention stays
    within the context and the token's own segment. Every continuation but its last token is an input; its first
    token is predicted at its context's last position, the others inside the continuation."""

    rows: list[list[int]] = field(default_factory=list)  # token ids per row
    documents: list[list[int]] = field(default_factory=list)  # per row and token: the group's place in the row
    segments: list[list[int]] = field(default_factory=list)  # per row and token: 0 context, j continuation j
    scored: list[tuple[int, list[int]]] = field(default_factory=list)  # (row, positions predicting a target)
    targets: list[int] = field(default_factory=list)  # the token each scored position predicts, in order
    owners: list[int] = field(default_factory=list)  # the request each target belongs to

    @classmethod
    def of(cls, packed_rows: list[list[list[int]]], pairs: list[Pair]) -> PackedLayout:
        """The layout of ``packed_rows`` (rows of groups of request indices into ``pairs``)."""
        layout = cls()
        for packed in packed_rows:
            row, document, segment = [], [], []
            for d, group in enumerate(packed):
                ctx = pairs[group[0]][0]
                end = len(row) + len(ctx) - 1  # where the context's last token sits
                row += ctx
                document += [d] * len(ctx)
                segment += [0] * len(ctx)
                for j, i in enumerate(group, start=1):
                    cont = pairs[i][1]
                    inside = list(range(len(row), len(row) + len(cont) - 1))
                    layout.scored.append((len(layout.rows), ([end] if cont else []) + inside))
                    row += cont[:-1]
                    document += [d] * (len(cont) - 1)
                    segment += [j] * (len(cont) - 1)
                    layout.targets += cont
                    layout.owners += [i] * len(cont)
            layout.rows.append(row)
            layout.documents.append(document)
            layout.segments.append(segment)
        return layout

    def flat_positions(self, width: int) -> list[int]:
        """The scored positions in the rows left-padded to ``width`` and flattened to (rows x width)."""
        return [r * width + width - len(self.rows[r]) + t for r, positions in self.scored for t in positions]


def left_pad(rows: list[list[int]], pad_token_id: int, device="cpu"):
    """(ids, attention mask), both (B, T) long tensors on ``device``: each row right-aligned, padding in front (rows
    that end where the next token is predicted)."""
    return _padded(rows, pad_token_id, device, left=True)


def right_pad(rows: list[list[int]], pad_token_id: int, device="cpu"):
    """(ids, attention mask) as :func:`left_pad`, each row left-aligned (continuations appended to a cache)."""
    return _padded(rows, pad_token_id, device, left=False)


def _padded(rows: list[list[int]], pad_token_id: int, device, left: bool):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        where = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, where] = torch.tensor(row, dtype=torch.long)
        mask[i, where] = 1
    return ids.to(device), mask.to(device)


def pad_left(tensor, width: int, dim: int):
    """Zeros in front of ``tensor`` along ``dim`` up to ``width``."""
    import torch

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)
