"""incremental_rank: the staircase finder on planted curves, the toy's maps, a short real run, bad args."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from harness.plugins.incremental_rank.staircase import (
    alignment,
    alignment_test,
    drop_peaks,
    drops,
    new_low_peaks,
    plateaus,
    rank_jumps,
    transition_width,
    width_exponent,
)
from harness.plugins.incremental_rank.task import IncrementalRank
from harness.plugins.incremental_rank.toy import ToyModel, diagonal_attention

from harness.errors import UsageError
from harness.evaluation import RunContext
from harness.probes.rank import RankProbe, effective_maps
from harness.store import Run

pytestmark = pytest.mark.usefixtures("one_thread")

TAU = np.linspace(0, 30, 601)


def sigmoid(t: np.ndarray, center: float, width: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(t - center) / width))


def test_planted_staircase_is_found():
    """Loss drops of very different sizes at tau = 5, 12, 20; values that grow fastest there: every jump aligned."""
    loss = 1.0 - 0.9 * sigmoid(TAU, 5, 0.2) - 0.09 * sigmoid(TAU, 12, 0.2) - 0.009 * sigmoid(TAU, 20, 0.2)
    found, flats = drops(TAU, loss), plateaus(TAU, loss)
    assert len(found) == 3 and all(s < c < e for (s, e), c in zip(found, [5, 12, 20]))
    assert len(flats) == 4
    ends = [end for _, end in flats[:3]]
    assert np.allclose(ends, [5, 12, 20], atol=0.8) and all(end < c for end, c in zip(ends, [5, 12, 20]))
    values = np.stack([2 * sigmoid(TAU, 5, 0.2), 0.6 * sigmoid(TAU, 12, 0.2), 0.002 * sigmoid(TAU, 20, 0.2)], 1)
    jumps = rank_jumps(TAU, values, floor=0.05)  # the third value stays below the floor: not a rank jump
    assert np.allclose(jumps, [5, 12], atol=0.06)
    rows = alignment(jumps, found, flats)
    assert all(r["aligned"] for r in rows) and all(0 < r["gap"] < 0.8 for r in rows)
    assert transition_width(TAU, values[:, 0]) == pytest.approx(4 * 0.2 / 5, rel=0.05)


def test_alignment_test_tells_jumps_at_drops_from_scattered_ones():
    """Jumps at the drops' peaks: p tiny; the same number of jumps scattered at random: p spread over (0, 1)."""
    loss = 1.0 - 0.9 * sigmoid(TAU, 5, 0.2) - 0.09 * sigmoid(TAU, 12, 0.2) - 0.009 * sigmoid(TAU, 20, 0.2)
    peaks = [peak for _, peak, _ in drop_peaks(TAU, loss)]
    assert np.allclose(peaks, [5, 12, 20], atol=0.3)  # log(loss) falls fastest just after the sigmoid centre
    near = alignment_test([5.1, 11.9, 12.1, 20.2], peaks, (0.0, 30.0))
    assert near["p"] < 0.001 and near["distance"] < 0.2 < 2 < near["null_distance"]
    far = alignment_test([8.5, 16.0, 25.0, 29.5], peaks, (0.0, 30.0))  # between the drops and after them
    assert far["p"] > 0.5
    rng = np.random.default_rng(1)
    ps = [alignment_test(list(rng.uniform(0, 30, 4)), peaks, (0.0, 30.0), draws=2000)["p"] for _ in range(60)]
    assert 0.3 < np.mean(ps) < 0.7 and np.mean(np.array(ps) < 0.05) < 0.2  # no better than chance
    assert alignment_test([], peaks, (0.0, 30.0))["p"] == 1.0


def test_shift_null_counts_a_burst_of_jumps_once():
    """Six jumps at one moment next to a drop: independent jumps would rarely all be that close (uniform p tiny),
    but one burst lands that close by a common shift about 3 x 0.5 / 30 of the time."""
    loss = 1.0 - 0.9 * sigmoid(TAU, 5, 0.2) - 0.09 * sigmoid(TAU, 12, 0.2) - 0.009 * sigmoid(TAU, 20, 0.2)
    peaks = [peak for _, peak, _ in drop_peaks(TAU, loss)]
    burst = [12.0] * 6
    assert alignment_test(burst, peaks, (0.0, 30.0))["p"] < 0.001
    assert 0.02 < alignment_test(burst, peaks, (0.0, 30.0), null="shift")["p"] < 0.1
    spread = [5.1, 12.1, 20.1]  # one jump at each drop: the shift null still finds it
    assert alignment_test(spread, peaks, (0.0, 30.0), null="shift")["p"] < 0.01


def test_new_low_peaks_skip_the_recovery_from_a_spike():
    spike = 0.3 * np.exp(-(((TAU - 15) / 0.3) ** 2))  # the loss jumps up at tau = 15 and falls back
    loss = 1.0 - 0.9 * sigmoid(TAU, 5, 0.2) - 0.09 * sigmoid(TAU, 22, 0.2) + spike
    every = [peak for _, peak, _ in drop_peaks(TAU, loss)]
    assert any(abs(p - 15.3) < 0.5 for p in every)  # the fall after the spike counts as a drop...
    lows = new_low_peaks(TAU, loss)
    assert len(lows) == 2 and np.allclose(lows, [5.25, 22.1], atol=0.3)  # ...but takes the loss to no new low


def test_width_exponent_recovers_a_planted_slope():
    alphas = [1e-1, 1e-2, 1e-3, 1e-4]
    widths = [0.7 * np.log(1 / a) ** -1.0 for a in alphas]
    assert width_exponent(alphas, widths) == pytest.approx(-1.0, abs=1e-9)
    assert width_exponent(alphas, [2 * np.log(1 / a) ** -0.5 for a in alphas]) == pytest.approx(-0.5, abs=1e-9)


