"""What PROPANE needs from a white-box model: token ids, embeddings, logits from embeddings, and sampling.

Works on any backend that exposes ``module`` (a torch causal LM) and ``tokenizer``: the hf engine (a Hugging Face
tokenizer) and the scratch engine (the harness WordTokenizer: one id per word, specials first). The few places
where the two tokenizers differ are small branches on ``self.words``. Imported only when an optimizer or the
transfer task runs (it imports torch).

Choices for word-level vocabularies: the prompt follows ``<bos>`` when the model was trained with it (the scratch
engine's ``add_bos``); every special is excluded from prompts; the paper's "!" initialisation falls back to the
first allowed word when "!" is not in the vocabulary.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.backends.fused import FusedForward
from harness.errors import UsageError
from harness.models.tokenizer import WordTokenizer
from harness.sampling import sample

_ALLOWED: dict[tuple[int, int], torch.Tensor] = {}  # (id(tokenizer), vocab size) -> mask; the scan takes ~1 s

# A marker that no chat template rewrites; the template is split around it to find the user turn.
USER_MARK = "\u2063PROPANE_USER_TURN\u2063"
# positions whose float32 log-softmax token_nll takes at once: 16 x a 49152-token vocabulary stays in the CPU's
# cache, where a ranking chunk's whole float32 logits (80 x 16 x 49152) went to memory and back (6x slower)
NLL_ROWS = 16


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Float32 NLL (...) of ``targets`` (...) under ``logits`` (..., V) of any dtype, NLL_ROWS positions at a time
    (each row's value is the one F.cross_entropy gives on the whole float32 tensor)."""
    flat, ids = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    parts = [
        F.cross_entropy(flat[s : s + NLL_ROWS].float(), ids[s : s + NLL_ROWS], reduction="none")
        for s in range(0, len(ids), NLL_ROWS)
    ]
    return torch.cat(parts).view(targets.shape)


@dataclass
class Template:
    """Token ids that wrap the optimised prompt: ``prefix + prompt + suffix + document``."""

    prefix: list[int]
    suffix: list[int]


def embedding_scale(module) -> float:
    """The factor some models (Gemma: sqrt(hidden size)) apply to embedding rows before the first layer."""
    layer = module.get_input_embeddings() if hasattr(module, "get_input_embeddings") else None
    scale = getattr(layer, "embed_scale", None)
    return 1.0 if scale is None else float(scale)


