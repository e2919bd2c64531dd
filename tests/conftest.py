import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))  # test plugins and cli_helpers

from ray_cluster import ray_env, ray_head  # noqa: E402, F401  (fixtures of the Ray tests, tox -e ray)


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


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer, saved as a HF folder once per session: fast, and
    real enough for the engines' mechanics and per-sample scores."""
    from tiny import save_tiny_llama

    # 0.02 init everywhere but the head: next-token logits with a spread of ~3 (the default gives near-ties)
    folder = tmp_path_factory.mktemp("tiny-llama")
    return save_tiny_llama(folder, init_range=0.02, tie=False, max_positions=512, head_std=0.4)
