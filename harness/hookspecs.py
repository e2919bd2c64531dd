"""The plugin contract: every hook a plugin may implement.

Registration hooks receive a ``register`` callable so one plugin can add many things while the core stays lazy:
what is registered is a name and a factory, and heavy imports happen only when the factory is called.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")


@hookspec
def harness_register_tasks(register):
    """Add task families. Called once when the task registry is first used.

    :param register: ``register(name, factory, description="")``; ``factory(**task_args)`` returns a task object
        with ``name``, ``version`` and ``run(ctx) -> dict[str, float]`` (see :mod:`harness.evaluation`).
    """


@hookspec
def harness_register_backends(register):
    """Add model engines by spec scheme (``hf``, ``vllm``, ``openai``, ``scratch``, ...).

    :param register: ``register(scheme, factory, description="")``; ``factory(target, **model_args)`` returns an
        :class:`harness.backends.LM`. Import the engine inside the factory, never at module import.
    """


@hookspec
def harness_register_components(register):
    """Add parts for from-scratch models (attention, ffn, positional, ...).

    :param register: ``register(kind, name, factory, description="")``; the model builder calls
        ``factory(config, layer_index)`` and expects an ``nn.Module``.
    """


@hookspec
def harness_register_probes(register):
    """Add probes that watch training, selected with ``--probe NAME``.

    :param register: ``register(name, factory, description="")``; ``factory(**probe_args)`` returns a probe
        (see :mod:`harness.training`).
    """


@hookspec
def harness_register_optimizers(register):
    """Add prompt optimizers, used by ``harness optimize --optimizer NAME``.

    :param register: ``register(name, factory, description="")``; ``factory(**args)`` returns an object with
        ``run(ctx) -> dict[str, float]``.
    """


@hookspec
def harness_register_trackers(register):
    """Add experiment trackers, selected with ``--log NAME`` (or ``HARNESS_LOG=a,b``) on run, optimize and sweep.

    :param register: ``register(name, factory, description="")``; ``factory()`` returns a tracker (see
        :class:`harness.tracking.Tracker`), whose methods the core calls for every run, sweep point, optimization
        and training alike, each after the run's own record of it is written:
        ``start(run, parent)`` with the run's config (``parent``: the sweep's run id for a point, else None),
        ``series(points)`` with ``[(step, {name: value})]`` training series, ``metrics(metrics)`` with the final
        scalars, ``artifact(path)`` once per plot and record file, ``end(status, error)`` (finished, failed or
        interrupted). Import the tracker's library inside the factory. A method that raises is reported in one
        line naming the tracker, which is dropped for the rest of the run; the run itself goes on.
    """


@hookspec
def harness_register_commands(cli):
    """Add subcommands to the ``harness`` CLI.

    :param cli: :class:`harness.cli.Commands`; call ``cli.command(name, help, configure, handler)`` where
        ``configure(parser)`` adds arguments and ``handler(args) -> int`` runs the command.
    """


@hookspec
def harness_run_start(run):
    """Called when a run starts or resumes, after its config is written.

    :param run: the :class:`harness.store.Run` being written.
    """


@hookspec
def harness_sample_end(run, sample):
    """Called after each sample record is appended to ``samples.jsonl``.

    :param run: the :class:`harness.store.Run`.
    :param sample: the sample record (a JSON-serialisable dict).
    """


@hookspec
def harness_run_end(run, metrics):
    """Called when a run finishes, after ``metrics.json`` is written.

    :param run: the :class:`harness.store.Run`.
    :param metrics: the flat ``name -> value`` map that was written.
    """


@hookspec
def harness_train_step(step, model, batch, captures):
    """Called by every trainer built with ``ctx.trainer`` (all training in a run, worker processes included) at
    step 1 and every ``--probe-every`` steps; return a dict of metrics to log (into the run's series), or None.

    :param step: the step (1-based) whose gradients were just computed; called after the backward pass and
        before that step's optimizer update, so weights, captures and gradients belong to the same point.
    :param model: the ``nn.Module`` being trained (unwrapped from DDP).
    :param batch: the batch of this step.
    :param captures: ``{layer_name: {"inputs": Tensor, "grad_outputs": Tensor}}`` for layers a probe asked for,
        else an empty dict.
    """
