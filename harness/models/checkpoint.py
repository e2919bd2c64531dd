"""Model checkpoint folders: ``config.json`` (class + constructor settings), ``model.safetensors``,
``tokenizer.json`` (when there is one) and ``extra.json``. A folder is written beside its final place and
renamed in, so a kill leaves either the old folder or the new one (a leftover ``<dir>.old`` is used when
``<dir>`` is gone).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from harness.errors import UsageError
from harness.store import read_json


def model_spec(model) -> dict:
    """What rebuilds ``model``: its class name and constructor settings."""
    from harness.models.mlp import MLP, ResidualMLP
    from harness.models.model import Transformer

    if isinstance(model, Transformer):
        return {"class": "Transformer", "config": model.config.to_dict()}
    if isinstance(model, (MLP, ResidualMLP)):
        return {"class": type(model).__name__, "config": dict(model.init_args)}
    raise TypeError(f"cannot save a {type(model).__name__}: only harness.models classes have a checkpoint format")


def model_from_spec(spec: dict):
    from harness.models.mlp import MLP, ResidualMLP
    from harness.models.model import ModelConfig, Transformer

    if spec["class"] == "Transformer":
        return Transformer(ModelConfig(**spec["config"]))
    classes = {"MLP": MLP, "ResidualMLP": ResidualMLP}
    return classes[spec["class"]](**spec["config"])


def write_dir_atomic(path: Path, write) -> Path:
    """Call ``write(tmp_dir)``, then swap the folder in (.tmp -> final name; the old one kept as .old)."""
    path = Path(path)
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def existing_dir(path: Path) -> Path | None:
    """``path`` if it exists, else the ``.old`` copy a kill between two renames left behind, else None."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    return path if path.exists() else old if old.exists() else None


def write_model_files(folder: Path, model, tokenizer=None, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(model_spec(model), indent=2) + "\n")
    if tokenizer is not None:
        (folder / "tokenizer.json").write_text(tokenizer.to_json() + "\n")
    (folder / "extra.json").write_text(json.dumps(extra or {}, indent=2, default=str) + "\n")


def save_checkpoint_dir(path, model, tokenizer=None, extra: dict | None = None) -> Path:
    """Write ``model`` (a harness.models class), its tokenizer and JSON-able ``extra`` into ``path``."""
    model = getattr(model, "module", model)  # unwrap DDP
    return write_dir_atomic(Path(path), lambda tmp: write_model_files(tmp, model, tokenizer, extra))


def load_checkpoint_dir(path, device: str = "cpu"):
    """``(model, tokenizer or None, extra)`` from a folder written by :func:`save_checkpoint_dir`."""
    from safetensors.torch import load_file

    from harness.models.tokenizer import WordTokenizer

    folder = existing_dir(Path(path))
    if folder is None or not (folder / "config.json").exists():
        raise UsageError(f"{path}: no checkpoint folder (config.json + model.safetensors) there; check the path")
    fix = f"delete the folder {folder} to make it again (a run trains it anew)"
    model = model_from_spec(read_json(folder / "config.json", fix))
    try:
        weights = load_file(str(folder / "model.safetensors"), device=device)
    except Exception as exc:  # safetensors' own error types: cut short, not a safetensors file, missing
        raise UsageError(f"{folder / 'model.safetensors'} is unreadable ({type(exc).__name__}); {fix}") from None
    model.load_state_dict(weights)
    model.to(device)
    tok_file = folder / "tokenizer.json"
    tokenizer = WordTokenizer.from_json(json.dumps(read_json(tok_file, fix))) if tok_file.exists() else None
    extra_file = folder / "extra.json"
    extra = read_json(extra_file, fix) if extra_file.exists() else {}
    return model, tokenizer, extra
