"""The response cache: hits come back identical without touching the engine, misses go in one batched call,
keys separate models, sampling parameters and seeds, and concurrent processes share one database."""

import subprocess
import sys

import pytest

from harness.backends import SamplingParams
from harness.backends.cache import CachedLM
from harness.backends.hf import HFLM

PAIRS = [
    ("The capital of France is", " Paris"),
    ("The capital of France is", " London"),
    ("Hello", " world"),
    ("2 + 2 =", " 4"),
    ("", "Just a sentence."),
]


class CountingLM(HFLM):
    """The real tiny engine, counting the calls and requests that reach it."""

    calls = 0
    requests = 0

    def _count(self, items) -> None:
        self.calls += 1
        self.requests += len(items)

    def generate(self, prompts, params):
        self._count(prompts)
        return super().generate(prompts, params)

    def loglikelihood(self, requests):
        self._count(requests)
        return super().loglikelihood(requests)

    def loglikelihood_rolling(self, texts):
        self._count(texts)
        return super().loglikelihood_rolling(texts)


@pytest.fixture
def counting(tiny_folder):
    return CountingLM(tiny_folder)


def test_hits_are_identical_and_skip_the_engine(counting, tmp_path):
    cached = CachedLM(counting, tmp_path / "responses.db")
    first = cached.loglikelihood(PAIRS)
    assert (counting.calls, counting.requests) == (1, len(PAIRS))
    assert cached.loglikelihood(PAIRS) == first and counting.calls == 1
    assert first == [tuple(x) for x in counting.loglikelihood(PAIRS)]  # the cache returns what the engine says
    rolling = cached.loglikelihood_rolling(["One text.", "Another text."])
    assert cached.loglikelihood_rolling(["Another text.", "One text."]) == rolling[::-1]
    cached.close()
    cached.close()  # safe twice


def test_only_distinct_misses_reach_the_engine_in_one_call(counting, tmp_path):
    cached = CachedLM(counting, tmp_path / "responses.db")
    cached.loglikelihood(PAIRS[:3])
    calls, requests = counting.calls, counting.requests
    new = [("A new context", " here"), ("Another one", " there")]
    results = cached.loglikelihood([PAIRS[0], new[0], PAIRS[1], new[0], new[1], PAIRS[2]])
    assert counting.calls == calls + 1 and counting.requests == requests + 2
    assert results[1] == results[3] and results[0] == cached.loglikelihood(PAIRS[:1])[0]
    assert cached.hits == 4 + 1 and cached.misses == 3 + 2  # the repeated new request counts as a hit


def test_generate_keys_on_params_and_on_the_seed_only_when_sampling(counting, tmp_path):
    cached = CachedLM(counting, tmp_path / "responses.db")
    prompts = ["Once upon a time", "The answer is"]
    greedy = cached.generate(prompts, SamplingParams(max_tokens=5, seed=1))
    assert cached.generate(prompts, SamplingParams(max_tokens=5, seed=2)) == greedy  # seed ignored when greedy
    assert counting.calls == 1
    cached.generate(prompts, SamplingParams(max_tokens=6))
    assert counting.calls == 2  # other params, other key
    sampled = SamplingParams(n=3, temperature=1.0, max_tokens=5, seed=1)
    first = cached.generate(prompts, sampled)
    assert cached.generate(prompts, sampled) == first and counting.calls == 3
    assert first == counting.generate(prompts, sampled)  # Completions survive the round trip exactly
    cached.generate(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=5, seed=2))
    assert counting.calls == 5


def test_fingerprint_separates_models_in_one_database(counting, tiny_folder, tmp_path):
    CachedLM(counting, tmp_path / "responses.db").loglikelihood(PAIRS)
    other = CountingLM(tiny_folder, dtype="bfloat16")
    CachedLM(other, tmp_path / "responses.db").loglikelihood(PAIRS)
    assert other.calls == 1


def test_white_box_surface_passes_through(counting, tmp_path):
    cached = CachedLM(counting, tmp_path / "responses.db")
    assert cached.fingerprint == counting.fingerprint and cached.name == "hf"
    assert cached.embedding_matrix is counting.embedding_matrix and cached.module is counting.module
    assert cached.encode("hi") == counting.encode("hi")
    with pytest.raises(AttributeError):
        cached.no_such_attribute  # noqa: B018


WRITER = """
import sys
from harness.backends.cache import CachedLM
from harness.backends.hf import HFLM
folder, db, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
lm = CachedLM(HFLM(folder), db)
for k in range(start, start + 12, 3):  # several overlapping write transactions
    lm.loglikelihood([(f"Context {i}", f" continuation {i}") for i in range(k, k + 6)])
"""


def test_concurrent_processes_share_one_database(counting, tiny_folder, tmp_path):
    db = tmp_path / "responses.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tiny_folder), str(db), "0"], stderr=subprocess.PIPE, text=True
    )
    here = CachedLM(HFLM(tiny_folder), db)
    for k in range(6, 18, 3):  # writes from this process while the other one writes too
        here.loglikelihood([(f"Context {i}", f" continuation {i}") for i in range(k, k + 6)])
    assert writer.wait(timeout=300) == 0, writer.stderr.read()[-2000:]
    requests = [(f"Context {i}", f" continuation {i}") for i in range(0, 6 + 12 + 3)]
    expected = counting.loglikelihood(requests)
    results = CachedLM(counting, db).loglikelihood(requests)
    assert counting.calls == 1  # every request came from the two writers' entries
    assert [r[0] for r in results] == pytest.approx([e[0] for e in expected], abs=1e-4)  # other batches
