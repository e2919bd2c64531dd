"""The ReLU ResNet study: its teacher depends on r directions, its forward/cost/Jacobian, a short real run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from harness.plugins.linear_resnet.relu import (
    ReluResNetTask,
    build,
    cost,
    forward,
    jacobian_spectrum,
    make_data,
)

from harness.errors import UsageError
from harness.evaluation import RunContext
from harness.store import Run

pytestmark = pytest.mark.usefixtures("one_thread")


def test_teacher_depends_on_r_directions_and_training_inputs_are_white():
    o = ReluResNetTask(dim=6, rank=2, samples=40, noise=0.0).options
    x, y, clean = make_data(o, teacher_seed=0, sample_seed=1, n=40)
    assert torch.allclose(x.T @ x / 40, torch.eye(6, dtype=x.dtype), atol=1e-10)
    assert torch.equal(y, clean)
    # the teacher's function of x: finite differences span r = 2 input directions
    _, _, fresh = make_data(o, 0, 2, 300, whiten=False)
    xs, _, _ = make_data(o, 0, 2, 300, whiten=False)
    assert np.linalg.matrix_rank(np.linalg.lstsq(xs.numpy(), fresh.numpy(), rcond=None)[0], tol=1e-8) == 2


def test_forward_cost_and_jacobian_of_the_relu_resnet():
    o = ReluResNetTask(dim=4, rank=1, samples=8, depth=3, lam=0.5).options
    model = build(o, seed=0)
    with torch.no_grad():
        model["W2"].normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    x = torch.randn(5, 4, dtype=torch.float64)
    h = x @ model["A"].T
    for block in range(3):
        h = h + torch.relu(h @ model["W1"][block].T) @ model["W2"][block].T
    assert torch.allclose(forward(model, x), h @ model["B"].T)
    expected = sum(model[k].square().sum() for k in "AB") + 0.5 * 3 * (
        model["W1"].square().sum() + model["W2"].square().sum()
    )
    assert torch.allclose(cost(model, 0.5), expected)
    assert jacobian_spectrum(model, x)[1] > 0.01
    with torch.no_grad():  # an embedding that reads one input direction: every Jacobian is (...) e^T
        model["A"].copy_(torch.outer(model["A"][:, 0], torch.tensor([1.0, 2.0, 0.0, -1.0], dtype=torch.float64)))
    spectrum = jacobian_spectrum(model, x)
    assert spectrum[0] > 0 and spectrum[1] < 1e-10 * spectrum[0]


def test_strong_weight_decay_gives_the_teachers_jacobian_rank(tmp_path):
    """A short real run: lambda = 10 switches the residual branches off, the net is B A with the linear fit's rank."""
    ctx = RunContext(run=Run.open(tmp_path, {}, {"task": "linear_resnet_relu"}), model=None, seed=0)
    task = ReluResNetTask(dim=6, rank=2, samples=64, depth=2, lam=10.0, noise=0.1, steps=1500, lr=0.02)
    metrics = task.run(ctx)
    assert metrics["jacobian_rank"] == 2 == metrics["linear_rank"]
    assert abs(metrics["test_error"] - metrics["linear_test_error"]) < 0.02  # the same linear map
    assert ctx.path("spectra.json").exists()


@pytest.mark.parametrize("args, message", [({"rank": 9, "dim": 4}, "rank=9"), ({"samples": 3, "dim": 4}, "samples=3")])
def test_bad_args_name_the_fix(args, message):
    with pytest.raises(UsageError, match=message):
        ReluResNetTask(**args)
