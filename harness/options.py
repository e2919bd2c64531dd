"""Options from the command line: ``k=v,...`` parsing and the one validation every factory's options go through.

Task args, model args and optimizer args are all checked here against the signature of the callable that takes
them: an unknown name gets "did you mean", a value of the wrong plain type names the expected type, and both are
one-line :class:`UsageError` s (exit status 2).
"""

from __future__ import annotations

import inspect
import re
import typing

from harness.errors import UsageError, unknown

SECRET = re.compile(r"(^|_)(api_?key|token|password|passwd|secret|authorization|auth)$", re.I)


def parse_kv(text: str | None, flag: str) -> dict:
    """'a=1,b=x,c=true' -> {'a': 1, 'b': 'x', 'c': True}; a comma only splits where a new 'key=' follows.

    A secret-looking key (api_key, token, password, ...) is refused before anything is written: options are
    recorded in the run's config and command line, so secrets come from the environment instead.
    """
    if not text:
        return {}
    out = {}
    for part in re.split(r",(?=\s*[A-Za-z_][\w.-]*=)", text):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][\w.-]*", key):
            raise UsageError(f"{flag} '{text}': expected key=value pairs separated by commas, e.g. {flag} a=1,b=x")
        if SECRET.search(key):
            raise UsageError(
                f"{flag} {key}=...: secrets are never taken as options (run records keep options); "
                "set it in the environment, e.g. OPENAI_API_KEY, or name the variable with "
                "--model-args api_key_env=NAME"
            )
        out[key] = parse_scalar(value.strip())
    return out


def parse_scalar(value: str):
    """Numbers and booleans from text; everything else stays a string (never evaluated)."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def accepted(target) -> list[str] | None:
    """The keyword names ``target`` (a function or class) takes; None when it takes any (``**kwargs``)."""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return [n for n, p in parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def validate(target, options: dict, what: str, flag: str, skip: tuple[str, ...] = ()) -> None:
    """Raise a one-line UsageError for an option ``target`` does not take or a value of the wrong plain type.

    ``what`` names the thing ("task 'graph_cot'", "backend 'hf'"), ``flag`` the flag to fix ("--task-args");
    ``skip`` lists parameters that are not the user's to set (a backend's ``target``).
    """
    names = accepted(target)
    if names is not None:
        check_names(options, [n for n in names if n not in skip and n != "self"], what, flag)
    _check_types(target, options, what, flag)


def check_names(options: dict, names, what: str, flag: str) -> None:
    """The name half of :func:`validate`, for options declared by a list (e.g. a dataclass's fields)."""
    for key in options:
        if key not in names:
            hint = str(unknown("option", key, names)).split(": ", 1)[1]
            raise UsageError(f"{what} has no option '{key}' ({flag}); {hint}")


def _check_types(target, options: dict, what: str, flag: str) -> None:
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:
        return
    check_types(options, hints, what, flag)


def check_types(options: dict, hints: dict, what: str, flag: str) -> None:
    """A value must match a plain int/float/bool/str annotation (an int is a fine float; None is always allowed)."""
    for key, value in options.items():
        expected = _plain(hints.get(key))
        if expected is None or value is None:
            continue
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise UsageError(f"{what}: option '{key}' must be {expected.__name__}, got {value!r}; fix {flag}")


def _plain(hint):
    """int/float/bool/str for ``T`` or ``T | None``; None for anything richer."""
    if hint in (int, float, bool, str):
        return hint
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) == 1 and args[0] in (int, float, bool, str):
        return args[0]
    return None


def build(factory, options: dict, what: str, flag: str):
    """Call ``factory(**options)`` after :func:`validate`; a TypeError or ValueError it raises becomes a UsageError."""
    validate(factory, options, what, flag)
    try:
        return factory(**options)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what}: {exc}; fix {flag}") from None
