"""One way in for model args: every engine checks --model-args against its signature before it loads or connects
anything (names with "did you mean", plain types, exit 2), and one dtype policy."""

import importlib.util

import pytest

from harness.backends import load
from harness.backends.base import DTYPES, resolve_dtype
from harness.errors import UsageError

CLOSED_PORT = "openai:http://127.0.0.1:9/v1"  # nothing listens on port 9: a connection attempt would fail otherwise


@pytest.mark.parametrize("model", [CLOSED_PORT, "vllm:smollm2"])
def test_a_misspelled_key_exits_2_naming_the_right_one_without_connecting(cli, model, tmp_path):
    result = cli("run", "--task", "graph_cot_llm", "--model", model, "--model-args", "modle=x", "--out", tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no option 'modle'" in result.stderr and "did you mean 'model'?" in result.stderr
    assert "connection refused" not in result.stderr and "pull" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "spec, args, message",
    [
        (CLOSED_PORT, {"concurrency": "many"}, "'concurrency' must be int, got 'many'"),
        (CLOSED_PORT, {"timeout": "soon"}, "'timeout' must be float"),
        ("vllm:smollm2", {"tensor_parallel_size": "x"}, "'tensor_parallel_size' must be int"),
        ("vllm:smollm2", {"gpu_memory_utilisation": 0.5}, "did you mean 'gpu_memory_utilization'"),
        ("vllm:smollm2", {"model": "other"}, "'model' comes from the spec"),
        ("hf:smollm2", {"dtpye": "float32"}, "did you mean 'dtype'"),
        ("hf:smollm2", {"prefill_tokens": "x"}, "'prefill_tokens' must be int"),
        ("scratch:/nonexistent", {"devise": "cpu"}, "did you mean 'device'"),
    ],
)
def test_bad_model_args_are_usage_errors_before_anything_loads(spec, args, message):
    with pytest.raises(UsageError, match=message):
        load(spec, **args)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_engine_args_pass_the_check_and_then_ask_for_vllm():
    """Without vLLM the common EngineArgs fields still pass the check; the error is then the install hint."""
    with pytest.raises(UsageError, match=r"needs vLLM, which is not installed: pip install 'harness-lm\[vllm\]'"):
        load(
            "vllm:smollm2",
            tensor_parallel_size=2,
            data_parallel_size=1,
            enforce_eager=True,
            max_model_len=512,
            gpu_memory_utilization=0.5,
            dtype="bfloat16",
        )


def test_one_dtype_policy():
    assert resolve_dtype(None, "cpu") == "float32" and resolve_dtype(None, "cuda") == "bfloat16"
    assert resolve_dtype(None, "cuda:1") == "bfloat16" and resolve_dtype("float16", "cpu") == "float16"
    assert DTYPES == ("float32", "bfloat16", "float16")
    for spec in ("hf:nonexistent", "scratch:/nonexistent", "vllm:nonexistent"):  # one message, before any model
        with pytest.raises(UsageError, match=r"^dtype=int8: choose one of float32, bfloat16, float16 \(--model-args"):
            load(spec, dtype="int8")
