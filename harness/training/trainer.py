"""The one trainer every from-scratch experiment shares: ``Trainer(model, config, batches).fit()``.

Determinism: the batch for step ``s`` is drawn by ``batches(s, generator)`` with a generator seeded from
(seed, s), so a resumed run sees the very same batches without storing generator state; dropout uses the
global torch RNG, whose state goes into every checkpoint with the model, optimizer, scheduler and step.

Probes (what they get, and when) are described in harness/training/probes.py, the ``torchrun`` case in
distributed.py; config.py holds the configuration and the learning-rate schedule, plots.py the plots of the series.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.store import append_jsonl, read_jsonl
from harness.training.config import TrainConfig, lr_factor
from harness.training.distributed import broadcast_flag, init_distributed, loss_module, mean_across_ranks, shard
from harness.training.plots import plot_series
from harness.training.probes import Captures

STATE_FILE = "train_state.pt"


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
        desc: str = "train",
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
        self.desc = desc  # the progress bar's label: which model this is, when a run trains several
        self.dist = init_distributed(config.device)
        if config.batch_size % self.dist.world:
            raise UsageError(f"batch_size {config.batch_size} is not divisible by the {self.dist.world} processes")
        self.device = config.device
        if self.device.startswith("cuda") and self.dist.world > 1:
            self.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.state = _State()
        self.history: list[dict] = []
        self.compile_s: float | None = None  # seconds of the first compiled step (tracing + compiling + running it)
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
        self.loss_module = loss_module(self.model, self.loss_fn)
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
            self.loss_module = DistributedDataParallel(self.loss_module, device_ids=device_ids)
        if c.compile:
            from harness.training.compile import compile_loss

            compile_loss(self.loss_module)

    def _autocast(self):
        import torch

        return torch.autocast(
            torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.config.dtype == "bfloat16"
        )

    def generator(self, step: int):
        """The generator that draws the batch of ``step`` (seeded from the run seed and the step)."""
        from harness.seeding import generator

        return generator(self.config.seed, "batch", step)

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
            model.load_state_dict(load_state(path, self.device))  # weights_only=True: tensors, nothing run
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
            desc=self.desc,
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
            step_began = time.perf_counter()
            losses.append(self._step(step, shard(batch, self.dist, c.batch_size, self.device), probing))
            if c.compile and self.compile_s is None:  # the first call traces and compiles
                self.compile_s = time.perf_counter() - step_began
            self.state.step = step
            bar.update(1)
            if step % c.log_every == 0 or step == c.steps:
                loss = float(torch.stack(losses).float().mean())
                self.state.last_loss = mean_across_ranks(loss, self.dist, self.device)
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
            **({"compile_s": self.compile_s} if self.compile_s is not None else {}),
            **self.state.last_eval,
        }

    def _broadcast_stop(self) -> None:
        """Rank 0 decides early stopping; the others follow so every process leaves the loop together."""
        if self.config.early_stop_patience is not None:
            self.state.stopped_early = broadcast_flag(self.state.stopped_early, self.dist, self.device)

    def _plot(self) -> list[Path]:
        """PNG plots of the logged series in run_dir (see :func:`plot_series`)."""
        path = self.run_dir / "metrics.jsonl"
        records = self.history
        if path.exists():  # the whole record, steps before a resume included (also when log wrote it)
            records = read_jsonl(path)
        return plot_series(self.run_dir, records)
