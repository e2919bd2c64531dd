"""Documents from ``datasets.load_dataset`` and the Jinja2 fields that turn a document into a prompt.

Local files (``dataset_path: json`` with ``dataset_kwargs.data_files``, or ``dataset_path: data.jsonl``) are read
relative to the YAML, with datasets' cache in a temporary folder, so nothing lands in the user's cache. A hub name
loads as ``datasets`` loads it (its cache, its offline rules); offline and not cached, it is one line.

Templates render in Jinja2's sandbox with undefined names as errors; a list written as text (``"{{choices}}"``) is
read back with ``ast.literal_eval``, never evaluated.
"""

from __future__ import annotations

import ast
import functools
import tempfile
from pathlib import Path

from harness.errors import UsageError

LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def local_files(config) -> list[Path]:
    """The local data files a task reads (empty for a hub dataset)."""
    base = config.source.parent
    suffix = Path(config.dataset_path).suffix
    if suffix in LOCAL_BUILDERS:
        return [base / config.dataset_path]
    if config.dataset_path not in set(LOCAL_BUILDERS.values()):
        return []
    files = config.dataset_kwargs.get("data_files")
    if files is None:
        raise UsageError(
            f"{config.source}: dataset_path {config.dataset_path} needs dataset_kwargs: {{data_files: {{test: FILE}}}}"
        )
    values = files.values() if isinstance(files, dict) else [files]
    paths = []
    for value in values:
        paths += [base / v for v in (value if isinstance(value, list) else [value])]
    return paths


def _absolute_data_files(config) -> dict | list | str:
    files = config.dataset_kwargs["data_files"]
    base = config.source.parent
    if isinstance(files, dict):
        return {k: ([str(base / x) for x in v] if isinstance(v, list) else str(base / v)) for k, v in files.items()}
    return [str(base / x) for x in files] if isinstance(files, list) else str(base / files)


def load_split(config, split: str) -> list[dict]:
    """The documents of one split, in file order."""
    for file in local_files(config):
        if not file.is_file():
            raise UsageError(f"{config.source}: data file {file} does not exist; fix the path (relative to the YAML)")
    return [dict(doc) for doc in _load(config)[_split(config, split)]]


def _split(config, split: str) -> str:
    names = list(_load(config).keys())
    if split not in names:
        raise UsageError(f"{config.source}: split '{split}' not in the dataset (it has {', '.join(names)})")
    return split


_LOADED: dict = {}  # one load per task file and process (a suite of runs, few-shot and test split share it)


def _load(config):
    key = (str(config.source), config.digest, config.dataset_path, config.dataset_name)
    if key not in _LOADED:
        _LOADED[key] = _load_uncached(config)
    return _LOADED[key]


def _load_uncached(config):
    import datasets

    datasets.disable_progress_bars()
    suffix = Path(config.dataset_path).suffix
    try:
        if suffix in LOCAL_BUILDERS:  # a bare file: its rows are the split the YAML scores
            file = str(config.source.parent / config.dataset_path)
            with tempfile.TemporaryDirectory(prefix="harness-datasets-") as cache:
                return datasets.load_dataset(
                    LOCAL_BUILDERS[suffix], data_files={config.eval_split: file}, cache_dir=cache, keep_in_memory=True
                )
        if config.dataset_path in set(LOCAL_BUILDERS.values()):
            kwargs = {**config.dataset_kwargs, "data_files": _absolute_data_files(config)}
            with tempfile.TemporaryDirectory(prefix="harness-datasets-") as cache:
                return datasets.load_dataset(
                    config.dataset_path, config.dataset_name, cache_dir=cache, keep_in_memory=True, **kwargs
                )
        return datasets.load_dataset(config.dataset_path, config.dataset_name, **config.dataset_kwargs)
    except UsageError:
        raise
    except Exception as exc:  # datasets raises many kinds; the user needs the one line that says what to do
        raise UsageError(_load_error(config, exc)) from None


def _load_error(config, exc: Exception) -> str:
    name = config.dataset_path + (f" ({config.dataset_name})" if config.dataset_name else "")
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    offline = any(
        s in text.lower()
        for s in ("offline", "connection", "resolve", "network", "couldn't reach", "max retries", "name or service")
    )
    if offline or _hub_offline():
        return (
            f"dataset '{name}' is not in the local cache and the hub cannot be reached (offline); run once "
            f"online to cache it, or point dataset_path at local files ({config.source})"
        )
    return f"dataset '{name}' could not be loaded: {text[:300]} ({config.source})"


def _hub_offline() -> bool:
    import os

    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


# templates ---------------------------------------------------------------------------------------------------------
# A rendered field is a prompt: a megabyte of characters is already ~250k tokens, past any model's context. The cap
# is checked before a repetition is built (``'a' * 10**8`` would allocate first) and while the output streams.
MAX_RENDERED = 1 << 20
MAX_POWER_BITS = 1 << 16  # ``10 ** 10 ** 9`` would compute for hours; an exponent result past 64k bits is refused


