"""harness/backends/batching.py: the layout of batches and packed rows, on lengths and token ids alone."""

import torch

from harness.backends.batching import PackedLayout, batches, group_by_context, left_pad, pack, pad_left, right_pad, runs


def test_packing_fills_rows_best_fit_and_keeps_long_items_alone():
    rows = pack([9, 8, 5, 5, 5, 2, 30, 1], 10)
    assert sorted(i for row in rows for i in row) == list(range(8))
    assert [6] in rows and all(sum([9, 8, 5, 5, 5, 2, 30, 1][i] for i in row) <= 10 for row in rows if row != [6])
    assert len(rows) == 5  # 35 tokens of short items in 4 rows of 10, the long one alone
    assert pack([], 10) == []


def test_runs_cut_consecutive_rows_by_padded_size():
    assert runs([9, 8, 5, 5, 5, 2], 16) == [slice(0, 1), slice(1, 3), slice(3, 6)]
    assert runs([30], 16) == [slice(0, 1)]


def test_batches_go_longest_first_and_fit_the_budget():
    lengths = [3, 9, 4, 9, 1, 20]
    assert list(batches(lengths, 20)) == [[5], [1, 3], [2, 0, 4]]  # 20 alone; 2 x 9; 3 x 4
    assert list(batches(lengths, 20, rows_per_item=2)) == [[5], [1], [3], [2, 0], [4]]
    assert list(batches(lengths, 1)) == [[5], [1], [3], [2], [0], [4]]  # over the budget: one item per batch
    assert list(batches([], 8)) == []


def test_requests_group_by_context_in_order_of_appearance():
    pairs = [([1, 2], [3]), ([4], [5]), ([1, 2], [6, 7]), ([1], [2])]
    assert group_by_context(pairs) == {(1, 2): [0, 2], (4,): [1], (1,): [3]}


def test_packed_layout_scores_each_continuation_after_its_context():
    """Two groups in one row: context 10 11 with continuations (20 21) and (30), then context 40 with (50 51 52)
    and an empty one. Inputs hold every continuation but its last token; the first target is predicted at the
    context's last token, the later ones inside the continuation."""
    pairs = [([10, 11], [20, 21]), ([10, 11], [30]), ([40], [50, 51, 52]), ([40], [])]
    layout = PackedLayout.of([[[0, 1], [2, 3]]], pairs)
    assert layout.rows == [[10, 11, 20, 40, 50, 51]]
    assert layout.documents == [[0, 0, 0, 1, 1, 1]]
    assert layout.segments == [[0, 0, 1, 0, 1, 1]]
    assert layout.scored == [(0, [1, 2]), (0, [1]), (0, [3, 4, 5]), (0, [])]
    assert layout.targets == [20, 21, 30, 50, 51, 52] and layout.owners == [0, 0, 1, 2, 2, 2]
    assert layout.flat_positions(8) == [3, 4, 3, 5, 6, 7]  # the row right-aligned in 8: two pads in front
    two_rows = PackedLayout.of([[[2]], [[0, 1]]], pairs)
    assert two_rows.scored[0] == (0, [0, 1, 2]) and two_rows.flat_positions(3)[3:] == [3 + 1, 3 + 2, 3 + 1]


def test_left_padding_right_aligns_rows_and_masks_the_pads():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids.dtype == mask.dtype == torch.long
    ids, mask = right_pad([[5, 6, 7], [8]], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    grown = pad_left(torch.ones(2, 3), 5, dim=1)
    assert grown.tolist() == [[0, 0, 1, 1, 1]] * 2
    same = torch.ones(2, 3)
    assert pad_left(same, 3, dim=1) is same
