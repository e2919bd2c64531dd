"""A lean forward for Llama-family models: the hf engine's scoring, prefill and decode steps (harness/backends/hf.py).

transformers' eager Llama spends a third of a CPU scoring forward outside its matmuls (benchmarks/: RMSNorm in five
elementwise passes, rotary embeddings through cat and neg on q and k apart, seven separate projections per layer,
q, k and v each a narrow matmul). This forward computes the same function with fewer, wider operations: one q|k|v
matmul and one gate|up matmul per layer (weights concatenated once, rebuilt when the model's weights change),
torch's fused rms_norm, the rotary embedding applied to q and k together, and SDPA with grouped-query heads. It
reads the model's own modules for the embedding and the rotary tables (so any RoPE scaling the config asks for
holds), and declines models it does not describe exactly (biases, other activations, sliding windows, other
families): those keep transformers' forward.

On a CPU the copies are oneDNN's prepacked weights (what torch.compile's CPU freezing uses): at the 16 rows of a
decode step a packed float32 matmul runs 2.0x faster than F.linear, at 2048 rows 1.2x; bfloat16 gains 1.6x at 16
rows, little at 2048 (benchmarks/packed_linear.py, SmolLM2's shapes, 2 threads). The price is a second copy of the
weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SUPPORTED = ("llama", "mistral")
PACKED_FOR_ROWS = 16  # oneDNN's batch-size hint: the fastest packing at 16 rows and within 3% of the best at 2048


def supports(module) -> bool:
    """True when ``module`` (a *ForCausalLM from transformers) is a plain Llama-family decoder this forward computes
    exactly: SiLU-gated MLP, no biases, RMSNorm, RoPE, no sliding window, one tensor-parallel slice."""
    config = getattr(module, "config", None)
    layers = getattr(getattr(module, "base_model", None), "layers", None)
    return (
        getattr(config, "model_type", None) in SUPPORTED
        and layers is not None
        and getattr(config, "hidden_act", None) == "silu"
        and not getattr(config, "attention_bias", False)
        and not getattr(config, "mlp_bias", False)
        and getattr(config, "sliding_window", None) is None
        and getattr(config, "pretraining_tp", 1) == 1
        and hasattr(module.base_model, "rotary_emb")
        and all(hasattr(layer.self_attn, "q_proj") and hasattr(layer.mlp, "gate_proj") for layer in layers)
    )


class FusedForward:
    """Final hidden states (B, T, d) of a Llama-family model for left-padded rows, and its vocabulary projection."""

    def __init__(self, module):
        self.module = module
        self.key: tuple | None = None  # (data pointer, version) of every weight the fused copies were made from
        self.layers: list[dict] = []
        self.heads: dict = {}  # dtype -> the output embedding in it, prepared for _linear
        weight = module.get_output_embeddings().weight
        self.packs = (
            weight.device.type == "cpu"
            and torch.backends.mkldnn.is_available()
            and weight.dtype in (torch.float32, torch.bfloat16)
        )

    def _prepare(self, weight: torch.Tensor) -> torch.Tensor:
        """A detached weight for :func:`_linear`: packed for oneDNN on a CPU, as it is elsewhere."""
        weight = weight.detach()
        return torch.ops.mkldnn._reorder_linear_weight(weight, PACKED_FOR_ROWS) if self.packs else weight

    def _weights(self) -> list[dict]:
        """Per layer: q|k|v and gate|up concatenated, the rest as they are; rebuilt if any weight changed."""
        key = tuple((p.data_ptr(), p._version) for p in self.module.parameters())
        if key != self.key:
            self.layers, self.heads = [], {}
            for layer in self.module.base_model.layers:
                attn, mlp = layer.self_attn, layer.mlp
                self.layers.append(
                    {
                        "qkv": self._prepare(torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])),
                        "o": self._prepare(attn.o_proj.weight),
                        "gate_up": self._prepare(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),
                        "down": self._prepare(mlp.down_proj.weight),
                        "norm_in": layer.input_layernorm.weight.detach(),
                        "norm_post": layer.post_attention_layernorm.weight.detach(),
                    }
                )
            self.key = key
        return self.layers

    def new_cache(self):
        """An empty transformers DynamicCache for this model, for __call__ to fill."""
        from transformers import DynamicCache

        return DynamicCache(config=self.module.config)

    def logits(self, hidden: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The vocabulary projection of ``hidden`` (..., d) computed in ``dtype`` (the head converted once)."""
        self._weights()  # drops stale heads with the layers
        if dtype not in self.heads:
            self.heads[dtype] = self._prepare(self.module.get_output_embeddings().weight.to(dtype))
        return _linear(hidden.to(dtype), self.heads[dtype])

    def __call__(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        segments: torch.Tensor | None = None,
        cache=None,
        positions: torch.Tensor | None = None,
        documents: torch.Tensor | None = None,
        shared=None,
    ) -> torch.Tensor:
        """tokens: ids (B, T) or input embeddings (B, T, d), left-padded; attention_mask (B, P + T): the P positions
        already in ``cache``, then these. ``cache``: a transformers DynamicCache that receives every layer's keys
        (after RoPE) and values, as transformers' own forward would leave them (in float32 on a CPU).
        ``positions`` (B, T): by default each token's count of real tokens before it.

        Packed rows (no cache): ``documents`` (B, T) numbers the independent sequences laid back to back in a row
        (none sees another; each takes positions from 0), and ``segments`` (B, T) the parts of one: 0 its context,
        j > 0 its j-th continuation, which sees the context and itself only and takes its positions from the
        context's end, as if it were alone after it. Padding: any value.

        ``shared`` (instead of ``cache``): a DynamicCache of Q rows, all real tokens, that these B = Q * k rows
        continue, row b after cached row b // k (attention_mask (B, P + T) then covers its P positions too). Each
        layer's cached keys are read once for the k rows that share them (:func:`_attend_shared`), not copied per
        row, and nothing is added to the cache."""
        model, config = self.module.base_model, self.module.config
        batch, width = tokens.shape[:2]
        past = attention_mask.shape[1] - width
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        eps, d_ff = config.rms_norm_eps, config.intermediate_size
        x = tokens if tokens.is_floating_point() else model.embed_tokens(tokens)  # (B, T, d)
        valid = attention_mask.bool()
        causal = torch.ones(width, past + width, dtype=torch.bool, device=x.device).tril(diagonal=past)
        # (B, 1, T, P + T): causal, real keys only; a padding query sees itself (finite, and never read)
        mask = causal & valid[:, None, None, :]
        if segments is not None or documents is not None:
            segments = torch.zeros_like(documents) if segments is None else segments
            documents = torch.zeros_like(segments) if documents is None else documents
            context = (segments == 0) & valid
            same_document = documents[:, :, None] == documents[:, None, :]  # (B, T, T): query and key
            context_key = same_document & context[:, None, :]  # the key is context of the query's document
            mask = mask & (context_key | same_document & (segments[:, :, None] == segments[:, None, :]))[:, None]
            rank = _rank_in_segment(documents * (int(segments.max()) + 1) + segments, valid)
            positions = torch.where(context, rank, context_key.sum(-1) + rank) - 1
        elif positions is None:
            positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
        itself = torch.zeros_like(causal)
        itself[:, past:] = torch.eye(width, dtype=torch.bool, device=x.device)
        mask = mask | itself
        cos, sin = model.rotary_emb(x, positions)  # (B, T, head_dim) each
        cos, sin = cos[:, :, None], sin[:, :, None]  # broadcast over heads
        half = head_dim // 2
        sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)  # rotate_half's sign folded into sin
        scale = head_dim**-0.5
        # a CPU attends in float32: torch's CPU attention is no faster in bfloat16, and 7x slower at a decode step
        attention = torch.float32 if x.device.type == "cpu" else x.dtype
        for index, w in enumerate(self._weights()):
            h = F.rms_norm(x, (x.shape[-1],), w["norm_in"], eps)
            qkv = _linear(h, w["qkv"]).view(batch, width, heads + 2 * kv_heads, head_dim)
            qk = qkv[:, :, : heads + kv_heads]
            qk = qk * cos + torch.cat([qk[..., half:], qk[..., :half]], dim=-1) * sin  # RoPE on q and k at once
            q = qk[:, :, :heads].transpose(1, 2).to(attention)  # (B, H, T, hd)
            k = qk[:, :, heads:].transpose(1, 2).to(attention)  # (B, KV, T, hd)
            v = qkv[:, :, heads + kv_heads :].transpose(1, 2).to(attention)
            if shared is not None:
                prefix = shared.layers[index]
                attended = _attend_shared(q, k, v, prefix.keys, prefix.values, mask[..., past:], scale)
            else:
                if cache is not None:
                    k, v = cache.update(k.contiguous(), v.contiguous(), index)
                attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)
            attended = attended.to(x.dtype).transpose(1, 2).reshape(batch, width, heads * head_dim)
            x = x + _linear(attended, w["o"])
            gate, up = _linear(F.rms_norm(x, (x.shape[-1],), w["norm_post"], eps), w["gate_up"]).split(d_ff, -1)
            x = x + _linear(F.silu(gate) * up, w["down"])
        return F.rms_norm(x, (x.shape[-1],), model.norm.weight, getattr(model.norm, "variance_epsilon", eps))


