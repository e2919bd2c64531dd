"""Plugin manager and registries.

Built-in plugins are ordinary entry points of group ``harness`` (see pyproject.toml), loaded exactly like a third
party's. ``-p/--plugin MODULE`` adds a module for one command; ``HARNESS_DISABLE_PLUGINS=a,b`` skips plugins by
entry-point name; ``HARNESS_TRACE_HOOKS=1`` prints every hook call. A plugin that fails to import or register is
reported once on stderr and the rest keep working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pluggy

from harness import hookspecs
from harness.errors import UsageError, unknown

GROUP = "harness"


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
        if use_entry_points and not os.environ.get("HARNESS_NO_ENTRY_POINTS"):
            for ep in importlib.metadata.entry_points(group=GROUP):
                if ep.name in disabled or self.pm.has_plugin(ep.name):
                    continue
                dist = (ep.dist.name, ep.dist.version) if ep.dist else ("", "")
                self._add(ep.name, ep.load, dist)
        for module in extra_modules:
            if module not in disabled:
                self._add(module, lambda m=module: importlib.import_module(m), ("(--plugin)", ""))

    def _add(self, name: str, load, dist: tuple[str, str]) -> None:
        try:
            self.pm.register(load(), name=name)
            self.dists[name] = dist
        except Exception as exc:  # a broken plugin must not take the others down
            self._fail(name, exc)

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
        hook = getattr(self.pm.hook, f"harness_register_{kind}")
        for impl in reversed(hook.get_hookimpls()):  # call each plugin alone so one failure stays contained
            plugin_name = self.pm.get_name(impl.plugin)

            def register(*args, description: str = "", _plugin=plugin_name, **extra):
                *key, factory = args
                name = ":".join(key)  # components register (kind, name, factory) under "kind:name"
                registry.entries[name] = Entry(name, factory, _plugin, description, extra)

            try:
                impl.function(register)
            except Exception as exc:
                self._fail(plugin_name, exc)
        return registry

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


__all__ = ["Entry", "Plugins", "Registry", "UsageError", "get_plugins", "plugins_with", "set_plugins", "lookup"]
