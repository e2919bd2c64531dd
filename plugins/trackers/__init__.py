"""Built-in experiment trackers, selected with ``--log NAME``: ``mlflow`` (an embedded SQLite store beside the runs
unless ``MLFLOW_TRACKING_URI`` says otherwise), ``wandb`` (offline unless ``WANDB_MODE`` says otherwise) and
``tensorboard`` (event files in the run's folder). Each library comes with an extra of harness-lm and is imported
only when its tracker is used."""

from __future__ import annotations

from harness.hookspecs import hookimpl


def mlflow_tracker():
    from harness.plugins.trackers.mlflow_tracker import MLflowTracker

    return MLflowTracker()


def wandb_tracker():
    from harness.plugins.trackers.wandb_tracker import WandbTracker

    return WandbTracker()


def tensorboard_tracker():
    from harness.plugins.trackers.tensorboard_tracker import TensorBoardTracker

    return TensorBoardTracker()


@hookimpl
def harness_register_trackers(register):
    register(
        "mlflow",
        mlflow_tracker,
        description="MLflow: $MLFLOW_TRACKING_URI, else sqlite:///<out>/mlflow.db (artifacts in <out>/mlartifacts)",
    )
    register("wandb", wandb_tracker, description="Weights & Biases: offline into <run>/wandb unless $WANDB_MODE is set")
    register("tensorboard", tensorboard_tracker, description="TensorBoard: event files in <run>/tensorboard")