def _attend_shared(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, prefix_k: torch.Tensor, prefix_v: torch.Tensor, own, scale
) -> torch.Tensor:
    """Attention (B, H, T, hd) of q (B, H, T, hd) over its group's shared prefix (Q, KV, P, hd; row b's group is
    b // k, k = B // Q) and its own keys k, v (B, KV, T, hd) where ``own`` (B, 1, T, T) allows. Each group's queries
    (k rows x the H // KV query heads of a key head) meet the prefix keys in one matmul, so the prefix is read once
    per group; one softmax spans the prefix and own scores (a shared maximum and denominator), as attention over
    the keys laid end to end would: the function of repeating the prefix per row, without the copies."""
    (batch, heads, width, dim), (groups, kv_heads, past) = q.shape, prefix_k.shape[:3]
    per, share = batch // groups, heads // kv_heads
    q = q.reshape(groups, per, kv_heads, share, width, dim).transpose(1, 2).contiguous()  # (Q, KV, k, g, T, hd)
    k, v = (t.reshape(groups, per, kv_heads, width, dim).transpose(1, 2) for t in (k, v))  # (Q, KV, k, T, hd)
    rows = (groups, kv_heads, per, share * width)  # a group's queries, by document
    to_prefix = (q.view(groups, kv_heads, -1, dim) @ prefix_k.transpose(-1, -2)).view(*rows, past)
    to_own = (q.view(*rows, dim) @ k.transpose(-1, -2)).view(groups, kv_heads, per, share, width, width)
    to_own = to_own.masked_fill_(~own.view(groups, 1, per, 1, width, width), float("-inf")).view(*rows, width)
    top = torch.maximum(to_prefix.amax(-1, keepdim=True), to_own.amax(-1, keepdim=True))
    to_prefix, to_own = (s.sub_(top).mul_(scale).exp_() for s in (to_prefix, to_own))
    total = to_prefix.sum(-1, keepdim=True) + to_own.sum(-1, keepdim=True)
    out = (to_prefix.view(groups, kv_heads, -1, past) @ prefix_v).view(*rows, dim).add_(to_own @ v).div_(total)
    return out.transpose(1, 2).reshape(batch, heads, width, dim)


def _rank_in_segment(segments: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, T): 1 for a segment's first token, 2 for its second, ... (segments are contiguous runs of one value)."""
    width = segments.shape[1]
    index = torch.arange(width, device=segments.device).expand_as(segments)
    starts = torch.ones_like(valid)
    starts[:, 1:] = (segments[:, 1:] != segments[:, :-1]) | ~valid[:, :-1]
    first = torch.where(starts, index, torch.zeros_like(index)).cummax(-1).values  # index of the segment's start
    return index - first + 1


def _linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T, through oneDNN for a packed weight."""
    if weight.is_mkldnn:
        return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")
    return F.linear(x, weight)
