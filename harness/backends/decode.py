"""Decode steps of the hf engine for the models fused.py describes: one new token per row, in fewer operations.

FusedForward.__call__ serves every shape (scoring, prefill, decoding), and at a decode step of SmolLM2 (16 rows, one
token each) its operations are small enough that their count, not their arithmetic, is what costs: per step it builds
a causal mask, per layer it runs transformers' cache bookkeeping in Python, copies k and v to contiguous tensors
before the cache copies them again, and SDPA converts the boolean mask to an additive one. :func:`decode_step`
computes the same function at T = 1 without them: the keys and values live in a :class:`StepCache` allocated once
per batch with room for every step (a step writes its position in place), the additive attention bias is made once
per batch, the hidden state stays (B, d), and in float32 the residual add runs inside oneDNN's matmul as a post-op
(exact there; in bfloat16 the fused add would round once where the separate one rounds twice, so it stays apart and
the tokens stay those of the general forward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.backends.fused import FusedForward, _linear
from harness.backends.kv_cache import make_room


class StepCache:
    """Every layer's keys and values of a decode batch in buffers with room for ``room`` more positions, the
    attention bias of each row (0 at its real positions, -inf at its left padding and the positions not yet
    written) and each row's next position; rows leave with :meth:`select`."""

    def __init__(self, past, mask: torch.Tensor, room: int, repeats: int = 1):
        """``past``: the prefill's transformers DynamicCache (plain layers), ``mask`` (B, P) its attention mask;
        each row repeated ``repeats`` times (the n samples of a prompt), as batch_repeat_interleave would."""
        rows, used = mask.shape
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        for layer in past.layers:
            if layer.keys.shape[-2] != used:
                raise ValueError(f"the cache holds {layer.keys.shape[-2]} positions, the mask {used}")
            for store, tensor in ((self.keys, layer.keys), (self.values, layer.values)):
                buffer = tensor.new_empty((rows * repeats, *tensor.shape[1:-2], used + room, tensor.shape[-1]))
                buffer.unflatten(0, (rows, repeats))[..., :used, :] = tensor[:, None]
                store.append(buffer)
        mask = mask.repeat_interleave(repeats, 0)
        self.bias = torch.zeros((rows * repeats, 1, 1, used + room), dtype=self.keys[0].dtype, device=mask.device)
        self.bias[:, 0, 0, :used].masked_fill_(~mask.bool(), float("-inf"))
        self.bias[:, 0, 0, used:] = float("-inf")
        self.positions = mask.sum(-1, keepdim=True)  # (B, 1): each row's count of real tokens so far
        self.used = used

    def select(self, index: torch.Tensor) -> None:
        """Keep only the rows in ``index`` (in its order)."""
        self.keys = [buffer[index] for buffer in self.keys]
        self.values = [buffer[index] for buffer in self.values]
        self.bias, self.positions = self.bias[index], self.positions[index]


def stepper(forward: FusedForward | None, hidden_states, past, mask: torch.Tensor, repeats: int, room: int):
    """The decode step of a prefilled batch (``past``, ``mask`` (B, P)), each row repeated ``repeats`` times, with
    room for ``room`` steps: step(tokens (R,), keep) -> the last hidden state (R, d) after ``tokens``, ``keep`` (an
    index tensor, or None) the rows that stay when some left. Models fused.py describes step through
    :func:`decode_step`; the others through ``hidden_states`` (the hf engine's) over a roomy DynamicCache."""
    if forward is not None:
        cache = StepCache(past, mask, room, repeats)

        def fused_step(tokens: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
            if keep is not None:
                cache.select(keep)
            return decode_step(forward, tokens, cache)

        return fused_step
    past.batch_repeat_interleave(repeats)
    make_room(past, room)
    mask = mask.repeat_interleave(repeats, 0)
    state = [past, mask, mask.sum(-1, keepdim=True)]  # the cache, its mask, each row's next position

    def step(tokens: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        past, mask, positions = state
        if keep is not None:
            past.batch_select_indices(keep)
            mask, positions = mask[keep], positions[keep]
        mask = torch.cat([mask, mask.new_ones((len(tokens), 1))], dim=1)
        hidden, past = hidden_states(tokens[:, None], mask, past=past, positions=positions)
        state[:] = past, mask, positions + 1
        return hidden[:, -1]

    return step


def decode_step(forward: FusedForward, tokens: torch.Tensor, cache: StepCache) -> torch.Tensor:
    """The final hidden state (B, d) after one token per row (``tokens`` (B,)), each row continuing its cache, which
    receives this step's keys and values: FusedForward.__call__ at T = 1 with a cache, in fewer operations."""
    model, config = forward.module.base_model, forward.module.config
    rows, used = tokens.shape[0], cache.used
    if used >= cache.bias.shape[-1]:
        raise ValueError(f"the cache has no room for step {used}: allocated {cache.bias.shape[-1]} positions")
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    eps, d_ff, half = config.rms_norm_eps, config.intermediate_size, head_dim // 2
    x = model.embed_tokens(tokens)  # (B, d)
    cos, sin = model.rotary_emb(x, cache.positions)  # (B, 1, head_dim): broadcast over heads
    sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)  # rotate_half's sign folded into sin
    cache.bias[:, 0, 0, used] = 0.0
    bias = cache.bias[..., : used + 1]
    attention = cache.keys[0].dtype
    exact_add = x.dtype == torch.float32 and forward.packs  # oneDNN's sum post-op equals x + linear in float32
    for index, w in enumerate(forward._weights()):
        qkv = _linear(F.rms_norm(x, (x.shape[-1],), w["norm_in"], eps), w["qkv"]).view(rows, -1, head_dim)
        qk = qkv[:, : heads + kv_heads]
        qk = qk * cos + torch.cat([qk[..., half:], qk[..., :half]], dim=-1) * sin  # RoPE on q and k at once
        keys, values = cache.keys[index], cache.values[index]
        keys[:, :, used] = qk[:, heads:]
        values[:, :, used] = qkv[:, heads + kv_heads :]
        q = qk[:, :heads, None].to(attention)  # (B, H, 1, hd)
        attended = F.scaled_dot_product_attention(
            q, keys[:, :, : used + 1], values[:, :, : used + 1], attn_mask=bias, scale=head_dim**-0.5, enable_gqa=True
        )
        x = _add_linear(x, attended.to(x.dtype).reshape(rows, heads * head_dim), w["o"], exact_add)
        gate, up = _linear(F.rms_norm(x, (x.shape[-1],), w["norm_post"], eps), w["gate_up"]).split(d_ff, -1)
        x = _add_linear(x, F.silu(gate) * up, w["down"], exact_add)
    cache.used, cache.positions = used + 1, cache.positions + 1
    return F.rms_norm(x, (x.shape[-1],), model.norm.weight, getattr(model.norm, "variance_epsilon", eps))


def _add_linear(x: torch.Tensor, h: torch.Tensor, weight: torch.Tensor, fused: bool) -> torch.Tensor:
    """x + h @ weight.T; with ``fused``, the add as the packed matmul's post-op (one operation, no second pass)."""
    if fused:
        return torch.ops.mkldnn._linear_pointwise.binary(h, x, weight, None, "add")
    return x + _linear(h, weight)
