"""The example third-party plugin, pip-installed for real, is found through its entry point and runs via the CLI."""

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_harness

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "harness-example-plugin"


@pytest.fixture(scope="module")
def installed():
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "install", "-q", "--no-deps", str(EXAMPLE)], check=True, capture_output=True)
    yield
    subprocess.run([*pip, "uninstall", "-q", "-y", "harness-example-plugin"], check=True, capture_output=True)


def test_example_plugin_is_listed(installed):
    result = run_harness("plugins", "--format", "json")
    row = next(r for r in __import__("json").loads(result.stdout) if r["name"] == "example")
    assert row["distribution"] == "harness-example-plugin" and row["version"] == "0.1.0"
    assert "register_tasks" in row["hooks"]
    assert "capitals" in run_harness("list", "tasks").stdout


def test_example_plugin_own_tests_pass(installed):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:]
