"""Fixtures for the backend tests: a tiny randomly initialised Llama with SmolLM2's tokenizer (fast, for the
mechanics) beside the real SmolLM2 (tests/conftest.py, for a few parity checks)."""

import pytest


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A 2-layer, 64-wide Llama saved as a HF folder (safetensors + SmolLM2 tokenizer), built once per session."""
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


@pytest.fixture(scope="session")
def tiny(tiny_folder):
    """The tiny model through the hf engine, float32."""
    from harness.backends.hf import HFLM

    return HFLM(tiny_folder)
