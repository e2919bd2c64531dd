"""Every run says how close to the machine it ran (harness/efficiency.py): real runs on the tiny Llama record an
efficiency block per request shape with fraction_of_peak in (0, 1], the machine is measured once per key under
$HARNESS_CACHE and reused, a resume without engine work keeps the block, a server engine says it gives no shapes,
a training loop gets its block too, and ``harness show`` prints it."""

import json
from pathlib import Path

import pytest

from harness import efficiency
from harness.cli import main
from harness.runs import RunRequest, run

TASKS = Path(__file__).resolve().parent.parent / "plugins" / "dataset_tasks"
ROW_KEYS = {"calls", "requests", "seconds", "requests_per_s", "tokens", "floor_s", "tokens_per_s", "bound"}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh $HARNESS_CACHE: the machine profile is measured into it, never into the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(folder))
    return folder


def well_formed(block: dict, shape: str) -> dict:
    """The shape's row, checked: every field there, tokens/s positive, the fraction of the floor in (0, 1]."""
    row = block["shapes"][shape]
    assert ROW_KEYS | {"fraction_of_peak"} <= set(row), row
    assert row["calls"] >= 1 and row["requests"] >= 1 and row["tokens"] >= 1 and row["seconds"] > 0
    assert row["tokens_per_s"] == pytest.approx(row["tokens"] / row["seconds"], rel=1e-3)
    assert 0 < row["fraction_of_peak"] <= 1 and row["floor_s"] == pytest.approx(
        row["fraction_of_peak"] * row["seconds"]
    )
    (machine,) = block["machine"].values()
    assert machine["matmul_peak_gflops"]["float32"] > 0 and machine["matmul_peak_gflops"]["bfloat16"] > 0
    assert machine["copy_gb_per_s"] > 0 and Path(machine["cache"]).exists()
    return row


