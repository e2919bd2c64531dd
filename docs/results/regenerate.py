"""Regenerate the committed run records under docs/results/ from the commands that made them.

Every record's config.yaml holds the ``command`` that produced it. This script runs each distinct command once,
into a temporary ``--out`` folder, finds the new run with the same task, arguments, model and seed, and copies over
the files the record keeps (config.yaml, metrics.json, samples.jsonl, plots): a code change that moves a number is
then one command away from an updated record, and the tests that hold the docs pages (docs/papers/, docs/performance.md)
to the records say which tables to update.

    python docs/results/regenerate.py --list                 # every record and its command
    python docs/results/regenerate.py graph_cot propane      # the records whose path contains these words
    python docs/results/regenerate.py --all                  # everything (hours on a 2-core CPU)

A record made on a GPU (``device: cuda`` in its task args) is skipped, with a line that says so, where torch sees no
GPU: run there, it would take hours on a CPU or refuse to start.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # commands are run from the checkout's root, as they were recorded


def records(results: Path, words: list[str]) -> dict[str, list[Path]]:
    """``{command: [record folders]}`` for the records whose path (relative to ``results``) holds any of ``words``
    (all records when ``words`` is empty)."""
    by_command: dict[str, list[Path]] = {}
    for config in sorted(results.rglob("config.yaml")):
        folder = config.parent
        name = folder.relative_to(results).as_posix()
        if words and not any(word in name for word in words):
            continue
        command = yaml.safe_load(config.read_text()).get("command")
        if command:
            by_command.setdefault(command, []).append(folder)
    return by_command


def with_out(command: str, out: Path) -> list[str]:
    """The command's argv with its ``--out`` replaced by ``out`` (added when it had none), run by the ``harness``
    beside this interpreter when there is one."""
    argv = shlex.split(command)
    if "--out" in argv:
        argv[argv.index("--out") + 1] = str(out)
    else:
        argv += ["--out", str(out)]
    local = Path(sys.executable).parent / "harness"
    if argv[0] == "harness" and local.exists():
        argv[0] = str(local)
    return argv


def identity(config: dict, exact: bool = True) -> str:
    """What makes two run configs the same run; ``exact=False`` ignores task args (paths differ between clones)."""
    keys = ("task", "model", "seed") + (("task_args",) if exact else ())
    return json.dumps({k: config.get(k) for k in keys}, sort_keys=True, default=str)


def matching_run(record: Path, runs: list[Path]) -> Path:
    wanted = yaml.safe_load((record / "config.yaml").read_text())
    configs = {run: yaml.safe_load((run / "config.yaml").read_text()) for run in runs}
    for exact in (True, False):
        found = [run for run, config in configs.items() if identity(config, exact) == identity(wanted, exact)]
        if len(found) == 1:
            return found[0]
    raise SystemExit(f"{record}: no single new run matches its config.yaml; compare the command's runs by hand")


def needs_gpu(folder: Path) -> bool:
    args = yaml.safe_load((folder / "config.yaml").read_text()).get("task_args") or {}
    return str(args.get("device", "cpu")).startswith("cuda")


def gpu_present() -> bool:
    import torch

    return torch.cuda.is_available()


def regenerate(command: str, folders: list[Path], scratch: Path) -> None:
    out = scratch / hashlib.sha256(command.encode()).hexdigest()[:12]
    argv = with_out(command, out)
    print("$", shlex.join(argv), flush=True)
    subprocess.run(argv, check=True, cwd=ROOT)
    runs = [config.parent for config in out.rglob("config.yaml")]
    for record in folders:
        source = matching_run(record, runs)
        for kept in record.iterdir():
            if kept.is_file() and (source / kept.name).is_file():
                shutil.copy2(source / kept.name, kept)
        config = yaml.safe_load((record / "config.yaml").read_text())
        config["command"] = command  # as recorded, not with the scratch --out it was re-run into
        (record / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"  updated {record} from {source}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("words", nargs="*", help="regenerate the records whose path contains any of these words")
    parser.add_argument("--all", action="store_true", help="regenerate every record")
    parser.add_argument("--list", action="store_true", help="print each record and its command, run nothing")
    parser.add_argument("--results", type=Path, default=HERE, help="the records' folder (default: docs/results)")
    args = parser.parse_args(argv)
    if not (args.words or args.all or args.list):
        parser.error("name the records to regenerate (words of their paths), or give --all or --list")
    chosen = records(args.results, [] if args.all else args.words)
    if not chosen:
        parser.error(f"no record under {args.results} matches {' '.join(args.words)}; see --list")
    if args.list:
        for command, folders in chosen.items():
            print(command)
            for folder in folders:
                print("   ->", folder.relative_to(args.results))
        return 0
    with tempfile.TemporaryDirectory(prefix="harness-regenerate-") as scratch:
        for command, folders in chosen.items():
            if any(needs_gpu(folder) for folder in folders) and not gpu_present():
                print(f"skipped (made on a GPU, and none is here): {command}", flush=True)
                continue
            regenerate(command, folders, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
