"""Tiny randomly initialised Llama and Gemma-3 models with the real SmolLM2 tokenizer, saved as folders for
``--model hf:DIR``.

PROPANE's tests draw the weights with a large initializer range so that the next-token distribution depends strongly
on the prompt (with the usual 0.02 a random model is nearly uniform and every prompt looks alike); the engine tests
keep 0.02 and widen only the output head (``head_std``).
"""

from __future__ import annotations

from pathlib import Path


def smollm2_tokenizer():
    """SmolLM2's tokenizer from the converted model in $HARNESS_CACHE (``harness pull hf:smollm2``)."""
    from transformers import AutoTokenizer

    from harness.backends.weights import pull

    return AutoTokenizer.from_pretrained(pull("smollm2"))


def save_tiny_llama(
    folder: Path,
    seed: int = 0,
    init_range: float = 0.15,
    tie: bool = True,
    max_positions: int = 256,
    head_std: float | None = None,
) -> Path:
    """Write config, safetensors weights and the SmolLM2 tokenizer (with its chat template) to ``folder``.

    ``head_std``: redraw the (untied) output head with this spread, for next-token logits spread by a few nats."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        initializer_range=init_range,
        tie_word_embeddings=tie,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if head_std is not None:
        with torch.no_grad():
            model.get_output_embeddings().weight.normal_(0, head_std)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_gemma3(folder: Path, seed: int = 0) -> Path:
    """A tiny random Gemma-3 (it scales its input embeddings by sqrt(hidden size)) with the SmolLM2 tokenizer."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = smollm2_tokenizer()
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=256,
        sliding_window=8,
        initializer_range=0.15,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
