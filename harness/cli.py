"""The ``harness`` command. Importing this module must stay cheap: no torch, transformers or vllm."""

from __future__ import annotations

import argparse
import os
import re
import sys

from harness import __version__
from harness.errors import UsageError, unknown
from harness.registry import Plugins, duplicate, set_plugins


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) and suggests close subcommand names."""

    def error(self, message):
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'?([\w-]+)'?", match.group(2))
            raise unknown("command", match.group(1), choices)
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class Commands:
    """What ``harness_register_commands`` receives: a way to add subcommands (the built-in ones come the same way)."""

    def __init__(self, subparsers):
        self.subparsers = subparsers
        self.plugin = ""  # the plugin whose hook is adding commands now
        self.owners: dict[str, str] = {}  # command -> the plugin that added it

    def command(self, name: str, help: str, configure, handler) -> None:
        if name in self.owners:
            raise duplicate("command", name, self.owners[name], self.plugin)
        self.owners[name] = self.plugin
        parser = self.subparsers.add_parser(name, help=help, description=help)
        configure(parser)
        parser.set_defaults(handler=handler)


def build_parser(plugins: Plugins) -> Parser:
    """The ``harness`` parser with every subcommand the plugins add (built-ins first, see registry.BUILTIN)."""
    parser = Parser(prog="harness", description="Evaluate, train and probe language models; results in ./runs.")
    parser.add_argument(
        "-p",
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="load a plugin module for this command (repeatable)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    cli = Commands(parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser))

    def kwargs_for(plugin_name: str) -> dict:
        cli.plugin = plugin_name
        return {"cli": cli}

    plugins.call_each("harness_register_commands", kwargs_for)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("-p", "--plugin", action="append", default=[])
    early.add_argument("--debug", action="store_true")
    known, _ = early.parse_known_args(argv)
    debug = known.debug or bool(os.environ.get("HARNESS_DEBUG"))
    try:
        plugins = set_plugins(Plugins(extra_modules=known.plugin))
        parser = build_parser(plugins)
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 0
        from harness.workers import interrupt_on_sigterm

        with interrupt_on_sigterm():
            return args.handler(args) or 0
    except UsageError as exc:
        if debug:
            raise
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if debug:
            raise
        print(f"harness: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