def test_jump_outside_the_drops_is_not_aligned():
    loss = 1.0 - 0.9 * sigmoid(TAU, 5, 0.2)
    rows = alignment([15.0, 5.0], drops(TAU, loss), plateaus(TAU, loss))
    assert [r["aligned"] for r in rows] == [True, False]


def test_a_smooth_decay_has_no_staircase():
    loss = np.exp(-0.3 * TAU)  # a constant fall rate: one long drop, no plateau
    assert plateaus(TAU, loss) == []


def test_toy_maps_are_what_the_rank_probe_reads():
    model = ToyModel(4, alpha=0.5, generator=torch.Generator().manual_seed(0))
    attn = model.attn
    maps = effective_maps(attn)
    assert torch.allclose(maps["qk"][0], torch.diag(attn.w_q * attn.w_k).detach())
    x = torch.randn(2, 3, 4)
    logits = torch.einsum("btc,cd,bsd->bts", x, maps["qk"][0], x)
    expected = logits.softmax(-1) @ x @ maps["vo"][0]
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert torch.allclose(diagonal_attention(x, torch.zeros(4), torch.ones(4)), x.mean(1, keepdim=True).expand_as(x))
    probe = RankProbe(top=4)
    probe.start(model)
    with torch.no_grad():
        attn.w_v[2] += 1.0
    values = probe(1, model, {}, {})
    assert values["rank/attn.H0/vo/stable_rank"] == pytest.approx(1.0)
    assert values["rank/attn.H0/vo/sv0"] == pytest.approx(abs(float(attn.w_o[2].detach())), rel=1e-5)


def test_toy_run_learns_the_teacher_one_rank_at_a_time(tmp_path):
    """A real (small) run: the toy ends at the teacher's ranks and every rank jump ends a plateau."""
    ctx = RunContext(run=Run.open(tmp_path, {}, {"task": "incremental_rank"}), model=None, seed=0)
    task = IncrementalRank(
        alpha=1e-3,
        dim=4,
        tokens=4,
        samples=32,
        teacher_qk="1",
        teacher_vo="2,0.5",
        horizon=24,
        transformer=False,
        lr=0.1,
    )
    metrics = task.run(ctx)
    assert metrics["toy_qk_rank"] == 1 and metrics["toy_vo_rank"] == 2
    assert metrics["toy_n_rank_jumps"] == 3 and 0 < metrics["toy_alignment_p"] <= 1
    assert metrics["toy_final_loss"] < 1e-3
    record = json.loads(ctx.path("toy_staircase.json").read_text())
    assert len(record["plateaus"]) >= 2 and len(record["drop_peaks"]) >= 2
    first, second, last = sorted(jump["tau"] for jump in record["jumps"])
    assert all(min(abs(t - p) for p in record["drop_peaks"]) < 0.1 for t in (first, second))  # at the first drop
    # the last value's jump ends its plateau, but its drop is the final exponential convergence, whose fall rate in
    # log loss peaks later: the limitation the results page describes (and why this run's p is not small)
    assert metrics["toy_jump2_step"] > metrics["toy_jump2_plateau_end_step"]
    assert min(abs(last - p) for p in record["drop_peaks"]) > 1
    assert ctx.path("toy_loss.png").exists() and ctx.path("toy_singular_values.png").exists()


def test_vit_on_digits_runs_and_reads_every_head(tmp_path):
    """A real (tiny) ViT on the bundled digits: the probe reads every head of every layer, the records exist."""
    from harness.plugins.incremental_rank.vit import IncrementalRankViT

    ctx = RunContext(run=Run.open(tmp_path, {}, {"task": "incremental_rank_vit"}), model=None, seed=0)
    task = IncrementalRankViT(alpha=0.1, layers=1, heads=2, d_model=8, samples=64, lr=0.5, horizon=60)
    metrics = task.run(ctx)
    record = json.loads(ctx.path("vit_staircase.json").read_text())
    assert sorted(record["stable_rank"]) == ["L0.H0/qk", "L0.H0/vo", "L0.H1/qk", "L0.H1/vo"]
    assert metrics["final_loss"] < np.log(10) - 0.05  # it leaves chance within 60 units of tau
    assert 0 < metrics["alignment_p"] <= 1 and 0 <= metrics["test_accuracy"] <= 1
    assert all(max(row[0] for row in values) > 0 for values in record["spectra"].values())  # every map moved
    assert all(ctx.path(f"vit_{name}.png").exists() for name in ("loss", "singular_values", "stable_rank"))


@pytest.mark.parametrize(
    "args, message",
    [
        ({"alpha": 1.5}, "alpha=1.5"),
        ({"teacher_vo": "2,x"}, "teacher_vo=2,x"),
        ({"dim": 6, "heads": 4}, "not divisible"),
        ({"dim": 2, "teacher_vo": "1,1,1"}, "more non-zero values than dim"),
    ],
)
def test_bad_args_name_the_fix(args, message):
    with pytest.raises(UsageError, match=message):
        IncrementalRank(**args)


@pytest.mark.parametrize(
    "args, message",
    [({"d_model": 10, "heads": 4}, "not divisible"), ({"alpha": 1.0}, "alpha=1.0"), ({"samples": 5}, "samples=5")],
)
def test_vit_bad_args_name_the_fix(args, message):
    from harness.plugins.incremental_rank.vit import IncrementalRankViT

    with pytest.raises(UsageError, match=message):
        IncrementalRankViT(**args)


def test_bad_args_exit_2(cli, tmp_path):
    result = cli("run", "--task", "incremental_rank", "--task-args", "teacher_qk=-1", "--out", tmp_path)
    assert result.returncode == 2 and "teacher_qk=-1" in result.stderr
