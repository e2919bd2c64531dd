import pytest
from cli_helpers import run_harness

from harness.errors import UsageError
from harness.presets import load_presets, parse_preset


def test_valid_preset():
    preset = parse_preset("p", "task: counting\nversion: 3\nargs: {n: 5}\n", "p.yaml")
    assert (preset.task, preset.version, preset.args) == ("counting", "3", {"n": 5})


@pytest.mark.parametrize(
    "text, message",
    [
        ("task: [unclosed", "p.yaml: line 1 is not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("version: 1\n", "missing key 'task'"),
        ("task: x\nargz: {}\n", "unknown key 'argz'"),
        ("task: x\nargs: [1, 2]\n", "key 'args' must be dict"),
        ("task: !!python/object:os.system x\n", "not valid YAML"),
    ],
)
def test_invalid_presets_name_file_key_and_expectation(text, message):
    with pytest.raises(UsageError, match=message):
        parse_preset("p", text, "p.yaml")


def test_include_path_adds_and_overrides(tmp_path):
    (tmp_path / "mine.yaml").write_text("task: counting\nargs: {n: 7}\ndescription: seven\n")
    presets = load_presets([str(tmp_path)])
    assert presets["mine"].args == {"n": 7}
    with pytest.raises(UsageError, match="not a directory"):
        load_presets([str(tmp_path / "missing")])


def test_preset_through_the_cli(tmp_path):
    (tmp_path / "seven.yaml").write_text("task: counting\nversion: '5'\nargs: {n: 7}\n")
    result = run_harness(
        "-p",
        "harness_testplugin",
        "run",
        "--task",
        "seven",
        "--include-path",
        tmp_path,
        "--out",
        tmp_path / "runs",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "broken.yaml").write_text("task: counting\nargs: 3\n")
    result = run_harness("-p", "harness_testplugin", "list", "tasks", "--include-path", tmp_path)
    assert result.returncode == 2
    assert "broken.yaml: key 'args' must be dict" in result.stderr


def test_alias_bombs_binary_and_huge_files_are_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, n in zip("abcdefgh", "bcdefghi")
    )
    (tmp_path / "bomb.yaml").write_text("task: counting\nargs: {}\n" + bomb)
    with pytest.raises(UsageError, match="aliases"):
        load_presets([str(tmp_path)])
    (tmp_path / "bomb.yaml").unlink()
    (tmp_path / "binary.yaml").write_bytes(b"task: counting\n\xff\xfe\x00\x01")
    result = run_harness("list", "tasks", "--include-path", tmp_path)
    assert result.returncode == 2 and "binary.yaml: not UTF-8" in result.stderr
    (tmp_path / "binary.yaml").write_text("task: counting\n" + "#" * (2 << 20))
    with pytest.raises(UsageError, match="over the"):
        load_presets([str(tmp_path)])
