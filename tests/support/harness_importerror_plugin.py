"""A plugin that fails on import."""

raise ImportError("this plugin cannot be imported")
