"""Options from the command line: ``k=v,...`` parsing and the one validation every factory's options go through.

Task args, model args and optimizer args are all checked here against the signature of the callable that takes
them: an unknown name gets "did you mean", a value of the wrong plain type names the expected type, and both are
one-line UsageErrors (exit status 2).

A factory may declare its options once, as a frozen dataclass of :func:`option` fields (an :class:`Options`
subclass) named by :func:`takes`: the declaration gives the factory's signature, the types, the ranges (checked
when it is built), the defaults and the help text ``harness describe`` prints; the factory gets one typed object.
"""

from __future__ import annotations

import dataclasses
import functools
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
    if declaration(target) is not None:
        return check_types(options, _field_hints(declaration(target)), what, flag)
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


# declared options --------------------------------------------------------------------------------------------------
class OptionError(UsageError, ValueError):
    """A declared option's value is of the wrong type or out of its range (a ValueError, so :func:`build` names
    the task and the flag to fix)."""


def option(default, help: str, *, ge=None, gt=None, le=None, lt=None, choices: tuple | None = None):
    """One declared option: its default, one line of help, and the range (``ge``/``gt``/``le``/``lt``) or the
    ``choices`` its value must lie in."""
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    return dataclasses.field(
        default=default, metadata={"help": help, **{k: v for k, v in bounds.items() if v is not None}}
    )


class Options:
    """Base of a declaration: subclass it as ``@dataclass(frozen=True)`` with :func:`option` fields.

    Building one checks every field's type and range (an int is a fine float and becomes one) and then
    :meth:`check`, so a declared object is always valid, however it was made.
    """

    def __post_init__(self) -> None:
        hints = _field_hints(type(self))
        for field in dataclasses.fields(self):
            value = _checked(field, hints.get(field.name), getattr(self, field.name))
            object.__setattr__(self, field.name, value)
        self.check()

    def check(self) -> None:
        """Rules that join several options (override): raise UsageError naming the fix."""


@functools.cache
def _field_hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _checked(field: dataclasses.Field, hint, value):
    """``value`` as the field's type, or an OptionError naming the option and what it must be."""
    expected, optional = _plain(hint), _allows_none(hint) or field.default is None
    if value is None:
        if optional or expected is None:
            return value
        raise OptionError(f"{field.name}=None: {field.name} must be {expected.__name__}")
    given = value
    if expected is float and type(value) is int:
        value = float(value)
    if expected is not None and not (isinstance(value, expected) and not (expected is int and type(value) is bool)):
        raise OptionError(f"{field.name}={value!r}: {field.name} must be {expected.__name__}")
    allowed = range_text(field.metadata)
    meta = field.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise OptionError(f"{field.name}={value!r}: choose one of {allowed}")
    low = ("ge" in meta and value < meta["ge"]) or ("gt" in meta and value <= meta["gt"])
    high = ("le" in meta and value > meta["le"]) or ("lt" in meta and value >= meta["lt"])
    if low or high:
        raise OptionError(f"{field.name}={given}: give {field.name} {allowed}")
    return value


def _allows_none(hint) -> bool:
    return type(None) in typing.get_args(hint)


def range_text(meta) -> str:
    """'>= 1', 'in (0, 1]', 'a, b, c' (choices): what a declared option's value may be; '' when anything goes."""
    if "choices" in meta:
        return ", ".join(repr(c) if c == "" else str(c) for c in meta["choices"])
    low = ("[", meta["ge"]) if "ge" in meta else ("(", meta["gt"]) if "gt" in meta else None
    high = ("]", meta["le"]) if "le" in meta else (")", meta["lt"]) if "lt" in meta else None
    if low and high:
        return f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    if high:
        return f"{'<=' if high[0] == ']' else '<'} {high[1]}"
    return ""


