import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))  # test plugins and cli_helpers


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct, converted once into $HARNESS_CACHE, in float32."""
    from harness.backends import load

    lm = load("hf:smollm2")
    yield lm
    lm.close()


@pytest.fixture
def one_thread():
    """Tiny matrices: one torch thread avoids OpenMP spinning against the other test processes on 2 cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli():
    """``cli(*args)`` runs the harness CLI in a subprocess."""
    from cli_helpers import run_harness

    return run_harness
