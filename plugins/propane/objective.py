"""The PROPANE objective: how well a prompt explains a set of documents, scored in batches.

For a prompt p and documents d_1..d_n the model sees ``prefix + p + suffix + d_i``. Everything that does not
depend on p (the embeddings of prefix, suffix and documents, and log P(d_i | p*)) is computed once. Scoring
without gradients (proposals, held-out KL) runs each proposal's context once and continues every document from
its KV cache (hf modules), so the context is not recomputed n times; modules without a cache (scratch) get
proposals x documents flattened into full rows. Through the hf engine's fused forward the documents read their
context's cached keys once for all of them (shared-prefix attention, issue 33) instead of a copy of the cache each.
Chunks are sized by a token budget and a logits budget; only the document positions go through the LM head, and
their logits reach float32 a few positions at a time (whitebox.token_nll). Documents of different lengths are
right-padded: padding after a document cannot change the causal logits before it, so a loss mask is all that is
needed.

Choices not fixed by the paper:
- The search loss is the token-mean NLL over all training-document tokens (the reference code's mean over tokens),
  plus ``gamma`` times the summed NLL of the prompt tokens given what precedes them (fluency).
- KL per document is summed over its tokens: log P(d|p*) - log P(d|p), as in the paper's held-out estimate.
- Speed (issue 18): with a ``ranker`` (the same model in bfloat16, about 2x the float32 matmul rate on a CPU with
  avx512_bf16) ``best_of`` ranks every proposal cheaply and scores only the ranker's ``rescore`` best in float32;
  the pick is the float32 argmin among those, and every loss a search records is float32. The search is identical
  to the all-float32 one whenever the float32 best proposal is among the ranker's top ``rescore`` (on SmolLM2 the
  bfloat16 and float32 top-5 orders agreed; bf16 losses were within 0.023 nats of float32), which is not a
  guarantee: ``rank_dtype=float32`` gives the exact search.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from harness.plugins.propane.whitebox import Template, WhiteBox

LOGITS_BUDGET_BYTES = 256 * 2**20  # logits kept per chunk, counted as float32


class Objective:
    """Scores prompts (token ids or soft embeddings) against a fixed set of documents."""

    def __init__(
        self, box: WhiteBox, template: Template, docs: torch.Tensor, mask: torch.Tensor, max_batch_tokens: int = 8192
    ):
        self.box = box
        self.docs = docs.to(box.device)  # (n, Ld) long
        self.mask = mask.to(box.device)  # (n, Ld) bool
        self.max_batch_tokens = max_batch_tokens
        self.prefix = torch.tensor(template.prefix, dtype=torch.long)
        self.suffix = torch.tensor(template.suffix, dtype=torch.long)
        with torch.no_grad():
            self.prefix_embeds = box.embed(self.prefix)  # (Lpre, d)
            self.suffix_embeds = box.embed(self.suffix)  # (Lsuf, d)
            self.doc_embeds = box.embed(self.docs)  # (n, Ld, d)
        self.tokens = self.mask.sum().item()
        self.ranker: Objective | None = None  # a cheaper copy (bfloat16 model) that ranks proposals for best_of
        self.rescore = 4  # proposals best_of scores exactly when a ranker is set

    @property
    def n_docs(self) -> int:
        return self.docs.shape[0]

    def prompt_embeds(self, prompts: torch.Tensor) -> torch.Tensor:
        """(P, L) ids -> (P, L, d) embeddings; embeddings pass through unchanged (soft prompts)."""
        return prompts if prompts.is_floating_point() else self.box.embed(prompts)

    def _rows(self, prompt_embeds: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Input embeddings of flattened (prompt, doc) rows: (R, Lpre + L + Lsuf + Ld, d)."""
        prompt_index, doc_index = rows // self.n_docs, rows % self.n_docs
        count = len(rows)
        return torch.cat(
            [
                self.prefix_embeds.expand(count, -1, -1),
                prompt_embeds[prompt_index],
                self.suffix_embeds.expand(count, -1, -1),
                self.doc_embeds[doc_index],
            ],
            dim=1,
        )

    def _chunk_rows(self, prompt_len: int) -> int:
        doc_len = self.docs.shape[1]
        length = len(self.prefix) + prompt_len + len(self.suffix) + doc_len
        by_tokens = self.max_batch_tokens // length
        by_logits = LOGITS_BUDGET_BYTES // (4 * doc_len * self.box.vocab_size)
        return max(1, min(by_tokens, by_logits))

    def _row_nll(self, prompt_embeds: torch.Tensor, rows: torch.Tensor, argmax: bool = False):
        """Summed NLL of each row's document (R,), and optionally the argmax next tokens (R, Ld)."""
        doc_len = self.docs.shape[1]
        logits = self.box.tail_logits(self._rows(prompt_embeds, rows), doc_len + 1)[:, :-1]  # (R, Ld, V)
        targets = self.docs[rows % self.n_docs]
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        nll = (nll.view(len(rows), doc_len) * self.mask[rows % self.n_docs]).sum(dim=1)
        return (nll, logits.argmax(dim=-1)) if argmax else nll

    @torch.no_grad()
    def doc_nll(self, prompts: torch.Tensor) -> torch.Tensor:
        """Summed NLL of every document under every prompt: (P, n). ``prompts``: (P, L) ids or (P, L, d)."""
        embeds = self.prompt_embeds(prompts)
        if self.box.continues_from_cache:
            return self._doc_nll_shared_context(embeds)
        total = embeds.shape[0] * self.n_docs
        chunk = self._chunk_rows(embeds.shape[1])
        parts = [
            self._row_nll(embeds, torch.arange(s, min(s + chunk, total), device=self.box.device))
            for s in range(0, total, chunk)
        ]
        return torch.cat(parts).view(embeds.shape[0], self.n_docs).cpu()

    def _contexts(self, prompt_embeds: torch.Tensor) -> torch.Tensor:
        """prefix + prompt + suffix embeddings: (P, Lc, d)."""
        count = prompt_embeds.shape[0]
        return torch.cat(
            [self.prefix_embeds.expand(count, -1, -1), prompt_embeds, self.suffix_embeds.expand(count, -1, -1)], dim=1
        )

    def _doc_blocks(self) -> list[slice]:
        """Document ranges whose logits fit the logits budget for one context."""
        n, doc_len = self.docs.shape
        per_block = min(n, max(1, LOGITS_BUDGET_BYTES // (4 * doc_len * self.box.vocab_size)))
        return [slice(d, d + per_block) for d in range(0, n, per_block)]

    def _shared_nll(self, contexts: torch.Tensor, docs: slice) -> torch.Tensor:
        """Summed NLL (P, k) of the documents ``docs`` after each context (P, Lc, d); each context runs once."""
        nll = self.box.context_then_documents(contexts, self.doc_embeds[docs], self.docs[docs])  # (P*k, Ld)
        return (nll * self.mask[docs].repeat(len(contexts), 1)).sum(dim=1).view(len(contexts), -1)

    def _doc_nll_shared_context(self, embeds: torch.Tensor) -> torch.Tensor:
        """doc_nll with one context prefill per proposal, reused by its documents through the KV cache."""
        n, doc_len = self.docs.shape
        blocks = self._doc_blocks()
        context_len = len(self.prefix) + embeds.shape[1] + len(self.suffix)
        by_logits = LOGITS_BUDGET_BYTES // (4 * n * doc_len * self.box.vocab_size)  # whole proposals (0: split docs)
        per_chunk = max(1, min(by_logits, self.max_batch_tokens // (context_len + n * doc_len)))
        nll = torch.empty(embeds.shape[0], n)
        for p in range(0, embeds.shape[0], per_chunk):
            contexts = self._contexts(embeds[p : p + per_chunk])
            for docs in blocks:
                nll[p : p + len(contexts), docs] = self._shared_nll(contexts, docs).cpu()
        return nll

    def _document_loss_blocks(self, prompt_embeds: torch.Tensor):
        """Token-mean document NLL of one prompt (1, L, d) with a gradient, one term per block of documents."""
        if self.box.continues_from_cache:
            for docs in self._doc_blocks():
                yield self._shared_nll(self._contexts(prompt_embeds), docs).sum() / self.tokens
            return
        chunk = self._chunk_rows(prompt_embeds.shape[1])
        for start in range(0, self.n_docs, chunk):
            rows = torch.arange(start, min(start + chunk, self.n_docs), device=self.box.device)
            yield self._row_nll(prompt_embeds, rows).sum() / self.tokens

    @torch.no_grad()
    def doc_nll_and_argmax(self, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For one prompt (L,): summed NLL per document (n,) and the argmax next token at each position (n, Ld)."""
        embeds = self.prompt_embeds(prompt[None])
        chunk = self._chunk_rows(embeds.shape[1])
        pieces = [
            self._row_nll(embeds, torch.arange(s, min(s + chunk, self.n_docs), device=self.box.device), argmax=True)
            for s in range(0, self.n_docs, chunk)
        ]
        return torch.cat([p[0] for p in pieces]).cpu(), torch.cat([p[1] for p in pieces]).cpu()

    def fluency_nll(self, prompts: torch.Tensor) -> torch.Tensor:
        """Summed NLL of each prompt's tokens given the prefix and the tokens before them: (P,).

        The first prompt token is scored only when a prefix (BOS or a chat template) precedes it.
        """
        embeds = self.prompt_embeds(prompts)
        count, length = embeds.shape[:2]
        inputs = torch.cat([self.prefix_embeds.expand(count, -1, -1), embeds], dim=1)
        scored = length if len(self.prefix) else length - 1
        if scored == 0 or prompts.is_floating_point():
            return torch.zeros(count)
        logits = self.box.tail_logits(inputs, scored + 1)[:, :-1]
        targets = prompts[:, length - scored :].to(self.box.device)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        return nll.view(count, scored).sum(dim=1).cpu()

    @torch.no_grad()
    def search_loss(self, prompts: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss each proposal is ranked by (P,), and the per-document NLLs behind it (P, n)."""
        nll = self.doc_nll(prompts)
        loss = nll.sum(dim=1) / self.tokens
        if gamma:
            loss = loss + gamma * self.fluency_nll(prompts)
        return loss, nll

    @torch.no_grad()
    def best_of(self, prompts: torch.Tensor, gamma: float) -> tuple[int, float, torch.Tensor]:
        """The proposal with the lowest search loss: its index, loss and per-document NLLs (n,), all exact.

        With a ranker, only the ranker's ``rescore`` best proposals are scored exactly (in index order, so a tie
        resolves as a plain argmin over every proposal would)."""
        candidates = torch.arange(len(prompts))
        if self.ranker is not None and len(prompts) > self.rescore:
            rough, _ = self.ranker.search_loss(prompts, gamma)
            candidates = rough.argsort()[: self.rescore].sort().values
        losses, nlls = self.search_loss(prompts[candidates], gamma)
        best = int(losses.argmin())
        return int(candidates[best]), float(losses[best]), nlls[best]

    def token_gradient(self, prompt: torch.Tensor, gamma: float) -> torch.Tensor:
        """Gradient of the search loss w.r.t. the one-hot prompt tokens (L, V), summed over document chunks.

        d loss / d onehot = scale * (d loss / d embeddings) @ E^T, as differentiating through scale * onehot @ E.
        """
        leaf = self.box.embed(prompt).detach().clone().requires_grad_(True)  # (L, d)
        embeds = leaf[None]
        grad = torch.zeros_like(leaf)
        for loss in self._document_loss_blocks(embeds):
            grad += torch.autograd.grad(loss, leaf)[0]
        if gamma:
            fluency = gamma * self.fluency_nll_with_grad(embeds, prompt[None])
            if fluency.requires_grad:
                grad += torch.autograd.grad(fluency, leaf)[0]
        return (grad @ self.box.embedding_matrix.detach().T * self.box.embed_scale).float().cpu()

    def fluency_nll_with_grad(self, embeds: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """fluency_nll for one prompt whose embeddings carry a gradient (the token ids give the targets)."""
        length = embeds.shape[1]
        scored = length if len(self.prefix) else length - 1
        if scored == 0:
            return torch.zeros(())
        inputs = torch.cat([self.prefix_embeds[None], embeds], dim=1)
        logits = self.box.tail_logits(inputs, scored + 1)[:, :-1]
        targets = prompts[:, length - scored :].to(self.box.device)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")

    def soft_backward(self, leaf: torch.Tensor) -> float:
        """Token-mean document NLL of a soft prompt ``leaf`` (L, d); accumulates its gradient chunk by chunk."""
        total = 0.0
        for loss in self._document_loss_blocks(leaf[None]):
            loss.backward()
            total += loss.item()
        return total
