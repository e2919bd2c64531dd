"""Declared task options (harness.options): one declaration gives the signature, types, ranges, defaults and help."""

import inspect
from dataclasses import dataclass

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.options import Options, accepted, build, described, doc_text, option, takes
from harness.registry import get_plugins

# Every built-in factory's defaults as its plain signature gave them before the declarations: a declaration must
# keep each one (new options may be added).
BEFORE = {
    "tasks/dataset": {"config": "", "num_fewshot": -1, "split": ""},
    "tasks/distill": {
        **{"d": 20, "r": 2, "beam": 10, "samples": 2000, "heldout": 2000, "ridge": 10.0, "width": 128, "blocks": 2},
        **{"steps": 3000, "batch_size": 128, "lr": 0.05, "test_size": 10000, "checkpoint": "", "threads": 1},
    },
    "tasks/fact_mlp": {
        **{"dataset": "lowrank", "n": 256, "d": 10, "depth": 3, "width": 64, "activation": "relu", "lr": 0.2},
        **{"weight_decay": 0.01, "max_steps": 30000, "grad_tol": 1e-06, "log_every": 100},
    },
    "tasks/fact_rfm": {
        **{"data": "modular", "update": "fact", "kernel": "gaussian", "bandwidth": 1.5, "ridge": 0.001},
        **{"iterations": 50, "normalize": True, "p": 61, "train_fraction": 0.5, "n": 1000, "n_test": 2000, "d": 50},
        "k": 3,
    },
    "tasks/fact_rfm_tabular": {
        **{"datasets": "iris,wine,breast_cancer,digits", "splits": 5, "test_fraction": 0.2, "kernel": "laplace"},
        **{"bandwidth": 10.0, "ridge": 0.001, "iterations": 5, "mlp_steps": 1000, "mlp_width": 256, "mlp_lr": 0.001},
    },
    "tasks/graph_cot": {
        **{"depth": 1, "cot": "dfs,path", "pool": 0, "examples": 100, "samples": 16, "budgets": "auto", "budget": 0},
        **{"temperature": None, "prompt": "auto", "steps": 2500, "batch_size": 32, "lr": 0.003, "weight_decay": 0.05},
        **{"d_model": 64, "n_layer": 3, "n_head": 4, "positions": "learned", "attention": "identity", "ffn": "gelu"},
        **{"norm": "layernorm", "eval_batch": 512, "threads": 1, "workers": 2, "curriculum": False},
        **{"eval_depths": "", "device": "cpu"},
    },
    "tasks/incremental_rank": {
        **{"alpha": 0.001, "dim": 8, "tokens": 8, "samples": 128, "teacher_qk": "1,0.3", "teacher_vo": "2,0.6,0.2"},
        **{"lr": 0.05, "horizon": 30.0, "transformer": True, "heads": 2, "transformer_lr": 0.1},
        "transformer_horizon": 60.0,
    },
    "tasks/leap": {
        **{"target": "staircase", "d": 32, "data": "boolean", "width": 64, "lr": 0.1, "runs": 6},
        **{"max_steps": 400000, "threshold": 0.1, "n_test": 512},
    },
    "tasks/linear_resnet": {
        **{"dim": 16, "rank": 3, "signal": 6.0, "noise": 0.2, "depth": 8, "lam": 0.1, "mu": 1.5, "steps": 6000},
        **{"lr": 0.0, "init": 1.0},
    },
    "tasks/moe_granularity": {
        **{"d": 16, "teacher_k": 8, "teacher_experts": 0, "k": 8, "experts": 16, "active_hidden": 64, "steps": 3000},
        **{"batch_size": 256, "lr": 0.01, "test_size": 4096, "eval_every": 100, "init_at_teacher": False},
        **{"freeze": "", "threads": 1},
    },
    "tasks/ntk": {
        **{"target": "teacher", "d": 8, "width": 128, "n_train": 64, "n_test": 256},
        **{"alphas": "0.316,1,3.16,10,31.6,100,316,1000,3160", "epsilon": 0.001, "param_epsilon": 0.03},
        **{"t_min": 1.0, "horizon": 1000.0, "times_per_decade": 4, "dt": 0.5},
    },
    "tasks/propane_suite": {
        **{"prompts": "", "n_prompts": 0, "seeds": 1, "steps": 16, "prompt_len": 10, "topk": 256, "n_docs": 8},
        **{"n_heldout": 16, "doc_len": 8, "batch_size": 10, "eval_every": 10, "rank_dtype": "bfloat16"},
        **{"rescore": 4, "max_batch_tokens": 8192, "chat": False, "threads": 1, "workers": 1},
    },
    "tasks/propane_transfer": {"source": None, "n_docs": 32, "doc_len": None, "chat": None, "max_batch_tokens": 8192},
    "tasks/relational": {
        **{"setting": "regression", "templates": "auto", "n": 256, "alphabet": 0, "val_alphabet": 256},
        **{"test_alphabet": 256, "val_examples": 512, "test_examples": 1024, "attention": "sdpa", "d_model": 64},
        **{"n_layer": 2, "n_head": 4, "freeze_embeddings": None, "steps": 1000, "batch_size": 64, "lr": 0.003},
        "threads": 1,
    },
    "tasks/relational_llm": {
        **{"templates": "aba_abb", "examples": 200, "shots": 8, "symbols": "letters", "label_words": "A,B"},
        **{"mode": "loglikelihood", "max_tokens": 4},
    },
    "optimizers/propane": {
        **{"target_prompt": None, "documents": None, "steps": 100, "prompt_len": None, "topk": 256, "n_docs": 32},
        **{"n_heldout": None, "doc_len": 32, "gamma": 0.0, "init": None, "batch_size": 64, "kl_threshold": None},
        **{"eval_every": 1, "max_batch_tokens": 8192, "rank_dtype": "bfloat16", "rescore": 4, "lr": 0.01},
        "chat": None,
    },
    "probes/fact": {"weight_decay": None, "fact_layers": None},
    "probes/rank": {"top": 8},
}