def test_real_hf_runs_record_their_efficiency_and_measure_the_machine_once(
    tiny_folder, tmp_path, cache, capsys, one_thread
):
    model, out = f"hf:{tiny_folder}", tmp_path / "runs"
    scored = run(RunRequest(task=str(TASKS / "graph_reachability.yaml"), model=model, limit=4, out=out, quiet=True))
    block = json.loads((scored.dir / "efficiency.json").read_text())
    assert scored.efficiency == block and block["engines"] == ["hf"] and block["dtypes"] == ["float32"]
    row = well_formed(block, "loglikelihood")
    assert row["bound"] == "compute"  # the tiny model's weights fit in a cache: no memory floor
    (profile,) = (cache / "machine").iterdir()
    written = profile.read_text(), profile.stat().st_mtime_ns
    assert json.loads(written[0])["key"] == efficiency.machine_key("cpu")

    generated = run(RunRequest(task=str(TASKS / "arithmetic.yaml"), model=model, limit=2, out=out, quiet=True))
    row = well_formed(generated.efficiency, "generation")
    assert row["prompt_tokens"] > row["requests"] and "loglikelihood" not in generated.efficiency["shapes"]
    assert [p.name for p in (cache / "machine").iterdir()] == [profile.name]  # measured once, then reused
    assert (profile.read_text(), profile.stat().st_mtime_ns) == written
    assert generated.efficiency["machine"] == block["machine"]

    again = run(RunRequest(task=str(TASKS / "graph_reachability.yaml"), model=model, limit=4, out=out, quiet=True))
    assert again.resumed and again.efficiency == block  # every sample read back: the block of the work stays

    capsys.readouterr()
    assert main(["show", scored.run_id, "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "fraction_of_peak" in shown and "loglikelihood" in shown and "GFLOP/s" in shown
    assert main(["show", scored.run_id, "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["efficiency"] == block


def test_the_floor_counts_the_forward_s_matmuls(tiny_folder, cache, one_thread):
    """The FLOPs of each shape, against the tiny Llama's weights counted by hand (2 layers, 64 wide, 4 query and 2
    key-value heads of 16, an MLP of 128; an untied head over SmolLM2's vocabulary)."""
    from harness.backends import load
    from harness.backends.base import SamplingParams
    from harness.backends.tokens import encode_pair

    lm = efficiency.watch(load(f"hf:{tiny_folder}"))
    body, head = 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128), 64 * lm.module.config.vocab_size
    info = {"body": body, "head": head, "bytes": 4 * (body + head), "dtype": "float32", "device": "cpu"}
    assert efficiency.engine_info(lm) == info
    pairs = [("Paris is in", " France"), ("Paris is in", " Spain"), ("One two", " three")]
    lm.loglikelihood(pairs)  # outside a run: not metered
    with efficiency.metering() as meter:
        lm.loglikelihood(pairs)
        (completions,) = lm.generate(["One two three"], SamplingParams(max_tokens=5, ignore_eos=True))
        lm.loglikelihood_rolling(["One two three four"])
    ll, gen, rolling = meter.calls
    split = [encode_pair(lm.tokenizer, lm.prefix_token_id, c, x) for c, x in pairs]
    contexts, continuations = len(split[0][0]) + len(split[2][0]), sum(len(x) for _, x in split)
    assert ll["flops"] == 2 * body * (contexts + continuations - 3) + 2 * head * continuations
    assert ll["tokens"] == sum(len(c) + len(x) for c, x in split) and ll["requests"] == 3 and ll["steps"] == 1
    prompt = len(lm.encode("One two three"))
    assert len(completions[0].token_ids) == gen["tokens"] == gen["steps"] == 5 and gen["prompt_tokens"] == prompt
    assert gen["flops"] == 2 * body * prompt + 2 * head + 2 * (body + head) * 4  # the 5th token is never an input
    assert rolling["tokens"] == 4 and rolling["flops"] == 2 * (body + head) * 4  # "One", " two", " three", " four"
    block = meter.block()
    assert set(block["shapes"]) == {"loglikelihood", "generation", "loglikelihood_rolling"}
    assert all(0 < row["fraction_of_peak"] <= 1 for row in block["shapes"].values())
    lm.close()


def test_another_thread_count_is_another_machine(cache, one_thread):
    """The peak depends on the threads: one thread has its own cached profile beside the default's."""
    import torch

    first = efficiency.machine_profile("cpu")
    assert efficiency.machine_profile("cpu") == first  # read back, not measured again
    torch.set_num_threads(2)
    try:
        second = efficiency.machine_profile("cpu")
    finally:
        torch.set_num_threads(1)
    assert second["key"]["threads"] == 2 and first["key"]["threads"] == 1 and second["cache"] != first["cache"]
    assert len(list((cache / "machine").iterdir())) == 2


def test_a_server_engine_says_it_gives_no_shapes(tiny_folder, tmp_path, cache):
    from cli_helpers import serving

    with serving("--model", f"hf:{tiny_folder}", "--name", "tiny") as url:
        result = run(
            RunRequest(
                task=str(TASKS / "graph_reachability.yaml"),
                model=f"openai:{url}",
                limit=2,
                out=tmp_path / "runs",
                use_cache=False,
                quiet=True,
            )
        )
    block = result.efficiency
    assert "gives no shapes" in block["note"] and "openai" in block["note"]
    row = block["shapes"]["loglikelihood"]
    assert row["requests"] >= 2 and row["requests_per_s"] > 0
    assert "fraction_of_peak" not in row and "tokens_per_s" not in row and not block["machine"]
    assert not (cache / "machine").exists()  # nothing to compare with: the machine is not measured


def test_a_training_loop_gets_its_block(cache, one_thread):
    import torch

    from harness.models import ModelConfig, build_model
    from harness.training import TrainConfig, Trainer

    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=12, n_layer=1, n_head=2, d_model=16, max_seq_len=8))
    config = TrainConfig(steps=6, batch_size=8, lr=1e-2, log_every=3)

    def batches(step, generator):
        x = torch.randint(3, 12, (8, 8), generator=generator)
        return {"input_ids": x, "targets": torch.roll(x, 1, dims=1)}

    with efficiency.metering() as meter:
        metrics = efficiency.watch_trainer(Trainer(model, config, batches, progress=False)).fit()
    block = meter.block()
    row = well_formed(block, "training")
    assert row["tokens"] == 6 * 8 * 8 and row["requests"] == 6  # requests: the steps
    assert row["tokens_per_s"] == pytest.approx(metrics["tokens_per_s"], rel=1e-3)


def test_a_run_without_an_engine_says_so(tmp_path, cache):
    result = run(RunRequest(task="counting", out=tmp_path / "runs", plugin_modules=["harness_testplugin"], quiet=True))
    assert result.efficiency == {"note": efficiency.NO_WORK, "shapes": {}}
    assert not (cache / "machine").exists()
