"""A multiple-choice task over local JSONL (the tiny Llama, ``tiny_folder``, is in tests/conftest.py)."""

import pytest

QUESTIONS = [
    ("Which animal barks?", ["cat", "dog", "fish"], 1),
    ("Which is a colour?", ["blue", "seven", "run"], 0),
    ("What is 2 + 2?", ["three", "five", "four"], 2),
    ("Which is a fruit?", ["apple", "chair", "cloud"], 0),
    ("Where do fish live?", ["desert", "water", "sky"], 1),
    ("What melts?", ["ice", "stone", "iron"], 0),
    ("What do bees make?", ["milk", "silk", "honey"], 2),
    ("Which one flies?", ["bird", "rock", "tree"], 0),
    ("What is cold?", ["fire", "snow", "sun"], 1),
    ("Which is a day?", ["June", "Monday", "noon"], 1),
    ("What do we read?", ["books", "shoes", "cups"], 0),
    ("Which is loud?", ["whisper", "feather", "thunder"], 2),
]


@pytest.fixture
def mc_task(tmp_path):
    """A multiple-choice task YAML over local JSONL (train and test split), lm-eval's keys only."""
    folder = tmp_path / "task"
    folder.mkdir()
    return write_mc_task(folder)


def write_mc_task(folder, name: str = "harness_parity_mc", num_fewshot: int = 2):
    import json

    rows = [{"question": q, "options": c, "label": a} for q, c, a in QUESTIONS]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    path = folder / f"{name}.yaml"
    path.write_text(f"""task: {name}
dataset_path: json
dataset_kwargs:
  data_files: {{train: {folder / "train.jsonl"}, test: {folder / "test.jsonl"}}}
training_split: train
test_split: test
num_fewshot: {num_fewshot}
fewshot_config: {{sampler: first_n}}
output_type: multiple_choice
description: "Answer the question.\\n\\n"
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{options}}}}"
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
""")
    return path
