import pytest


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct, converted once into $HARNESS_CACHE, in float32."""
    from harness.backends import load

    lm = load("hf:smollm2")
    yield lm
    lm.close()
