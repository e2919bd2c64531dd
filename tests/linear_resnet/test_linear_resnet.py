"""Deep linear ResNet: end-to-end matrix, min-norm closed forms, gradient descent landing on them, bad args."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from harness.plugins.linear_resnet.experiment import step_size, teacher
from harness.plugins.linear_resnet.model import DeepLinearResNet
from harness.plugins.linear_resnet.task import LinearResNetTask
from harness.plugins.linear_resnet.theory import (
    min_norm_cost,
    objective,
    resnet_shrinkage,
    soft_threshold,
    truncate,
)

from harness.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_end_to_end_matrix_is_b_times_residual_product_times_a():
    torch.manual_seed(0)
    net = DeepLinearResNet(d_in=3, width=5, d_out=4, depth=3)
    with torch.no_grad():
        net.W.normal_(0, 0.3)
    eye = torch.eye(5)
    expected = net.B @ (eye + net.W[2]) @ (eye + net.W[1]) @ (eye + net.W[0]) @ net.A  # W_1 acts first
    assert torch.allclose(net.end_to_end(), expected, atol=1e-6)
    x = torch.randn(7, 3)
    assert torch.allclose(net(x), x @ expected.T, atol=1e-6)
    cost = net.A.square().sum() + net.B.square().sum() + 0.5 * 3 * net.W.square().sum()
    assert torch.allclose(net.cost(0.5), cost)


def test_min_norm_cost_matches_a_direct_search_over_one_direction():
    """c(s) = min over (a, b, w_1..w_L) of a^2 + b^2 + lambda L sum w_l^2 with a b prod(1 + w_l) = s."""
    s, depth, lam = 3.0, 3, 0.2
    grid = np.linspace(0.0, 1.5, 61)
    w1, w2, w3 = np.meshgrid(grid, grid, grid, indexing="ij")
    gain = (1 + w1) * (1 + w2) * (1 + w3)
    brute = (2 * s / gain + lam * depth * (w1**2 + w2**2 + w3**2)).min()  # a = b = sqrt(s / gain) is optimal
    assert min_norm_cost(s, depth, lam)[0] == pytest.approx(brute, rel=2e-3)
    assert min_norm_cost(s, depth, lam)[0] <= brute + 1e-9


def test_costs_lie_between_nuclear_norm_and_rank():
    s = np.array([0.01, 1.0, 100.0])
    assert np.allclose(min_norm_cost(s, 8, 1e6), 2 * s, rtol=1e-3)  # large lambda: 2 ||M||_*
    small = min_norm_cost(s, 10**6, 1e-3)  # deep, small lambda: ~ lambda log^2(s / lambda) per value, flat in s
    assert small[2] / small[1] < 3 and small[2] < 0.05 * 2 * s[2]


def test_shrinkage_closed_forms_against_brute_force():
    y, mu, depth, lam = np.array([0.5, 1.2, 2.0, 4.0]), 1.5, 4, 0.3
    s_grid = np.linspace(0, 5, 1001)
    brute = [s_grid[np.argmin(0.5 * (s_grid - v) ** 2 + 0.5 * mu * min_norm_cost(s_grid, depth, lam))] for v in y]
    assert np.allclose(resnet_shrinkage(y, mu, depth, lam), brute, atol=6e-3)
    assert np.allclose(resnet_shrinkage(y, mu, 0, lam), soft_threshold(y, mu))  # depth 0: the nuclear norm
    assert np.allclose(soft_threshold(y, mu), [0, 0, 0.5, 2.5])
    assert np.allclose(truncate([1.0, 3.0, 2.0], 2), [3.0, 2.0, 0.0])
    small_lam = resnet_shrinkage(np.array([4.0]), mu, depth, 1e-3)[0]  # kept values are barely shrunk
    assert 4.0 - small_lam < 0.1 * mu < 4.0 - resnet_shrinkage(np.array([4.0]), mu, depth, 100.0)[0]


def test_gradient_descent_lands_on_the_closed_form():
    """Planted case: GD on the ResNet's objective recovers the predicted shrinkage of every singular value."""
    target, observed = teacher(dim=6, rank=2, signal=4.0, noise=0.1, seed=0)
    y = torch.linalg.svdvals(observed).numpy()
    depth, lam, mu = 4, 0.3, 1.0
    torch.manual_seed(0)
    net = DeepLinearResNet(6, 6, 6, depth).double()
    opt = torch.optim.SGD(net.parameters(), lr=step_size(y, depth, lam, mu))
    for _ in range(2000):
        opt.zero_grad()
        loss = 0.5 * (net.end_to_end() - observed).square().sum() + 0.5 * mu * net.cost(lam)
        loss.backward()
        opt.step()
    trained = torch.linalg.svdvals(net.end_to_end().detach()).numpy()
    predicted = resnet_shrinkage(y, mu, depth, lam)
    assert np.abs(trained - predicted).max() < 1e-3
    assert float(loss.detach()) == pytest.approx(objective(y, predicted, mu, depth, lam), rel=1e-4)
    assert (predicted > 0).sum() == 2 and 0 < predicted[0] < y[0]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"rank": 20}, "rank=20 is larger than dim=16"),
        ({"mu": 0.0}, "mu=0.0: give mu > 0"),
        ({"depth": -1}, "depth=-1"),
        ({"noise": -0.1}, "noise=-0.1: give noise >= 0"),
    ],
)
def test_bad_args_name_the_fix(args, message):
    with pytest.raises(UsageError, match=message):
        LinearResNetTask(**args)


def test_bad_args_exit_2(cli, tmp_path):
    result = cli("run", "--task", "linear_resnet", "--task-args", "rank=20", "--out", tmp_path)
    assert result.returncode == 2 and "rank=20 is larger than dim=16" in result.stderr
