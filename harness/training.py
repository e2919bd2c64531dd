"""The one trainer every from-scratch experiment shares, and the probe machinery around it.

A probe is any object with ``name``, ``layers(model) -> list[str]`` (module names whose inputs and output
gradients it needs; ``[]`` for none) and ``__call__(step, model, batch, captures) -> dict[str, float]``;
optionally ``start(model, trainer)``, called once before the first step with the model at its initial weights
(on resume, with a copy holding the initial weights saved in the run folder). Probes are registered with
``harness_register_probes`` and built from ``--probe`` names by :func:`probes_from_context`.

On a probe step (``step % probe_every == 0`` and step 1) the trainer records, for each requested layer, the
layer's first input and the gradient of the loss with respect to its output (``captures[name] = {"inputs":
(..., d_in), "grad_outputs": (..., d_out)}``, float32, detached). Probes and the ``harness_train_step`` hook
run after the backward pass and *before* the optimizer update, so weights, inputs and gradients all belong to
the same point (what FACT needs); ``step`` is the number of the update about to be applied. The gradient is
that of the loss the trainer minimises (usually a mean over the batch: see the fact probe for what that
implies).

Determinism: the batch for step ``s`` is drawn by ``batches(s, generator)`` with a generator seeded from
(seed, s), so a resumed run sees the very same batches without storing generator state; dropout uses the
global torch RNG, whose state goes into every checkpoint with the model, optimizer, scheduler and step.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the trainer joins the process group (gloo on CPU, nccl on
CUDA), wraps the loss in DDP and gives rank r the r-th contiguous slice of every global batch; DDP averages
the gradients, which equals the full-batch gradient when each slice counts the same number of loss positions.
Only rank 0 logs, probes, evaluates and writes checkpoints.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.store import append_jsonl, read_jsonl

STATE_FILE = "train_state.pt"


@dataclass
class TrainConfig:
    """How to train; every field is recorded in checkpoints."""

    steps: int = 1000  # optimizer updates
    batch_size: int = 32  # global batch: examples per step over all ranks (the batches callable must match it)
    lr: float = 3e-4  # peak learning rate
    weight_decay: float = 0.0  # AdamW: decoupled decay; SGD: L2 term lambda*theta added to the gradient
    optimizer: str = "adamw"  # "adamw" or "sgd"
    momentum: float = 0.0  # SGD momentum (0 = plain gradient descent)
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    warmup: float = 0.0  # fraction of steps with linear warmup from 0 to lr
    schedule: str = "cosine"  # after warmup: "cosine" decay to min_lr_ratio * lr, or "constant"
    min_lr_ratio: float = 0.0  # floor of the cosine schedule, as a fraction of lr
    grad_clip: float | None = 1.0  # max global gradient norm; None or 0 = no clipping
    dtype: str = "float32"  # "float32" or "bfloat16" (autocast; weights and optimizer stay float32)
    seed: int = 0  # seeds batches (per step) and the global torch RNG (dropout)
    checkpoint_every: int = 0  # steps between checkpoints in run_dir (0 = only at the end)
    eval_every: int = 0  # steps between evaluate() calls (0 = only at the end, when evaluate is given)
    log_every: int = 10  # steps between train-loss log points
    early_stop_patience: int | None = None  # stop after this many evaluations without improvement (None = off)
    early_stop_metric: str = "eval_loss"  # key of evaluate()'s result watched by early stopping
    early_stop_mode: str = "min"  # "min" or "max": which direction is an improvement
    device: str = "cpu"  # "cpu" or "cuda"
    no_decay_1d: bool = False  # exclude 1-D parameters (biases, norm gains) from weight decay
    compile: bool = False  # torch.compile the loss computation (faster steps; layer captures may recompile)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        choices = {
            "optimizer": ("adamw", "sgd"),
            "schedule": ("cosine", "constant"),
            "dtype": ("float32", "bfloat16"),
            "early_stop_mode": ("min", "max"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UsageError(f"{name} '{getattr(self, name)}': choose one of {', '.join(allowed)}")
        if self.steps < 1 or self.batch_size < 1:
            raise UsageError("steps and batch_size must be positive")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"warmup {self.warmup}: give a fraction of the steps in [0, 1)")


def probes_from_context(ctx, **probe_args) -> list:
    """The probe objects named by ``--probe`` (``ctx.probes``); use with ``probe_every=ctx.probe_every``.

    ``probe_args`` go to every probe factory that accepts them (e.g. ``top=8`` for rank).
    """
    return make_probes(ctx.probes, **probe_args)


def make_probes(names, **probe_args) -> list:
    """Build registered probes by name; ``names`` may also be a RunContext (its ``--probe`` names)."""
    from harness.registry import lookup

    names = getattr(names, "probes", names)
    probes = []
    for name in names:
        factory = lookup("probes", name).factory
        params = inspect.signature(factory).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        probes.append(factory(**{k: v for k, v in probe_args.items() if takes_all or k in params}))
    return [p for p in probes if p is not None]


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), Python's random and NumPy: call before building a model for seeded init."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Learning-rate multiplier for update ``step`` (0-based): linear warmup, then cosine or constant."""
    warmup_steps = int(config.warmup * config.steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if config.schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, config.steps - warmup_steps)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of handing it back to the OS after each step.

    A CPU training step allocates and frees hundreds of megabytes of activations. By default glibc trims the
    top of the heap once a step's tensors are freed and serves blocks of 32 MiB and more by fresh mmaps, so
    the next step page-faults all of it in again (~10% of a step at benchmarks/train_throughput.py's shape).
    This is what jemalloc or tcmalloc, the allocators PyTorch's CPU tuning guide recommends, do by default.
    Process-wide; returns False where the C library is not glibc (macOS, musl), which is then left alone.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, one_gib = -1, -3, 1 << 30
    return bool(mallopt(M_MMAP_THRESHOLD, one_gib) and mallopt(M_TRIM_THRESHOLD, one_gib))


def load_state(path: Path, device: str) -> dict:
    """A training state written by :meth:`Trainer.save_checkpoint`: tensors and plain data only.

    ``weights_only=True`` refuses any pickle that would construct other objects (run code), so a planted checkpoint
    cannot execute anything on resume.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"{path}: not a training state of tensors and plain data ({first[:160]}); delete the "
            "checkpoint folder to train from scratch"
        ) from None


def default_loss(model, batch: dict):
    return model.loss(batch["input_ids"], batch["targets"], batch.get("loss_mask"))


def count_tokens(batch: dict) -> int:
    """Tokens in a batch: input_ids' elements for integer (B, T) inputs, else the number of examples."""
    x = batch.get("input_ids")
    if x is None:
        x = next(v for v in batch.values() if hasattr(v, "shape"))
    is_int = not (x.dtype.is_floating_point or x.dtype.is_complex)
    return int(x.numel()) if is_int and x.dim() >= 2 else int(x.shape[0])


class Captures:
    """Records the first input and the output gradient of named modules while active (a context manager)."""

    def __init__(self, model, names: list[str]):
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise UsageError(f"probe asked for unknown layers {missing}; layer names are model.named_modules()")
        self.modules = {name: modules[name] for name in names}
        self.data: dict[str, dict] = {}
        self.handles = []

    def _hook(self, name: str):
        def hook(module, inputs, output):
            record = self.data.setdefault(name, {})
            record["inputs"] = inputs[0].detach().float()
            if output.requires_grad:
                output.register_hook(lambda grad: record.__setitem__("grad_outputs", grad.detach().float()))

        return hook

    def __enter__(self):
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        return self.data

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        self.handles = []


def _loss_module(model, loss_fn):
    """The loss as an nn.Module, so DDP's gradient sync sees any loss_fn (not only model.forward)."""
    from torch import nn

    class LossModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, batch):
            return loss_fn(self.model, batch)

    return LossModule()


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(config: TrainConfig) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if config.device.startswith("cuda") else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size())


