"""Training batches: what the model reads and what it is trained to predict line up (loss after "/" only)."""

import pytest
from harness.plugins.graph_cot.experiment import make_batches, make_tokenizer
from harness.plugins.graph_cot.scoring import parse_tokens
from harness.plugins.graph_cot.task import GraphCoT


@pytest.mark.parametrize("strategy,curriculum", [("dfs", False), ("path", False), ("dfs", True)])
def test_batches_train_only_the_completion_and_mask_padding(strategy, curriculum):
    pytest.importorskip("torch")
    task = GraphCoT(depth=2, batch_size=8, curriculum=curriculum)
    tokenizer = make_tokenizer(task.pool)
    batch = make_batches(task, tokenizer, strategy, seed=0)(1, None)
    ids, targets, mask = batch["input_ids"], batch["targets"], batch["loss_mask"]
    assert ids.shape == targets.shape == mask.shape and ids.shape[0] == 8
    lengths = set()
    for row, target, weight in zip(ids.tolist(), targets.tolist(), mask.tolist()):
        words = tokenizer.decode(row).split()
        real = len(words) - words.count("<pad>")
        lengths.add(real)
        assert words[0] == "<bos>" and all(w == "<pad>" for w in words[real:])
        assert target[: real - 1] == row[1:real]  # next-token targets
        trained = [tokenizer.tokens[t] for t, w in zip(target, weight) if w]
        slash = words.index("/")
        assert trained == tokenizer.decode(target[slash:real]).split()  # everything after "/", nothing else
        assert trained[0] == "work:" and trained[-1] == "<eos>" and trained[-3] == "decision:"
        assert not any(weight[real:])  # padding never trained
        cot, decision, finished = parse_tokens(trained[:-1])
        assert finished and cot[-1] == decision
    assert len(lengths) > 1  # rows differ in length, so padding was exercised
    graph_sizes = {tokenizer.decode(row).split().index("task:") for row in ids.tolist()}
    assert len(graph_sizes) == 1  # one depth a batch (with a curriculum too): rows pad only to their own depth
    if not curriculum:
        assert graph_sizes == {2 + 2 * 44}  # two copies of 11 d edges
    else:  # over steps, the curriculum draws every depth
        seen = set()
        for step in range(1, 20):
            row = make_batches(task, tokenizer, strategy, seed=0)(step, None)["input_ids"][0].tolist()
            seen.add(tokenizer.decode(row).split().index("task:"))
        assert seen == {2 + 2 * 22, 2 + 2 * 44}


def test_node_names_are_single_tokens():
    tokenizer = make_tokenizer(52)
    assert tokenizer.encode("graph: 0 51 task:") == [tokenizer.index[w] for w in ("graph:", "0", "51", "task:")]


def test_escape_study_stops_at_its_cap_under_the_longer_schedule():
    """A training capped below its schedule (a preset's steps) stops at the cap and is recorded as not escaped
    within it, with the schedule it trained under: a depth-3 plateau then costs only the cap."""
    pytest.importorskip("torch")
    from harness.plugins.graph_cot.escape import escape_step, summary_table

    record = escape_step("flagship", 0, steps=400, cap=50)
    assert record["escape_step"] is None and record["steps"] == 50 and record["schedule"] == 400
    assert [step for step, _ in record["losses"]] == [25, 50]
    row = summary_table([record])[-1]  # no baseline to pair with: the last column stays empty
    assert row.startswith("| flagship |") and row.endswith("| 100% |  |")


def test_escape_study_counts_no_step_of_the_walk_warm_up():
    """A loss under the threshold while the model still trains on random walks is not an escape: with a threshold
    every logged loss is under, the escape step is the first logged step after the warm-up."""
    pytest.importorskip("torch")
    from harness.plugins.graph_cot.escape import CONFIGS, escape_step

    warmup = CONFIGS["walk200"]["walk_warmup"]
    record = escape_step("walk200", 0, threshold=100.0, steps=400)
    assert record["escape_step"] == warmup + 25 and record["losses"][-1][0] == warmup + 25


def test_escape_table_pairs_only_trainings_under_one_step_cap():
    """'Never' under a 6000-step cap and 'never' under 8000 are not 6000 and 8000: such seeds are not paired."""
    from harness.plugins.graph_cot.escape import summary_table

    def record(config: str, seed: int, escape_step: int | None, cap: int) -> dict:
        return {"config": config, "seed": seed, "escape_step": escape_step, "steps": cap}

    records = [record("reference", 0, None, 8000), record("reference", 1, 5000, 8000)]
    records += [record("reference_d128x4", 0, None, 6000), record("reference_d128x4", 1, 3000, 8000)]
    row = summary_table(records)[-1]
    assert row.startswith("| reference_d128x4 |") and row.endswith("| -2000 (seeds 1-1) |")
