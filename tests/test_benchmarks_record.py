"""The performance page's table (docs/performance.md) is the one benchmarks/run_all.py makes from the committed
record."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "results" / "benchmarks" / "results.json"


def run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_the_committed_record():
    module = run_all()
    record = json.loads(RECORD.read_text())
    readme = (ROOT / "docs" / "performance.md").read_text()
    between = readme.split(module.START, 1)[1].split(module.END, 1)[0]
    assert between == "\n" + module.markdown(record)
    assert (RECORD.parent / "results.md").read_text() == module.markdown(record)


def test_every_benchmark_ran_or_is_named_as_not_run():
    record = json.loads(RECORD.read_text())
    module = run_all()
    assert set(record["benchmarks"]) == set(module.benchmarks())
    ran = {name for name, b in record["benchmarks"].items() if "skipped" not in b}
    assert "lmeval" in ran and all(record["benchmarks"][name]["exit"] == 0 for name in ran)
    rows = module.table_rows(record)
    expected = {"lmeval": 2 * 3, "vllm": 2 * 3, "train": 1, "propane": 1}  # (ll, mc, gen) x 2 dtypes; one ratio each
    assert len(rows) == sum(expected[name] for name in ran)
    assert all(row["ratio"] > 0 for row in rows)
    for name in set(record["benchmarks"]) - ran:
        assert name in module.markdown(record).split("Not run:")[1]


def test_rewriting_the_readme_replaces_only_the_table(tmp_path):
    module = run_all()
    record = json.loads(RECORD.read_text())
    readme = tmp_path / "performance.md"
    readme.write_text(f"intro\n{module.START}\nold table\n{module.END}\nafter\n")
    module.rewrite_table(record, readme)
    assert readme.read_text() == f"intro\n{module.START}\n{module.markdown(record)}{module.END}\nafter\n"


def test_a_partial_run_without_lmevals_record_lets_the_vllm_anchor_time_hf_itself(tmp_path, capsys):
    """``run_all --only vllm --out DIR``: DIR holds no lmeval.json, so --hf-from is dropped rather than passed a
    missing file (the vLLM anchor then times the hf engine itself); with the file there it is passed on."""
    import sys

    module = run_all()
    echo = [sys.executable, "-c", "import sys; print(sys.argv[1:])", "--hf-from", "{dir}/lmeval.json"]
    module.run_one("vllm", echo, tmp_path)
    assert "--hf-from" not in (tmp_path / "vllm.log").read_text()
    (tmp_path / "lmeval.json").write_text("{}")
    module.run_one("vllm", echo, tmp_path)
    assert f"'--hf-from', '{tmp_path}/lmeval.json'" in (tmp_path / "vllm.log").read_text()


def test_a_partial_run_keeps_the_other_benchmarks_with_their_times(tmp_path, monkeypatch):
    """``run_all --only train``: the record's lmeval entry stays, dated by when it ran, and the table says when each
    benchmark ran; the vLLM anchor in such a run would time the hf side itself (no --hf-from)."""
    import sys

    module = run_all()
    echo = [sys.executable, "-c", "import sys; print(sys.argv[1:])"]
    monkeypatch.setattr(
        module, "benchmarks", lambda smoke=False: {"lmeval": echo, "vllm": echo + ["--hf-from", "x"], "train": echo}
    )
    old = {"command": "old", "wall_s": 60.0, "loadavg_start": 6.0, "loadavg_end": 5.0}
    earlier = {
        "when": "2026-11-29 22:30 UTC",
        "machine": "2 CPU cores",
        "loadavg_start": 6.0,
        "benchmarks": {"lmeval": old},
    }
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--only", "vllm", "train", "--out", str(tmp_path)])
    module.main()
    record = json.loads((tmp_path / "results.json").read_text())
    assert set(record["benchmarks"]) == {"lmeval", "vllm", "train"}
    assert record["benchmarks"]["lmeval"]["when"] == "2026-11-29 22:30 UTC"
    assert "--hf-from" not in (tmp_path / "vllm.log").read_text()
    table = (tmp_path / "results.md").read_text()
    assert "- lmeval: 2026-11-29 22:30 UTC, load 6.0 to 5.0, 1 min" in table
    assert f"- train: {record['benchmarks']['train']['when']}" in table


def test_readme_packed_linear_figures_come_from_their_log():
    import re

    log = (RECORD.parent / "packed_linear.log").read_text()
    readme = " ".join((ROOT / "docs" / "performance.md").read_text().split())
    ratio = {
        (dtype, int(rows)): ratio
        for dtype, rows, ratio in re.findall(r"linear (\w+)\s+(\d+) rows: .* ratio ([\d.]+x)", log)
    }
    quoted = (
        f"packed float32 matmuls run at {ratio['float32', 16]} F.linear's rate at 16 rows (a decode step) and "
        f"{ratio['float32', 2048]} at 2048 rows, bfloat16 at {ratio['bfloat16', 16]} and {ratio['bfloat16', 2048]}"
    )
    assert quoted in readme
    slow, fast = re.search(r"decode attention: bfloat16 (\d+) us, float32 (\d+) us", log).groups()
    assert f"attention takes {slow} us in bfloat16 and {fast} us in float32" in readme


def test_performance_page_generation_steps_figures_come_from_their_log():
    """The decode-step figures the page quotes are those of benchmarks/generation_steps.py's committed log."""
    import re

    log = (RECORD.parent / "generation_steps.log").read_text()
    page = " ".join((ROOT / "docs" / "performance.md").read_text().split())
    patterns = {
        "ratio": r"before / after ([\d.]+x)",
        "same": r"same tokens ([\d.]+)",
        "after": r"after [\d.]+ s \(([\d.]+x) floor\)",
        "prefill": r"prefill [\d.]+ s \(floor [\d.]+ s, ([\d.]+x)\)",
        "decode": r"decode steps [\d.]+ s \(floor [\d.]+ s, ([\d.]+x)\)",
        "matmuls": r"matmuls alone [\d.]+ s \(([\d.]+x) the floor\)",
        "attention": r"attention alone ([\d.]+ s)",
    }
    blocks = dict(re.findall(r"^(float32|bfloat16): (.*?)(?=^\S|\Z)", log, re.M | re.S))
    f32, bf16 = ({k: re.search(p, blocks[d])[1] for k, p in patterns.items()} for d in ("float32", "bfloat16"))
    quoted = (
        f"before / after {f32['ratio']} in float32 and {bf16['ratio']} in bfloat16, the same greedy tokens for "
        f"{f32['same']} / {bf16['same']} of the prompts; generation then at {f32['after']} / {bf16['after']} the "
        f"floor. Its breakdown says what bounds the targets: the prefill at {f32['prefill']} / {bf16['prefill']} its "
        f"floor, the decode steps at {f32['decode']} / {bf16['decode']} theirs, of which the matmuls alone take "
        f"{f32['matmuls']} / {bf16['matmuls']} (16 rows a step) and attention {f32['attention']} / "
        f"{bf16['attention']}."
    )
    assert quoted in page