@dataclass
class _State:
    """Trainer bookkeeping that must survive a resume."""

    step: int = 0
    best: float | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    last_loss: float = float("nan")
    last_eval: dict = field(default_factory=dict)


class Trainer:
    """Trains ``model`` on ``batches(step, generator) -> dict of tensors``; see the module docstring."""

    def __init__(
        self,
        model,
        config: TrainConfig,
        batches: Callable,
        loss_fn: Callable | None = None,
        run_dir: Path | None = None,
        log: Callable | None = None,
        probes: list = (),
        probe_every: int = 100,
        evaluate: Callable | None = None,
        hooks: Any = None,
        progress: bool = True,
        tokenizer=None,
        model_extra: dict | None = None,
    ):
        self.model = model
        self.config = config
        self.batches = batches
        self.loss_fn = loss_fn or default_loss
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.log_fn = log
        self.probes = list(probes)
        self.probe_every = max(1, int(probe_every or 1))
        self.evaluate = evaluate
        self.hooks = hooks
        self.progress = progress
        self.tokenizer = tokenizer
        self.model_extra = model_extra or {}
        self.dist = _init_distributed(config)
        if config.batch_size % self.dist.world:
            raise UsageError(f"batch_size {config.batch_size} is not divisible by the {self.dist.world} processes")
        self.device = config.device
        if self.device.startswith("cuda") and self.dist.world > 1:
            self.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.state = _State()
        self.history: list[dict] = []
        # the hook is called only when some plugin implements it: a probe step captures nothing otherwise
        self._hook_impls = bool(hooks is not None and hooks.harness_train_step.get_hookimpls())

    # setup --------------------------------------------------------------------------------------------------
    def _build(self):
        import torch

        self.model.to(self.device)
        if torch.device(self.device).type == "cpu":
            keep_freed_memory()
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.config.no_decay_1d:
            groups = [
                {"params": [p for p in params if p.dim() >= 2]},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
            ]
        else:
            groups = [{"params": params}]
        c = self.config
        if c.optimizer == "adamw":
            # fused: one kernel for the whole update (CPU and CUDA), same maths as the loop version
            self.optimizer = torch.optim.AdamW(groups, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay, fused=True)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, c))
        self.loss_module = _loss_module(self.model, self.loss_fn)
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
            self.loss_module = DistributedDataParallel(self.loss_module, device_ids=device_ids)
        if c.compile:
            self.loss_module.compile()

    def _autocast(self):
        import torch

        return torch.autocast(
            torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.config.dtype == "bfloat16"
        )

    def generator(self, step: int):
        """The generator that draws the batch of ``step`` (seeded from the run seed and the step)."""
        from harness.seeding import generator

        return generator(self.config.seed, "batch", step)

    def _shard(self, batch: dict) -> dict:
        """This rank's contiguous slice of each tensor whose first dim is the global batch, on device."""
        per = self.config.batch_size // self.dist.world
        lo = self.dist.rank * per
        out = {}
        for key, value in batch.items():
            if hasattr(value, "to"):
                if self.dist.world > 1 and value.dim() > 0 and value.shape[0] == self.config.batch_size:
                    value = value[lo : lo + per]
                value = value.to(self.device, non_blocking=True)
            out[key] = value
        return out

    # checkpoints --------------------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path | None:
        return self.run_dir / "checkpoint" if self.run_dir is not None else None

    def save_checkpoint(self) -> None:
        """Model files (loadable by ``scratch:``) plus the full training state, swapped in atomically."""
        import torch

        from harness.models.checkpoint import model_spec, write_dir_atomic, write_model_files

        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "state": asdict(self.state),
            "config": asdict(self.config),
        }

        def write(folder: Path):
            torch.save(state, folder / STATE_FILE)
            try:
                model_spec(self.model)
            except TypeError:
                return  # not a harness.models class: the training state alone is enough to resume
            write_model_files(folder, self.model, self.tokenizer, {**self.model_extra, "step": self.state.step})

        write_dir_atomic(self.checkpoint_dir, write)

    def _resume(self) -> bool:
        import torch

        from harness.models.checkpoint import existing_dir

        folder = existing_dir(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        if folder is None or not (folder / STATE_FILE).exists():
            return False
        saved = load_state(folder / STATE_FILE, self.device)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        if saved["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        self.state = _State(**saved["state"])
        return True

    def _initial_weights_path(self) -> Path | None:
        return self.run_dir / "initial_weights.pt" if self.run_dir is not None else None

    def _start_probes(self, resumed: bool) -> None:
        """Give each probe the model at its initial weights (a copy restored from disk after a resume)."""
        import copy

        import torch

        starters = [p for p in self.probes if hasattr(p, "start")]
        if not starters:
            return
        path = self._initial_weights_path()
        model = self.model
        if resumed and path is not None and path.exists():
            model = copy.deepcopy(self.model)
            model.load_state_dict(torch.load(path, map_location=self.device))
        elif not resumed and path is not None and self.dist.main:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(self.model.state_dict(), path)
        for probe in starters:
            takes_trainer = "trainer" in inspect.signature(probe.start).parameters
            probe.start(model, trainer=self) if takes_trainer else probe.start(model)

    # logging ------------------------------------------------------------------------------------------------
    def _log(self, step: int, values: dict) -> None:
        if not values or not self.dist.main:
            return
        values = {k: float(v) for k, v in values.items()}
        self.history.append({"step": step, **values})
        if self.log_fn is not None:
            self.log_fn(step, values)
        elif self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            append_jsonl(self.run_dir / "metrics.jsonl", [{"step": step, **values}])

    def _run_probes(self, step: int, batch: dict, captures: dict) -> None:
        values = {}
        for probe in self.probes:
            values.update(probe(step, self.model, batch, captures) or {})
        if self._hook_impls:
            for result in self.hooks.harness_train_step(step=step, model=self.model, batch=batch, captures=captures):
                values.update(result or {})
        self._log(step, values)

    def _evaluate(self, step: int) -> None:
        self.model.eval()
        try:
            values = dict(self.evaluate(self.model, step) or {})
        finally:
            self.model.train()
        self.state.last_eval = values
        self._log(step, values)
        if self.config.early_stop_patience is None:
            return
        metric = self.config.early_stop_metric
        if metric not in values:
            raise UsageError(
                f"early stopping watches '{metric}' but evaluate() returned {sorted(values)}; "
                "set early_stop_metric to one of them"
            )
        value = values[metric]
        better = self.state.best is None or (
            value < self.state.best if self.config.early_stop_mode == "min" else value > self.state.best
        )
        if better:
            self.state.best, self.state.bad_evals = value, 0
        else:
            self.state.bad_evals += 1
            self.state.stopped_early = self.state.bad_evals >= self.config.early_stop_patience

    # the loop -----------------------------------------------------------------------------------------------
    def _layers(self) -> list[str]:
        names = []
        for probe in self.probes:
            names += [n for n in (probe.layers(self.model) if hasattr(probe, "layers") else []) if n not in names]
        return names

    def _step(self, step: int, batch: dict, probing: bool):
        import contextlib

        import torch

        captures = Captures(self.model, self._layers()) if probing else contextlib.nullcontext({})
        with captures as captured:
            with self._autocast():
                loss = self.loss_module(batch)
            loss.backward()
        if probing:
            self._run_probes(step, batch, captured)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def _mean_across_ranks(self, value: float) -> float:
        if self.dist.world == 1:
            return value
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.dist.world

    def fit(self) -> dict:
        """Train to ``config.steps`` (or an early stop), resuming from run_dir's checkpoint; final metrics."""
        import torch
        from tqdm import tqdm

        self._build()
        torch.manual_seed(self.config.seed)
        resumed = self._resume()
        self._start_probes(resumed)
        self.model.train()
        c = self.config
        start, tokens, losses = self.state.step, 0, []
        began = time.perf_counter()
        bar = tqdm(
            total=c.steps,
            initial=start,
            desc="train",
            unit="step",
            disable=not (self.progress and self.dist.main),
        )
        for step in range(start + 1, c.steps + 1):
            if self.state.stopped_early:
                break
            batch = self.batches(step, self.generator(step))
            tokens += count_tokens(batch)
            probing = (
                bool(self.probes or self._hook_impls) and self.dist.main and (step % self.probe_every == 0 or step == 1)
            )
            losses.append(self._step(step, self._shard(batch), probing))
            self.state.step = step
            bar.update(1)
            if step % c.log_every == 0 or step == c.steps:
                self.state.last_loss = self._mean_across_ranks(float(torch.stack(losses).float().mean()))
                losses = []
                rate = tokens / max(time.perf_counter() - began, 1e-9)
                self._log(
                    step,
                    {
                        "train_loss": self.state.last_loss,
                        "lr": self.scheduler.get_last_lr()[0],
                        "tokens_per_s": rate,
                    },
                )
                bar.set_postfix(loss=f"{self.state.last_loss:.4f}", tok_s=f"{rate:,.0f}")
            if self.evaluate is not None and self.dist.main and c.eval_every and step % c.eval_every == 0:
                self._evaluate(step)
            self._broadcast_stop()
            if (
                self.checkpoint_dir is not None
                and self.dist.main
                and c.checkpoint_every
                and step % c.checkpoint_every == 0
            ):
                self.save_checkpoint()
        bar.close()
        elapsed = time.perf_counter() - began
        if self.evaluate is not None and self.dist.main and not (c.eval_every and self.state.step % c.eval_every == 0):
            self._evaluate(self.state.step)
        if self.checkpoint_dir is not None and self.dist.main:
            self.save_checkpoint()
            self._plot()
        return {
            "train_loss": self.state.last_loss,
            "tokens_per_s": tokens / max(elapsed, 1e-9),
            "steps": self.state.step,
            "train_time_s": elapsed,
            "stopped_early": float(self.state.stopped_early),
            **self.state.last_eval,
        }

    def _broadcast_stop(self) -> None:
        """Rank 0 decides early stopping; the others follow so every process leaves the loop together."""
        if self.dist.world == 1 or self.config.early_stop_patience is None:
            return
        import torch
        import torch.distributed as dist

        flag = torch.tensor([float(self.state.stopped_early)], device=self.device)
        dist.broadcast(flag, src=0)
        self.state.stopped_early = bool(flag.item())

    def _plot(self) -> list[Path]:
        """PNG plots of the logged series in run_dir (see :func:`plot_series`)."""
        path = self.run_dir / "metrics.jsonl"
        records = self.history
        if path.exists():  # the whole record, steps before a resume included (also when log wrote it)
            records = read_jsonl(path)
        return plot_series(self.run_dir, records)


def group_series(records: list[dict]) -> dict[str, dict[str, tuple[list, list]]]:
    """Group logged keys into plots: ``probe/a/b/stat3`` goes to plot ``probe_stat`` as line ``a/b/3``.

    A key logged twice for a step (a resumed run re-logs the steps after its last checkpoint) keeps the last.
    """
    import re

    by_step: dict[str, dict[int, float]] = {}
    for record in records:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                by_step.setdefault(key, {})[int(record["step"])] = float(value)
    plots: dict[str, dict[str, tuple[list, list]]] = {}
    for key, points in by_step.items():
        parts = key.split("/")
        stem, digits = re.fullmatch(r"(.*?)(\d*)", parts[-1]).groups()
        stem = stem or parts[-1]
        plot = "_".join([parts[0], stem]) if len(parts) > 1 else key
        label = "/".join(parts[1:-1] + ([digits] if digits and stem != parts[-1] else [])) or key
        steps = sorted(points)
        plots.setdefault(plot, {})[label] = (steps, [points[s] for s in steps])
    return plots


def plot_series(folder: Path, records: list[dict], max_lines: int = 16) -> list[Path]:
    """One PNG per group of :func:`group_series` in ``folder`` (at most ``max_lines`` lines each)."""
    from harness.report import plot_lines

    paths = []
    for plot, series in group_series(records).items():
        if plot in ("lr", "tokens_per_s"):
            continue
        shown = dict(list(series.items())[:max_lines])
        name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in plot)
        paths.append(plot_lines(Path(folder) / f"train_{name}.png", shown, xlabel="step", ylabel=plot, title=plot))
    return paths
