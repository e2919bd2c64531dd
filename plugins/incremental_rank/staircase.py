"""Finding the staircase: loss drops and plateaus, rank jumps, and how they line up.

Time is rescaled, tau = lr x step / log(1/alpha): the theorem's clock, on which the stages of gradient flow from
scale alpha stay put as alpha -> 0 while each transition gets sharper.

- The fall rate is r = -d log(loss) / d tau. A loss drop is a peak of r that stands out: at least ``PROMINENCE``
  times its height above the valleys on both sides, and above ``MIN_RATE``. The drop runs from where r first
  exceeds ``EDGE`` of the peak before it to where r falls below it again after. Plateaus are the stretches between
  drops (at least ``MIN_PLATEAU`` long); a plateau's end is the start of the next drop. Relative to each peak, so
  the small drops of a loss with a large unlearned part count like the large drops of the toy.
- A rank jump of a map is the moment its k-th singular value of Delta grows fastest (for each k whose final value
  is at least ``SIGNIFICANT`` of that map's largest, and at least ``SIGNIFICANT`` of the largest of all maps);
  the rank of Delta goes up by one there.
- Alignment, a test that can fail: each jump's distance to the nearest drop's peak (the moment the loss falls
  fastest), averaged over the jumps, against the same average for as many jump times drawn uniformly over the
  training window (``alignment_test``); its p-value is the fraction of draws at least as close. Jumps scattered
  without regard to the drops give p ~ U(0, 1); p < 0.05 says the jumps sit at the drops. ``alignment`` (a jump
  inside a drop that ends a plateau) is kept for the gap it reports.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

PROMINENCE = 0.3  # a drop's peak rate exceeds its neighbouring valleys by at least this fraction of its height
MIN_RATE = 0.01  # slowest peak fall rate (per unit tau) that counts as a drop
EDGE = 0.25  # a drop starts and ends where the rate crosses this fraction of its peak
MIN_PLATEAU = 0.5  # shortest plateau, in tau
SIGNIFICANT = 0.05  # smallest final singular value counted, as a fraction of the map's (and all maps') largest


def fall_rate(tau: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """-d log(loss) / d tau, by central differences."""
    return -np.gradient(np.log(np.maximum(loss, 1e-30)), tau)


def drop_peaks(tau: np.ndarray, loss: np.ndarray) -> list[tuple[float, float, float]]:
    """(start, peak, end) in tau of each prominent peak of the fall rate, in order, before any merging."""
    rate = fall_rate(tau, loss)
    padded = np.concatenate([[0.0], rate, [0.0]])  # a drop still under way at either end is a peak too
    peaks, props = find_peaks(padded, height=MIN_RATE, prominence=0.0)
    found = []
    for peak, prominence in zip(peaks - 1, props["prominences"]):
        if prominence < PROMINENCE * rate[peak]:
            continue
        low = rate < EDGE * rate[peak]
        before = np.nonzero(low[:peak])[0]
        after = np.nonzero(low[peak:])[0]
        start = tau[before[-1]] if len(before) else tau[0]
        end = tau[peak + after[0]] if len(after) else tau[-1]
        found.append((float(start), float(tau[peak]), float(end)))
    return found


def new_low_peaks(tau: np.ndarray, loss: np.ndarray) -> list[float]:
    """The drop peaks (``drop_peaks``) after which the loss ends below every earlier value: progress, not the
    recovery from a spike (full-batch GD at the edge of stability has many of those)."""
    peaks = []
    for start, peak, end in drop_peaks(tau, loss):
        before = loss[tau < start]
        if not len(before) or loss[np.searchsorted(tau, end, side="left").clip(max=len(loss) - 1)] < before.min():
            peaks.append(peak)
    return peaks


def drops(tau: np.ndarray, loss: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) in tau of each loss drop, in order; overlapping drops are merged."""
    found: list[list[float]] = []
    for start, _, end in drop_peaks(tau, loss):
        if found and start <= found[-1][1]:
            found[-1][1] = max(found[-1][1], float(end))
        else:
            found.append([float(start), float(end)])
    return [(s, e) for s, e in found]


