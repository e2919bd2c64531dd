"""lm-evaluation-harness 0.4.13's `local-completions` and `local-chat-completions` models, with their default
settings, against `harness serve` over the tiny Llama; answers must match the hf engine in process
(tox -e clients)."""

import json

import pytest
from cli_helpers import serving

from harness.backends import SamplingParams

pytestmark = pytest.mark.lmeval
PAIRS = [
    ("The capital of France is", " Paris"),
    ("The capital of France is", " London"),
    ("Hello", " world, how are you"),
    ("2 + 2 =", " 4"),
]


@pytest.fixture(scope="module")
def url(tiny_folder):
    """The server under its default name, the model's folder: lm-eval loads its tokenizer from the model name."""
    with serving("--model", f"hf:{tiny_folder}") as url:
        yield url


def test_local_completions_loglikelihood_and_generate_until(url, tiny_folder, tiny):
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_model

    lm = get_model("local-completions")(base_url=f"{url}/completions", model=str(tiny_folder))
    scored = lm.loglikelihood([Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(PAIRS)])
    local = tiny.loglikelihood(PAIRS)
    assert [s[0] for s in scored] == pytest.approx([x[0] for x in local], abs=1e-3)
    assert [s[1] for s in scored] == [x[1] for x in local]
    asks = [
        ("Once upon a time", {"until": ["\n\n"], "max_gen_toks": 8}),
        ("2 + 2 =", {"until": ["."], "max_gen_toks": 6}),
    ]
    generated = lm.generate_until([Instance("generate_until", {}, ask, i) for i, ask in enumerate(asks)])
    expected = [
        tiny.generate([text], SamplingParams(max_tokens=kw["max_gen_toks"], stop=tuple(kw["until"])))[0][0].text
        for text, kw in asks
    ]
    assert generated == expected and all(generated)


def test_local_chat_completions_generate_until(url, tiny_folder):
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_model
    from lm_eval.models.api_models import JsonChatStr

    from harness.backends.hf import HFLM

    lm = get_model("local-chat-completions")(base_url=f"{url}/chat/completions", model=str(tiny_folder))
    question = "What is the capital of France?"
    chat = JsonChatStr(json.dumps([{"role": "user", "content": question}]))
    (answer,) = lm.generate_until([Instance("generate_until", {}, (chat, {"until": ["\n"], "max_gen_toks": 8}), 0)])
    ((local,),) = HFLM(tiny_folder, chat=True).generate([question], SamplingParams(max_tokens=8, stop=("\n",)))
    assert answer == local.text and answer
