"""harness: evaluate, train and probe language models; every task, backend and probe is a pluggy plugin."""

from harness.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