def plateaus(tau: np.ndarray, loss: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) in tau of the stretches between drops, at least MIN_PLATEAU long."""
    edges = [float(tau[0])] + [t for drop in drops(tau, loss) for t in drop] + [float(tau[-1])]
    pairs = zip(edges[0::2], edges[1::2])
    return [(s, e) for s, e in pairs if e - s >= MIN_PLATEAU]


def rank_jumps(tau: np.ndarray, singular_values: np.ndarray, floor: float) -> list[float]:
    """Times (tau) at which each significant singular value of Delta grows fastest.

    ``singular_values``: (time, k) descending per row; ``floor``: smallest final value that counts.
    """
    final = singular_values[-1]
    floor = max(floor, SIGNIFICANT * float(final[0]))
    slope = np.gradient(singular_values, tau, axis=0)  # (time, k)
    return [float(tau[np.argmax(slope[:, k])]) for k in range(singular_values.shape[1]) if final[k] >= floor]


def transition_width(tau: np.ndarray, values: np.ndarray) -> float:
    """Duration of a jump over the time it happens: (final value / steepest slope) / time of the steepest slope.

    For a logistic step this is 4 x its width over its centre (~ the 12%-88% rise time over the centre); small
    means a sharp step.
    """
    slope = np.gradient(values, tau)
    peak = int(np.argmax(slope))
    return float(values[-1] / max(slope[peak], 1e-30) / max(tau[peak], 1e-12))


def alignment(
    jumps: list[float], found_drops: list[tuple[float, float]], flats: list[tuple[float, float]]
) -> list[dict]:
    """For each jump: the drop it falls in, the end of the plateau before that drop, the gap, and whether aligned."""
    rows = []
    for jump in sorted(jumps):
        drop = next(((s, e) for s, e in found_drops if s <= jump <= e), None)
        ended = [e for _, e in flats if drop is not None and abs(e - drop[0]) < 1e-9]
        end = ended[0] if ended else float("nan")
        rows.append({"jump": jump, "plateau_end": end, "gap": jump - end, "aligned": bool(ended)})
    return rows


def alignment_test(
    jumps: list[float],
    peaks: list[float],
    window: tuple[float, float],
    draws: int = 20000,
    seed: int = 0,
    null: str = "uniform",
) -> dict[str, float]:
    """Do rank jumps sit at loss drops more than chance would put them there?

    ``distance``: the mean over jumps of |jump - nearest drop peak|; ``null_distance``: its mean under the null;
    ``p``: (1 + draws at least as close) / (1 + draws). The null: ``uniform``, the same number of jumps fall
    independently and uniformly on ``window``; ``shift``, all jumps move by one common uniform offset, wrapping
    around the window (it keeps their clustering: jumps that come in bursts are not counted as independent). With
    no jump or no drop there is nothing to test: distance nan, p 1.
    """
    if not jumps or not peaks:
        return {"distance": float("nan"), "null_distance": float("nan"), "p": 1.0}
    centres = np.sort(np.asarray(peaks, dtype=float))

    def mean_distance(times: np.ndarray) -> np.ndarray:  # (..., n_jumps) -> (...)
        return np.abs(times[..., None] - centres).min(-1).mean(-1)

    observed = float(mean_distance(np.asarray(jumps, dtype=float)))
    rng = np.random.default_rng(seed)
    lo, width = window[0], window[1] - window[0]
    if null == "shift":
        offsets = rng.uniform(0, width, size=(draws, 1))
        times = lo + (np.asarray(jumps, dtype=float)[None] - lo + offsets) % width
    else:
        times = rng.uniform(lo, window[1], size=(draws, len(jumps)))
    null = mean_distance(times)
    p = (1 + int((null <= observed + 1e-12).sum())) / (1 + draws)
    return {"distance": observed, "null_distance": float(null.mean()), "p": float(p)}


def width_exponent(alphas: list[float], widths: list[float]) -> float:
    """Slope of log(transition width) against log(log(1/alpha)).

    A transition takes O(1) time on the step clock, and tau divides that clock by log(1/alpha), so the theorem's
    sharpening predicts widths ~ 1/log(1/alpha): slope -1.
    """
    x = np.log(np.log(1 / np.asarray(alphas, dtype=float)))
    return float(np.polyfit(x, np.log(np.asarray(widths, dtype=float)), 1)[0])
