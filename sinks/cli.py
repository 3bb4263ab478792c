"""Commands of the sinks: `yuqing sink NAME` plus each sink's own top-level commands.

Each module in SINK_COMMAND_MODULES exposes either `register(subparsers, sink_subparsers)`
(top-level commands on `subparsers`, sink runners under `yuqing sink`) or plain
`register(subparsers)` for top-level commands only. Add a sink by adding its module here.
"""
from __future__ import annotations

import importlib
import inspect
import sys

SINK_COMMAND_MODULES = (
    "sinks.clickhouse.cli",
    "sinks.notify.cli",
)


def register(subparsers) -> None:
    sink = subparsers.add_parser("sink", help="run a sink: consume Kafka, write to a store or notifier")
    sink_subparsers = sink.add_subparsers(dest="sink", metavar="SINK")
    sink.set_defaults(func=lambda args: (sink.print_help(sys.stderr), 2)[1])
    for name in SINK_COMMAND_MODULES:
        module = importlib.import_module(name)
        if len(inspect.signature(module.register).parameters) >= 2:
            module.register(subparsers, sink_subparsers)
        else:
            module.register(subparsers)
