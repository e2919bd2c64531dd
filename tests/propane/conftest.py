import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A tiny random Llama with the SmolLM2 tokenizer, saved once per session as an hf folder."""
    from tiny import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_folder):
    """The tiny Llama through the real hf backend."""
    import torch

    from harness.backends import load

    torch.set_num_threads(2)
    lm = load(f"hf:{tiny_folder}")
    yield lm
    lm.close()
