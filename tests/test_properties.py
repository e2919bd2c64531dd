"""Random argument strings and malformed files thrown at the CLI: a usage error or success, never a traceback."""

import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main

WORDS = st.sampled_from(
    [
        "run",
        "list",
        "show",
        "compare",
        "leaderboard",
        "plugins",
        "optimize",
        "--task",
        "counting",
        "--task-args",
        "--model-args",
        "--limit",
        "--seed",
        "--format",
        "tasks",
        "--include-path",
        "-p",
        "--json",
        "n=3",
        "=",
        ",",
        "--probe",
        "--probe-every",
        "-1",
    ]
)
ANY = st.text(alphabet=string.printable, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.one_of(WORDS, ANY), max_size=7))
def test_random_arguments_never_raise(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "-p" in argv:  # loading arbitrary modules by name is allowed but irrelevant here
        argv = [a for a in argv if a != "-p"]
    try:
        code = main(
            ["-p", "harness_testplugin", *argv, "--out", str(tmp_path / "runs")] if argv[:1] == ["run"] else argv
        )
    except SystemExit as exit_:  # --help / --version style exits from argparse
        code = exit_.code
    assert code in (0, 2), capsys.readouterr().err
    assert "Traceback" not in capsys.readouterr().err


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(max_size=200)
    | st.from_regex(r"task: [a-z{}\[\]:,' ]{0,20}\n(args|version|model): .{0,20}", fullmatch=True)
)
def test_malformed_presets_are_usage_errors(text, tmp_path, capsys):
    folder = tmp_path / "presets"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(text)
    assert main(["-p", "harness_testplugin", "list", "tasks", "--include-path", str(folder)]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(max_size=40) | st.just('{"id": "ex1", "hit": 1.0}'), min_size=1, max_size=5))
def test_malformed_samples_file_is_a_usage_error(lines, tmp_path, capsys):
    out = Path(tempfile.mkdtemp(dir=tmp_path))
    argv = ["-p", "harness_testplugin", "run", "--task", "counting", "--task-args", "n=3", "--out", str(out)]
    assert main(argv) == 0
    samples = next(out.glob("counting-*/samples.jsonl"))
    samples.write_text("\n".join(lines) + "\n")
    assert main(argv) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
