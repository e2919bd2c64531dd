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


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer, saved as a HF folder once per session: fast, and
    real enough for the engines' mechanics and per-sample scores."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from harness.backends.weights import pull

    tokenizer = AutoTokenizer.from_pretrained(pull("smollm2"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # next-token logits with a spread of ~3 (the default init gives near-ties everywhere)
        model.get_output_embeddings().weight.normal_(0, 0.4)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