class WhiteBox:
    """A thin view of an LM (or its response-cache proxy) with the white-box surface PROPANE uses."""

    def __init__(self, lm, chat: bool = False):
        self.lm = lm
        self.module = getattr(lm, "module", None)
        self.tokenizer = getattr(lm, "tokenizer", None)
        if self.module is None or self.tokenizer is None:
            raise UsageError(
                "PROPANE needs a white-box model with weights in process: use --model hf:... or "
                "scratch:..., not vllm/openai"
            )
        self.module.eval()
        matrix = getattr(lm, "embedding_matrix", None)
        self.embedding_matrix = matrix if matrix is not None else self.module.get_input_embeddings().weight
        self.embed_scale = embedding_scale(self.module)
        self.chat = chat
        self.words = isinstance(self.tokenizer, WordTokenizer)
        if self.words and chat:
            raise UsageError("chat=true needs a chat template; a scratch model has none, drop chat=true")
        parameters = inspect.signature(self.module.forward).parameters
        self._keeps_logits = "logits_to_keep" in parameters
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"  # renamed in transformers 5.2x
        self._fused = getattr(lm, "fused_forward", None)  # the hf engine's leaner forward, for scoring

    # text <-> ids ------------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.embedding_matrix.shape[0]

    @property
    def device(self) -> torch.device:
        return self.embedding_matrix.device

    @property
    def max_length(self) -> int | None:
        """The longest sequence the model takes (hf: ``max_length``, scratch: ``max_len``), None if unknown."""
        return getattr(self.lm, "max_length", None) or getattr(self.lm, "max_len", None)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without special tokens (BOS and chat markers come from the template)."""
        if self.words:
            return self.tokenizer.encode(text)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids))

    def _bos_eos(self) -> tuple[int | None, int | None]:
        if self.words:
            return self.tokenizer.bos_id, self.tokenizer.eos_id
        return self.tokenizer.bos_token_id, self.tokenizer.eos_token_id

    def special_ids(self) -> list[int]:
        if self.words:
            return [self.tokenizer.index[name] for name in self.tokenizer.specials]
        return list(self.tokenizer.all_special_ids)

    def eos_ids(self) -> list[int]:
        """Every id that would end a document: the tokenizer's EOS and the generation config's."""
        ids = {getattr(self.lm, "eos_token_id", None), self._bos_eos()[1]}
        config_eos = getattr(getattr(self.module, "generation_config", None), "eos_token_id", None)
        ids.update(config_eos if isinstance(config_eos, list) else [config_eos])
        return sorted(i for i in ids if isinstance(i, int) and 0 <= i < self.vocab_size)

    def template(self) -> Template:
        """Where the prompt goes: after BOS for base models; inside the user turn for chat models."""
        if not self.chat:
            bos = self._bos_eos()[0]
            if self.words:
                return Template([bos] if bos is not None and getattr(self.lm, "add_bos", True) else [], [])
            with_special = self.tokenizer.encode("a")
            return Template([bos] if bos is not None and with_special[:1] == [bos] else [], [])
        text = self._chat_text(USER_MARK)
        if text.count(USER_MARK) != 1:
            raise UsageError("the chat template does not keep the user turn verbatim; run without chat=true")
        before, after = text.split(USER_MARK)
        return Template(self.encode(before), self.encode(after))

    def _chat_text(self, user_text: str) -> str:
        apply_chat = getattr(self.lm, "apply_chat", None)
        if callable(apply_chat):
            return apply_chat(user_text)
        if not getattr(self.tokenizer, "chat_template", None):
            raise UsageError("chat=true but this model has no chat template; drop chat=true from --model-args")
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
        )

    def allowed_tokens(self) -> torch.Tensor:
        """Bool mask (V,): tokens that are not special and survive decode -> encode as themselves.

        A swap to a token that re-tokenizes differently would give a prompt whose text does not reproduce it.
        """
        key = (id(self.tokenizer), self.vocab_size)
        if key not in _ALLOWED:
            _ALLOWED[key] = self._scan_tokens()
        return _ALLOWED[key].clone()

    def _scan_tokens(self) -> torch.Tensor:
        size = min(len(self.tokenizer), self.vocab_size)
        ids = list(range(size))
        if self.words:
            encoded = [self._encode_or_none(self.decode([i])) for i in ids]
        else:
            texts = self.tokenizer.batch_decode([[i] for i in ids])
            encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        mask[:size] = torch.tensor([e == [i] for i, e in zip(ids, encoded)])
        special = [i for i in self.special_ids() if 0 <= i < self.vocab_size]
        mask[special] = False
        return mask

    def _encode_or_none(self, text: str) -> list[int] | None:
        """Ids of ``text``, or None when a word-level vocabulary lacks one of its words."""
        try:
            return self.encode(text)
        except UsageError:
            return None

    def filler_id(self) -> int:
        """The token that fills prompts: "!" (the paper's choice) when it is one allowed token, else the first
        allowed token (word-level vocabularies of synthetic tasks rarely have "!")."""
        allowed = self.allowed_tokens()
        if not allowed.any():
            raise UsageError("no token of this vocabulary can appear in a prompt (all special or not round-trip)")
        ids = self._encode_or_none("!")
        return ids[0] if ids and len(ids) == 1 and allowed[ids[0]] else int(allowed.nonzero()[0, 0])

    def exclamations(self, length: int) -> list[int]:
        """The paper's initial prompt "! ! ... !" as ``length`` tokens (filler tokens where "!" is unknown)."""
        ids = self._encode_or_none(("! " * length).strip()) or []
        return (ids + [self.filler_id()] * length)[:length]

    def cast(self, dtype: torch.dtype) -> WhiteBox:
        """The same view on a copy of the module in ``dtype``: a cheaper model to rank proposals with."""
        view = copy.copy(self)
        view.module = copy.deepcopy(self.module).to(dtype)
        view.embedding_matrix = view.module.get_input_embeddings().weight
        view._fused = FusedForward(view.module) if self._fused else None
        return view

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding_matrix.dtype

    # forward passes ----------------------------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of token ids, as the model's own embedding layer gives them (scaled for Gemma)."""
        rows = self.embedding_matrix[ids.to(self.device)]
        return rows * self.embed_scale if self.embed_scale != 1.0 else rows

    def _scores_fused(self) -> bool:
        """Whether to score through the hf engine's fused forward: it has one and no gradient is wanted (the
        fused forward's packed weights have none)."""
        return self._fused is not None and not torch.is_grad_enabled()

    def _fused_logits(self, embeds: torch.Tensor, keep: int, cache=None, shared=None) -> torch.Tensor:
        """Logits, in the model's dtype as the module's own forward gives them, of the last ``keep`` positions of
        ``embeds`` (B, T, d) run after the ``P`` positions in ``cache`` (or in ``shared``, the fused forward's
        shared-prefix cache), through the fused forward."""
        past = (shared or cache).get_seq_length() if (shared or cache) is not None else 0
        mask = torch.ones(embeds.shape[0], past + embeds.shape[1], dtype=torch.long, device=self.device)
        hidden = self._fused(embeds, mask, cache=cache, shared=shared)[:, -keep:]
        return self._fused.logits(hidden, self.dtype)

    def tail_logits(self, embeds: torch.Tensor, keep: int) -> torch.Tensor:
        """Float32 logits of the last ``keep`` positions (B, keep, V); only those go through the LM head."""
        if self._scores_fused():
            return self._fused_logits(embeds, keep).float()
        if self._keeps_logits:
            logits = self.module(inputs_embeds=embeds, logits_to_keep=keep, use_cache=False).logits
        else:
            logits = self.lm.forward_embeddings(embeds)[:, -keep:]
        return logits.float()

    @property
    def continues_from_cache(self) -> bool:
        """Whether the module can run a continuation on a KV cache (hf modules; not the scratch Transformer)."""
        return self._keeps_logits

    def context_then_documents(
        self, contexts: torch.Tensor, documents: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        """Float32 NLL of every token of the same k documents (k, Ld, d; token ids ``ids`` (k, Ld)) after each
        context (P, Lc, d): (P * k, Ld), context-major. Each context runs once and its documents continue from its
        KV cache (instead of P * k rows of context + document): the fused forward reads each context's cached keys
        once for all k documents (shared-prefix attention); transformers' forward gets the cache repeated k times.
        Logits stay in the model's dtype until token_nll takes them a few positions at a time."""
        count, context_len = contexts.shape[:2]
        k, doc_len = documents.shape[:2]
        if self._scores_fused():
            cache = self._fused.new_cache()
            first = self._fused_logits(contexts, 1, cache=cache)
        else:
            output = self.module(inputs_embeds=contexts, use_cache=True, logits_to_keep=1)
            first, cache = output.logits, getattr(output, self._cache_arg)
        nll = -first[:, 0].float().log_softmax(dim=-1)[:, ids[:, 0]].reshape(count * k, 1)  # each document's token 0
        if doc_len == 1:
            return nll
        rows = documents[:, :-1].repeat(count, 1, 1)
        if self._scores_fused():
            rest = self._fused_logits(rows, doc_len - 1, shared=cache)
        else:
            cache.batch_repeat_interleave(k)
            positions = torch.arange(context_len, context_len + doc_len - 1, device=self.device).expand(count * k, -1)
            rest = self.module(
                inputs_embeds=rows, position_ids=positions, use_cache=True, **{self._cache_arg: cache}
            ).logits  # (P*k, Ld-1, V)
        return torch.cat([nll, token_nll(rest, ids[:, 1:].repeat(count, 1))], dim=1)

    @torch.no_grad()
    def sample(self, context: list[int], n: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` documents of ``length`` tokens from P(.|context) at temperature 1 with EOS disabled: (n, length)."""
        banned = self.eos_ids()
        ids = torch.tensor([context] * n, dtype=torch.long, device=self.device)
        out = torch.empty(n, length, dtype=torch.long)
        past, step_input = None, ids
        for position in range(length):
            logits, past = self._next_logits(ids, step_input, past)
            logits[:, banned] = float("-inf")
            token = sample(logits.cpu(), generator)[:, None]  # (n, 1): temperature 1, harness.sampling
            out[:, position] = token[:, 0]
            step_input = token.to(self.device)
            ids = torch.cat([ids, step_input], dim=1)
        return out

    def _next_logits(self, ids, step_input, past):
        """Next-token logits, with the KV cache when the module supports it (hf), else a full forward."""
        if self._keeps_logits:
            output = self.module(
                input_ids=step_input if past is not None else ids,
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_arg: past},
            )
            return output.logits[:, -1].float(), getattr(output, self._cache_arg)
        return self.tail_logits(self.embed(ids), 1)[:, -1], None
