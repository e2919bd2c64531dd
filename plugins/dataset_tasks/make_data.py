"""Writes the shipped data files (``python -m harness.plugins.dataset_tasks.make_data``); seeded, so the files
are reproducible. Capitals come from the example plugin's list."""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(name: str, rows: list[dict]) -> None:
    (HERE / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def arithmetic(count: int, seed: int) -> list[dict]:
    """Two-digit additions and subtractions with the answer as text."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a, b, op = rng.randint(10, 99), rng.randint(10, 99), rng.choice("+-")
        rows.append({"question": f"What is {a} {op} {b}?", "answer": str(a + b if op == "+" else a - b)})
    return rows


def relational(count: int, shots: int, seed: int) -> list[dict]:
    """aba vs abb in context: labelled letter triples, then a query whose letters the examples never use."""
    rng = random.Random(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    rows = []
    for i in range(count):
        query = rng.sample(letters, 2)
        rest = [c for c in letters if c not in query]
        lines = []
        for j in range(shots):
            x, y = rng.sample(rest, 2)
            label = "A" if j % 2 == 0 else "B"
            lines.append((f"{x} {y} {x}" if label == "A" else f"{x} {y} {y}", label))
        rng.shuffle(lines)
        label = "A" if i % 2 == 0 else "B"
        x, y = query
        rows.append(
            {
                "examples": "\n".join(f"{t}: {lab}" for t, lab in lines),
                "query": f"{x} {y} {x}" if label == "A" else f"{x} {y} {y}",
                "label": label,
            }
        )
    return rows


def graph(count: int, seed: int) -> list[dict]:
    """Reachability in a small directed graph: two disjoint chains, ask whether the source reaches the target."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        nodes = rng.sample(list("ABCDEFGHJKLMNPQRSTUVWXYZ"), 8)
        first, second = nodes[:4], nodes[4:]
        edges = [f"{u}->{v}" for chain in (first, second) for u, v in zip(chain, chain[1:])]
        rng.shuffle(edges)
        source = first[0]
        reachable = i % 2 == 0
        target = rng.choice(first[1:]) if reachable else rng.choice(second)
        rows.append(
            {"edges": ", ".join(edges), "source": source, "target": target, "answer": "yes" if reachable else "no"}
        )
    return rows


def main() -> None:
    write("arithmetic_test.jsonl", arithmetic(100, seed=1))
    write("arithmetic_train.jsonl", arithmetic(20, seed=2))
    write("relational.jsonl", relational(100, shots=8, seed=3))
    write("graph_reachability.jsonl", graph(100, seed=4))


if __name__ == "__main__":
    main()
