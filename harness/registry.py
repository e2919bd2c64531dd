"""Plugin manager and registries.

Built-in plugins are ordinary entry points of group ``harness`` (see pyproject.toml), loaded exactly like a third
party's; the core's own subcommands come in through the same hook as a plugin's (:data:`BUILTIN`).
``-p/--plugin MODULE`` adds a module for one command; ``HARNESS_DISABLE_PLUGINS=a,b`` skips plugins by
entry-point name; ``HARNESS_TRACE_HOOKS=1`` prints every hook call. A plugin that fails to import or register is
reported once on stderr and the rest keep working; a name registered twice, or a hook implementation that matches
no hookspec (a misspelling), is a UsageError that names the plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from harness import __version__, hookspecs
from harness.errors import DISTRIBUTION, UsageError, unknown

GROUP = "harness"
# Parts of the core that plug in through the hooks like any plugin (pytest's and tox's internal plugins): loaded
# first whatever the entry points, disabled by name like the others. Imported by name, so no import cycle.
BUILTIN = {"builtin_commands": "harness.commands"}


@dataclass
class Entry:
    """One registered thing: its name, factory, and the plugin that registered it."""

    name: str
    factory: Any
    plugin: str
    description: str = ""
    extra: dict = field(default_factory=dict)


class Registry:
    """Name -> Entry for one kind of thing (tasks, backends, ...), filled by one registration hook."""

    def __init__(self, kind: str):
        self.kind = kind
        self.entries: dict[str, Entry] = {}

    def get(self, name: str) -> Entry:
        if name not in self.entries:
            raise unknown(self.kind, name, self.entries)
        return self.entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __iter__(self):
        return iter(sorted(self.entries.values(), key=lambda e: e.name))


class Plugins:
    """The pluggy manager plus lazily built registries."""

    def __init__(self, extra_modules: list[str] = (), use_entry_points: bool = True):
        self.extra_modules = list(extra_modules)
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.failures: dict[str, str] = {}
        self.dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self._registries: dict[str, Registry] = {}
        if os.environ.get("HARNESS_TRACE_HOOKS"):
            self.pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            self.pm.enable_tracing()
        disabled = {n.strip() for n in os.environ.get("HARNESS_DISABLE_PLUGINS", "").split(",") if n.strip()}
        for name, module in BUILTIN.items():
            if name not in disabled:
                self._add(name, lambda m=module: importlib.import_module(m), (DISTRIBUTION, __version__))
        if use_entry_points and not os.environ.get("HARNESS_NO_ENTRY_POINTS"):
            for ep in importlib.metadata.entry_points(group=GROUP):
                if ep.name in disabled or self.pm.has_plugin(ep.name):
                    continue
                dist = (ep.dist.name, ep.dist.version) if ep.dist else ("", "")
                self._add(ep.name, ep.load, dist)
        for module in extra_modules:
            if module not in disabled:
                self._add(module, lambda m=module: importlib.import_module(m), ("(--plugin)", ""))
        self._check_pending()

    def _add(self, name: str, load, dist: tuple[str, str]) -> None:
        try:
            self.pm.register(load(), name=name)
            self.dists[name] = dist
        except Exception as exc:  # a broken plugin must not take the others down
            self._fail(name, exc)

    def _check_pending(self) -> None:
        """Refuse a ``harness_*`` hook implementation that matches no hookspec: pluggy would never call it."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin)
            hook = next(h.name for h in self.pm.get_hookcallers(exc.plugin) or [] if not h.has_spec())
            specs = [n for n in dir(hookspecs) if n.startswith("harness_")]
            raise UsageError(
                f"plugin '{name}': {unknown('hook', hook, specs)} (fix it, or skip the plugin with "
                f"HARNESS_DISABLE_PLUGINS={name})"
            ) from None

    def _fail(self, name: str, exc: Exception) -> None:
        if name not in self.failures:
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            print(f"harness: plugin '{name}' failed and was skipped: {self.failures[name]}", file=sys.stderr)

    @property
    def hook(self):
        return self.pm.hook

    def registry(self, kind: str) -> Registry:
        """The registry of ``kind`` (tasks, backends, components, probes, optimizers), built on first use."""
        if kind not in self._registries:
            self._registries[kind] = self._collect(kind)
        return self._registries[kind]

    def _collect(self, kind: str) -> Registry:
        registry = Registry(kind.rstrip("s"))

        def register_for(plugin_name: str):
            def register(*args, description: str = "", **extra):
                *key, factory = args
                name = ":".join(key)  # components register (kind, name, factory) under "kind:name"
                if name in registry.entries:
                    raise duplicate(registry.kind, name, registry.entries[name].plugin, plugin_name)
                registry.entries[name] = Entry(name, factory, plugin_name, description, extra)

            return {"register": register}

        self.call_each(f"harness_register_{kind}", register_for)
        return registry

    def call_each(self, hook_name: str, kwargs_for: Callable[[str], dict]) -> None:
        """Call each plugin's implementation of ``hook_name`` alone, in hook order, with ``kwargs_for(plugin_name)``,
        so a registration knows its plugin and one that fails is reported and skipped (a UsageError stops all)."""
        everyone = [plugin for _, plugin in self.pm.list_name_plugin()]
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            plugin_name = self.pm.get_name(impl.plugin)
            only = self.pm.subset_hook_caller(hook_name, [p for p in everyone if p is not impl.plugin])
            try:
                only(**kwargs_for(plugin_name))  # through pluggy, so HARNESS_TRACE_HOOKS shows the call
            except UsageError:
                raise
            except Exception as exc:
                self._fail(plugin_name, exc)

    def listing(self) -> list[dict]:
        """Each plugin with its distribution, version and the hooks it implements."""
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            dist, version = self.dists.get(name, ("", ""))
            rows.append({"name": name, "distribution": dist, "version": version, "hooks": hooks})
        rows += [
            {"name": n, "distribution": "", "version": "", "hooks": [], "error": e} for n, e in self.failures.items()
        ]
        return sorted(rows, key=lambda r: r["name"])


def duplicate(kind: str, name: str, first: str, second: str) -> UsageError:
    """The error for a name two registrations claim: the last one must not silently win."""
    if first == second:
        return UsageError(f"{kind} '{name}' is registered twice by plugin '{first}': register each name once")
    return UsageError(
        f"{kind} '{name}' is registered by two plugins, '{first}' and '{second}': rename or uninstall one, or skip "
        f"one with HARNESS_DISABLE_PLUGINS={second}"
    )


_current: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin set (the CLI replaces it when -p is given)."""
    global _current
    if _current is None:
        _current = Plugins()
    return _current


def set_plugins(plugins: Plugins) -> Plugins:
    global _current
    _current = plugins
    return plugins


def plugins_with(modules: list[str]) -> Plugins:
    """The process-wide plugin set, made with ``modules`` (-p) loaded when it is not yet (a worker process)."""
    global _current
    if _current is None or _current.extra_modules != list(modules):
        _current = Plugins(extra_modules=modules)
    return _current


def lookup(kind: str, name: str) -> Entry:
    """Shortcut: the entry ``name`` in registry ``kind``; raises UsageError with did-you-mean when missing."""
    return get_plugins().registry(kind).get(name)


__all__ = [
    "BUILTIN",
    "Entry",
    "Plugins",
    "Registry",
    "UsageError",
    "duplicate",
    "get_plugins",
    "plugins_with",
    "set_plugins",
    "lookup",
]
