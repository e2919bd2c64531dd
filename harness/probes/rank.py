"""The ``rank`` probe (incremental learning dynamics, arXiv 2306.07042).

For every attention module, and for each head h, it follows the change since initialisation of the head's two
*effective* (d_model, d_model) maps, in the row-vector convention (logits = x M_qk x'^T, output = sum_s a_s x_s M_vo):

- ``qk``: the bilinear form of the attention logits. For plain attention (``q_proj``, ``k_proj``, ``v_proj``,
  ``o_proj`` as ``nn.Linear`` in PyTorch's (out, in) layout, and ``n_head``) it is W_Q^h W_K^h^T / sqrt(d_head), the
  1/sqrt(d_head) being the scale the logits use. Identity attention (arXiv 2310.09753; ``identity_logit`` a_h)
  adds a_h I.
- ``vo``: W_V^h W_O^h; identity attention (``identity_value`` b_h) adds b_h I.
- Any other attention exposes ``effective_maps() -> {"qk": (n_head, C, C), "vo": (n_head, C, C)}`` and is read
  through it (the incremental_rank plugin's diagonal toy does).

Biases and rotary positions are left out: the maps are the position-free, token-to-token part. The probe logs the
top singular values of D = Delta(map) and its stable rank ||D||_F^2 / ||D||_2^2 (0 when D = 0).

Keys: ``rank/L{layer}.H{head}/{qk|vo}/stable_rank`` and ``.../sv{i}`` (largest first). ``L{i}`` is the index
of ``blocks.{i}.attn``; another attention's key uses its module name.
"""

from __future__ import annotations

import math
import re

import torch

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "n_head")


def attention_modules(model) -> dict[str, torch.nn.Module]:
    """Attention-like modules by short label (``L0`` for ``blocks.0.attn``)."""
    found = {}
    for name, module in model.named_modules():
        if callable(getattr(module, "effective_maps", None)) or all(hasattr(module, a) for a in PROJECTIONS):
            match = re.fullmatch(r"blocks\.(\d+)\.attn", name)
            found[f"L{match.group(1)}" if match else (name or "attn")] = module
    return found


@torch.no_grad()
def head_products(attn) -> dict[str, torch.Tensor]:
    """Per-head W_Q W_K^T / sqrt(d_head) and W_V W_O from the projections, each (n_head, C, C)."""
    nh = attn.n_head
    wq, wk, wv, wo = (getattr(attn, p).weight.float() for p in ("q_proj", "k_proj", "v_proj", "o_proj"))
    C = wq.shape[1]
    hs = wq.shape[0] // nh
    q = wq.view(nh, hs, C).transpose(1, 2)  # (nh, C, hs): W_Q^h
    k = wk.view(nh, hs, C)  # (nh, hs, C): W_K^h^T
    v = wv.view(nh, hs, C).transpose(1, 2)  # (nh, C, hs): W_V^h
    o = wo.view(wo.shape[0], nh, hs).permute(1, 2, 0)  # (nh, hs, C_out): W_O^h
    return {"qk": q @ k / math.sqrt(hs), "vo": v @ o}


@torch.no_grad()
def effective_maps(attn) -> dict[str, torch.Tensor]:
    """The maps the attention really applies, each (n_head, C, C): see the module docstring."""
    if callable(getattr(attn, "effective_maps", None)):
        return {kind: m.detach().float() for kind, m in attn.effective_maps().items()}
    maps = head_products(attn)
    C = maps["qk"].shape[-1]
    eye = torch.eye(C, device=maps["qk"].device)
    for kind, scalar in (("qk", "identity_logit"), ("vo", "identity_value")):
        if hasattr(attn, scalar):  # identity attention: a_h I in the logits, b_h I in the values
            maps[kind] = maps[kind] + getattr(attn, scalar).float().view(-1, 1, 1) * eye  # (nh, C, C)
    return maps


def stable_rank(singular_values: torch.Tensor) -> float:
    top = float(singular_values[0]) if singular_values.numel() else 0.0
    if top == 0.0:
        return 0.0
    return float((singular_values**2).sum() / top**2)


class RankProbe:
    """Spectrum and stable rank of per-head changes of the effective QK and VO maps (see module docstring)."""

    name = "rank"

    def __init__(self, top: int = 8):
        self.top = top
        self.initial: dict[str, dict[str, torch.Tensor]] | None = None

    def layers(self, model) -> list[str]:
        return []  # weights only: no captured activations needed

    def start(self, model, trainer=None) -> None:
        """Remember the initial per-head maps (called by the Trainer before step 1)."""
        self.initial = {label: effective_maps(attn) for label, attn in attention_modules(model).items()}

    def __call__(self, step, model, batch, captures) -> dict[str, float]:
        if self.initial is None:  # used outside the Trainer: the first call defines the origin
            self.start(model)
        values = {}
        for label, attn in attention_modules(model).items():
            for kind, current in effective_maps(attn).items():
                delta = current - self.initial[label][kind].to(current.device)  # (nh, C, C)
                spectra = torch.linalg.svdvals(delta)  # (nh, C), descending
                for head, spectrum in enumerate(spectra):
                    key = f"rank/{label}.H{head}/{kind}"
                    values[f"{key}/stable_rank"] = stable_rank(spectrum)
                    for i, s in enumerate(spectrum[: self.top].tolist()):
                        values[f"{key}/sv{i}"] = s
        return values
