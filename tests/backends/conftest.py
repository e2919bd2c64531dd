"""Fixtures for the backend tests: the tiny Llama (``tiny_folder``, tests/conftest.py) through the hf engine, beside
the real SmolLM2 (tests/conftest.py, for a few parity checks)."""

import pytest


@pytest.fixture(scope="session")
def tiny(tiny_folder):
    """The tiny model through the hf engine, float32."""
    from harness.backends.hf import HFLM

    return HFLM(tiny_folder)