@functools.lru_cache(maxsize=1)
def _environment():
    import re

    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    class Sandbox(SandboxedEnvironment):
        """The sandbox with ``*`` and ``**`` checked: no string, list or number larger than a prompt can use."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator, left, right):
            if operator == "**" and all(isinstance(v, int) for v in (left, right)):
                if right > 0 and abs(left).bit_length() * right > MAX_POWER_BITS:
                    raise jinja2.exceptions.SecurityError(f"{left} ** {right} is too large for a template")
            if operator == "*":
                sized, count = (left, right) if isinstance(right, int) else (right, left)
                if isinstance(sized, str | list | tuple) and isinstance(count, int):
                    if len(sized) * count > MAX_RENDERED:
                        raise jinja2.exceptions.SecurityError(
                            f"a {type(sized).__name__} of {len(sized)} repeated {count} times passes the "
                            f"{MAX_RENDERED}-character cap"
                        )
            return super().call_binop(context, operator, left, right)

    # the loader finds nothing: a template is one YAML field, it cannot include, import or extend files
    env = Sandbox(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, loader=jinja2.FunctionLoader(lambda name: None)
    )
    env.filters["regex_replace"] = lambda s, find, replace: re.sub(find, replace, s)  # as lm-eval's templates use
    return env


@functools.lru_cache(maxsize=256)
def _template(text: str):
    import jinja2

    try:
        return _environment().from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"template {text!r}: {exc.message} (line {exc.lineno}); fix the Jinja2") from None


def render(text: str, doc: dict) -> str:
    """A Jinja2 template over a document's fields."""
    import jinja2

    try:
        size, parts = 0, []
        for part in _template(text).generate(**doc):  # streamed: a loop of small pieces stops at the cap too
            size += len(part)
            if size > MAX_RENDERED:
                raise UsageError(f"template {text!r} renders more than {MAX_RENDERED} characters; shorten it")
            parts.append(part)
        return "".join(parts)
    except jinja2.UndefinedError as exc:
        raise UsageError(f"template {text!r}: {exc.message}; the document has {', '.join(doc)}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise UsageError(f"template {text!r}: {exc} (templates run sandboxed)") from None
    except jinja2.TemplateNotFound as exc:
        raise UsageError(
            f"template {text!r}: cannot load {exc.name!r}; a template is one field (no include, import or extends)"
        ) from None
    except UsageError:
        raise
    except Exception as exc:  # the template's own error (range too big, 1/0, a bad filter argument): one line
        message = str(exc).splitlines()[0] if str(exc).strip() else ""
        raise UsageError(f"template {text!r}: {type(exc).__name__}: {message[:200]}; fix the template") from None


def field_or_template(spec, doc: dict):
    """lm-eval's rule: a field name gives the field's value, anything else renders as a template."""
    if isinstance(spec, str) and spec in doc:
        return doc[spec]
    if isinstance(spec, str):
        return render(spec, doc)
    return spec


def doc_text(config, doc: dict) -> str:
    if config.doc_to_text is None:
        return ""
    return str(field_or_template(config.doc_to_text, doc))


def doc_choices(config, doc: dict) -> list[str] | None:
    spec = config.doc_to_choice
    if spec is None:
        return None
    if isinstance(spec, dict):
        return [str(v) for v in spec.values()]
    if isinstance(spec, list):
        return [str(field_or_template(s, doc)) for s in spec]
    value = field_or_template(spec, doc)
    if isinstance(value, str):
        value = _literal(value, spec)
    if not isinstance(value, list | tuple) or not value:
        raise UsageError(f"doc_to_choice {spec!r} gave {value!r}; it must give a non-empty list of strings")
    return [str(v) for v in value]


def doc_target(config, doc: dict):
    """The gold answer: an index into the choices (multiple choice) or a string."""
    value = field_or_template(config.doc_to_target, doc)
    if isinstance(value, str) and config.doc_to_choice is not None:
        stripped = value.strip()
        if stripped.isdigit():
            return int(stripped)
        if stripped.startswith("[") and stripped.endswith("]"):
            return _literal(stripped, config.doc_to_target)
    return value


def gold_index(config, doc: dict, choices: list[str]) -> int:
    target = doc_target(config, doc)
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < len(choices):
            raise UsageError(f"doc_to_target gave index {target} for {len(choices)} choices; fix the template")
        return target
    if isinstance(target, str) and target in choices:
        return choices.index(target)
    raise UsageError(f"doc_to_target gave {target!r}, neither a choice index nor one of {choices}")


def target_text(config, doc: dict) -> str:
    """The answer as it is written after a few-shot example (the gold choice for multiple choice)."""
    if config.output_type == "multiple_choice":
        choices = doc_choices(config, doc)
        return choices[gold_index(config, doc, choices)]
    value = doc_target(config, doc)
    return str(value[0] if isinstance(value, list) else value)


def _literal(text: str, spec):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise UsageError(f"{spec!r} rendered {text[:80]!r}, which is not a list literal") from None
