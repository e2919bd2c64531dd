"""The trainer under ``torchrun``: which process this is, the loss wrapped for DDP, each rank's slice of a batch, and
the values every rank must agree on.

With ``WORLD_SIZE`` > 1 the trainer joins the process group (gloo on CPU, nccl on CUDA), wraps the loss in DDP and
gives rank r the r-th contiguous slice of every global batch; DDP averages the gradients, which equals the full-batch
gradient when each slice counts the same number of loss positions. Only rank 0 logs, probes, evaluates and writes
checkpoints. With one process every helper here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Dist:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1); one process needs none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def loss_module(model, loss_fn):
    """The loss as an nn.Module, so DDP's gradient sync sees any loss_fn (not only model.forward)."""
    from torch import nn

    class LossModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, batch):
            return loss_fn(self.model, batch)

    return LossModule()


def shard(batch: dict, dist: Dist, batch_size: int, device: str) -> dict:
    """This rank's contiguous slice of each tensor whose first dim is the global batch, on device."""
    per = batch_size // dist.world
    lo = dist.rank * per
    out = {}
    for key, value in batch.items():
        if hasattr(value, "to"):
            if dist.world > 1 and value.dim() > 0 and value.shape[0] == batch_size:
                value = value[lo : lo + per]
            value = value.to(device, non_blocking=True)
        out[key] = value
    return out


def mean_across_ranks(value: float, dist: Dist, device: str) -> float:
    """The mean of ``value`` over all ranks (each rank's loss over its slice)."""
    if dist.world == 1:
        return value
    import torch
    import torch.distributed as torch_dist

    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch_dist.all_reduce(tensor)
    return float(tensor.item()) / dist.world


def broadcast_flag(flag: bool, dist: Dist, device: str) -> bool:
    """Rank 0's ``flag`` on every rank (rank 0 decides early stopping; the others follow it out of the loop)."""
    if dist.world == 1:
        return flag
    import torch
    import torch.distributed as torch_dist

    tensor = torch.tensor([float(flag)], device=device)
    torch_dist.broadcast(tensor, src=0)
    return bool(tensor.item())
