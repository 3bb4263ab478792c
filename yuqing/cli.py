"""The `yuqing` command: one entry point, subcommands registered by each package.

Each module in COMMAND_MODULES exposes `register(subparsers)`, which adds its
subcommands and sets `func(args) -> int` on them. Modules are imported on start so that
`yuqing --help` lists every command; keep their top-level imports light (no pyflink).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from core.errors import CommandError

COMMAND_MODULES = (
    "yuqing.stack.cli",
    "ingest.cli",
    "scoring.cli",
    "scoring.sentiment.cli",
    "sinks.cli",
    "yuqing.synth_cli",
    "yuqing.run",
    "sinks.response.cli",
    "sinks.report.cli",
    "yuqing.baselines",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yuqing",
        description="Yuqing (舆情雷达): streaming public-opinion monitoring.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that package is not built yet
            raise
        module.register(subparsers)
    return parser


def plug_sensors() -> None:
    """The app's choice of backend for the scoring job's sensors: Prometheus (sinks.metrics).
    Jobs that `yuqing job run|submit` build carry it to their workers by name."""
    from scoring.sensors import plug
    from sinks.metrics import JobMetricsSensor

    plug(JobMetricsSensor)


def main(argv: list[str] | None = None) -> int:
    # A CLI process is never one of PyFlink's Python workers; a flag inherited from a parent
    # that ran a job in-process would stop `yuqing job run` from starting its own JVM.
    os.environ.pop("PYFLINK_GATEWAY_DISABLED", None)
    plug_sensors()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"yuqing {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"yuqing {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
