"""The ``rank`` probe (incremental learning dynamics, arXiv 2306.07042).

For every attention module exposing ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (``nn.Linear``, PyTorch's
(out, in) layout) and ``n_head``, and for each head h, it follows the change since initialisation D =
Delta(W_Q^h W_K^h^T) and D = Delta(W_V^h W_O^h), both (d_model, d_model) maps in the row-vector convention (q
= x W_Q). It logs the top singular values of D and its stable rank ||D||_F^2 / ||D||_2^2 (0 when D = 0).

Keys: ``rank/L{layer}.H{head}/{qk|vo}/stable_rank`` and ``.../sv{i}`` (largest first). ``L{i}`` is the index
of ``blocks.{i}.attn``; another attention's key uses its module name.
"""

from __future__ import annotations

import re

import torch


def attention_modules(model) -> dict[str, torch.nn.Module]:
    """Attention-like modules by short label (``L0`` for ``blocks.0.attn``)."""
    found = {}
    for name, module in model.named_modules():
        if all(hasattr(module, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj", "n_head")):
            match = re.fullmatch(r"blocks\.(\d+)\.attn", name)
            found[f"L{match.group(1)}" if match else name] = module
    return found


@torch.no_grad()
def head_products(attn) -> dict[str, torch.Tensor]:
    """Per-head W_Q W_K^T and W_V W_O, each (n_head, C, C)."""
    nh = attn.n_head
    wq, wk, wv, wo = (getattr(attn, p).weight.float() for p in ("q_proj", "k_proj", "v_proj", "o_proj"))
    C = wq.shape[1]
    hs = wq.shape[0] // nh
    q = wq.view(nh, hs, C).transpose(1, 2)  # (nh, C, hs): W_Q^h
    k = wk.view(nh, hs, C)  # (nh, hs, C): W_K^h^T
    v = wv.view(nh, hs, C).transpose(1, 2)  # (nh, C, hs): W_V^h
    o = wo.view(wo.shape[0], nh, hs).permute(1, 2, 0)  # (nh, hs, C_out): W_O^h
    return {"qk": q @ k, "vo": v @ o}


def stable_rank(singular_values: torch.Tensor) -> float:
    top = float(singular_values[0]) if singular_values.numel() else 0.0
    if top == 0.0:
        return 0.0
    return float((singular_values**2).sum() / top**2)


class RankProbe:
    """Spectrum and stable rank of per-head changes of W_Q W_K^T and W_V W_O (see module docstring)."""

    name = "rank"

    def __init__(self, top: int = 8):
        self.top = top
        self.initial: dict[str, dict[str, torch.Tensor]] | None = None

    def layers(self, model) -> list[str]:
        return []  # weights only: no captured activations needed

    def start(self, model, trainer=None) -> None:
        """Remember the initial per-head products (called by the Trainer before step 1)."""
        self.initial = {label: head_products(attn) for label, attn in attention_modules(model).items()}

    def __call__(self, step, model, batch, captures) -> dict[str, float]:
        if self.initial is None:  # used outside the Trainer: the first call defines the origin
            self.start(model)
        values = {}
        for label, attn in attention_modules(model).items():
            for kind, current in head_products(attn).items():
                delta = current - self.initial[label][kind].to(current.device)  # (nh, C, C)
                spectra = torch.linalg.svdvals(delta)  # (nh, C), descending
                for head, spectrum in enumerate(spectra):
                    key = f"rank/{label}.H{head}/{kind}"
                    values[f"{key}/stable_rank"] = stable_rank(spectrum)
                    for i, s in enumerate(spectrum[: self.top].tolist()):
                        values[f"{key}/sv{i}"] = s
        return values
