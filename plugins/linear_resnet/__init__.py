"""linear_resnet: the inductive bias of min-norm deep linear ResNets, between nuclear norm and rank (arXiv 2501.19149).

Registers the task ``linear_resnet``. Nothing heavy is imported here: torch loads when the task runs.
"""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.linear_resnet.task import LinearResNetTask

    register(
        "linear_resnet",
        LinearResNetTask,
        description="deep linear ResNet on a noisy low-rank matrix: singular-value shrinkage vs lambda, depth",
    )
    from harness.plugins.linear_resnet.relu import ReluResNetTask

    register(
        "linear_resnet_relu",
        ReluResNetTask,
        description="ReLU ResNet with weight decay on a rank-r target: Jacobian (bottleneck) rank vs lambda, depth",
    )