@pytest.mark.parametrize("key", sorted(BEFORE))
def test_a_declaration_keeps_the_defaults_the_task_had(key):
    kind, name = key.split("/")
    factory = get_plugins().registry(kind).get(name).factory
    now = {n: p.default for n, p in inspect.signature(factory).parameters.items()}
    assert {n: now.get(n, "(gone)") for n in BEFORE[key]} == BEFORE[key]
    assert set(BEFORE[key]) <= set(accepted(factory) or BEFORE[key])


@dataclass(frozen=True)
class Shape(Options):
    """A toy declaration."""

    width: int = option(8, "hidden units", ge=1)
    rate: float = option(0.5, "a fraction", gt=0, le=1)
    mode: str = option("fast", "how to run", choices=("fast", "slow"))
    note: str | None = option(None, "anything")

    def check(self) -> None:
        if self.mode == "slow" and self.width > 64:
            raise UsageError("mode=slow takes width <= 64")


@takes(Shape)
class Toy:
    def __init__(self, options: Shape):
        self.options = options


@takes(Shape)
def toy_function(options: Shape) -> Shape:
    return options


def test_a_declaration_gives_the_signature_and_a_typed_object():
    assert accepted(Toy) == accepted(toy_function) == ["width", "rate", "mode", "note"]
    assert list(inspect.signature(Toy.__init__).parameters) == ["self", "width", "rate", "mode", "note"]
    assert (
        str(inspect.signature(Toy))
        == "(*, width: int = 8, rate: float = 0.5, mode: str = 'fast', note: str | None = None)"
    )
    toy = build(Toy, {"width": 3, "rate": 1}, "task 'toy'", "--task-args")
    assert toy.options == Shape(width=3, rate=1.0) and type(toy.options.rate) is float
    assert Toy(Shape(mode="slow")).options.mode == "slow" and toy_function(width=2).width == 2
    with pytest.raises(TypeError):
        Toy(Shape(), width=2)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"width": 0}, "task 'toy': width=0: give width >= 1; fix --task-args"),
        ({"rate": 1.5}, "task 'toy': rate=1.5: give rate in (0, 1]; fix --task-args"),
        ({"mode": "warp"}, "task 'toy': mode='warp': choose one of fast, slow; fix --task-args"),
        ({"width": "wide"}, "task 'toy': option 'width' must be int, got 'wide'; fix --task-args"),
        ({"width": True}, "task 'toy': option 'width' must be int, got True; fix --task-args"),
        ({"widht": 3}, "task 'toy' has no option 'widht' (--task-args); did you mean 'width'?"),
        ({"mode": "slow", "width": 100}, "mode=slow takes width <= 64"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option_and_its_range(args, message):
    with pytest.raises(UsageError) as error:
        build(Toy, args, "task 'toy'", "--task-args")
    assert str(error.value) == message


def test_a_declaration_checks_however_it_is_built():
    with pytest.raises(UsageError, match="give width >= 1"):
        Shape(width=0)
    with pytest.raises(UsageError, match="width=None: width must be int"):
        Shape(width=None)


def test_plain_factories_still_work_and_describe_reads_their_docstring():
    def plain(size: int = 4, name: str = "x", **_):
        """A third party's factory with :mod:`markup`.

        Args:
            size: how many ``things`` to make,
                on two lines.
            name: what to call them.
        """
        return size, name

    assert accepted(plain) is None and build(plain, {"size": 5}, "task 'plain'", "--task-args") == (5, "x")
    with pytest.raises(UsageError, match="option 'size' must be int"):
        build(plain, {"size": "big"}, "task 'plain'", "--task-args")
    rows = {row["option"]: row for row in described(plain)}
    assert rows["size"]["help"] == "how many things to make, on two lines." and rows["name"]["type"] == "str"
    assert doc_text(inspect.getdoc(plain)) == "A third party's factory with markup."


def test_describe_prints_each_options_range_and_help_without_markup(capsys):
    assert main(["describe", "moe_granularity"]) == 0
    shown = capsys.readouterr().out
    assert ":mod:" not in shown and "``" not in shown and "Args:" not in shown
    row = next(line for line in shown.splitlines() if line.startswith("lr "))
    assert row.split()[:5] == ["lr", "float", "0.01", ">", "0"] and "peak learning rate" in row


def test_a_bad_value_on_the_command_line_exits_2_with_one_line(tmp_path, capsys):
    code = main(["run", "--task", "moe_granularity", "--task-args", "lr=-1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.splitlines() == [
        "harness: error: task 'moe_granularity': lr=-1: give lr > 0; fix --task-args"
    ]