def takes(options_class: type[Options]):
    """Decorate a factory (class or function) whose one parameter is an ``options_class`` object.

    The factory then takes the declaration's fields as keywords (its signature says so, for :func:`accepted`,
    sweeps and ``describe``), and still takes a ready declaration object as its one positional argument.
    """

    def decorate(factory):
        is_class = inspect.isclass(factory)
        target = factory.__init__ if is_class else factory

        @functools.wraps(target)
        def wrapper(*args, **kwargs):
            head, given = (args[:1], args[1:]) if is_class else ((), args)  # a class's __init__ gets self first
            if not given:
                given = (options_class(**kwargs),)
            elif kwargs or len(given) > 1 or not isinstance(given[0], options_class):
                raise TypeError(f"{factory.__name__} takes one {options_class.__name__} or its fields as keywords")
            return target(*head, *given)

        keywords = signature(options_class)
        if is_class:  # the class and its __init__ (with self) both show the keywords
            self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
            wrapper.__signature__ = keywords.replace(parameters=[self, *keywords.parameters.values()])
            factory.__init__ = wrapper
        else:
            factory = wrapper
        factory.__signature__ = keywords
        factory.options = options_class
        return factory

    return decorate


def declaration(factory) -> type[Options] | None:
    """The :class:`Options` class a factory was declared with by :func:`takes`; None for a plain signature."""
    found = getattr(factory, "options", None)
    return found if inspect.isclass(found) and issubclass(found, Options) else None


def signature(declaration: type[Options]) -> inspect.Signature:
    """The keyword signature a declaration gives its factory: one parameter per field, with its default and type."""
    hints = _field_hints(declaration)
    return inspect.Signature(
        [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
            for f in dataclasses.fields(declaration)
        ]
    )


def described(factory) -> list[dict]:
    """One row per option a factory takes: name, type, default, range and help (from its declaration, else from its
    signature and its docstring's ``Args:`` lines)."""
    found = declaration(factory)
    if found is not None:
        hints = _field_hints(found)
        return [
            {
                "option": f.name,
                "type": type_name(hints[f.name]),
                "default": f.default,
                "range": range_text(f.metadata),
                "help": f.metadata.get("help", ""),
            }
            for f in dataclasses.fields(found)
        ]
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return []
    helps = docstring_args(inspect.getdoc(factory.__init__ if inspect.isclass(factory) else factory) or "")
    if inspect.isclass(factory):
        helps = {**docstring_args(inspect.getdoc(factory) or ""), **helps}
    return [
        {"option": n, "type": type_name(p.annotation), "default": p.default, "range": "", "help": helps.get(n, "")}
        for n, p in parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"
    ]


def type_name(annotation) -> str:
    """'int', 'str | None': an annotation as a user reads it."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str) or not isinstance(annotation, type):
        return str(annotation).replace("typing.", "").replace("NoneType", "None")
    return annotation.__name__


def docstring_args(doc: str) -> dict[str, str]:
    """``{name: help}`` from a Google-style ``Args:`` block (continuation lines joined), markup removed."""
    helps: dict[str, str] = {}
    block, name = False, None
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            block = True
            continue
        if not block:
            continue
        if line and not line[0].isspace():
            break
        match = re.match(r"\s{2,8}(\w+)(?: \([^)]*\))?: (.*)", line)
        if match and len(line) - len(line.lstrip()) <= 8:
            name = match.group(1)
            helps[name] = match.group(2).strip()
        elif name and line.strip():
            helps[name] += " " + line.strip()
    return {k: plain_text(v) for k, v in helps.items()}


def doc_text(doc: str) -> str:
    """A factory's docstring for ``describe``: without its ``Args:`` block (the options table shows each option's
    help) and without markup."""
    kept, skipping = [], False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            skipping = True
        elif skipping and line and not line[0].isspace():
            skipping = False
        if not skipping:
            kept.append(line)
    return plain_text("\n".join(kept).strip())


def plain_text(text: str) -> str:
    """Docstring markup as plain text: ``:mod:`x``` -> x, ````x```` -> x."""
    text = re.sub(r":[\w:]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)
