"""CLI for `yuqing stack` and `yuqing setup`."""
from __future__ import annotations

import json
import sys

from core.config import ConfigError, load_settings


def _settings(args):
    from core.errors import CommandError

    try:
        return load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        raise CommandError(f"bad configuration: {exc}") from None


def _run_stack(args) -> int:
    from core.errors import CommandError
    from yuqing.stack import manager
    from yuqing.stack.components import StackError

    settings = _settings(args)
    try:
        if args.action == "up":
            print(f"yuqing stack up: state folder {settings.state_dir}", file=sys.stderr)
            statuses = manager.up(settings, args.components, timeout_s=args.timeout, flink=args.flink_cluster)
        elif args.action == "down":
            manager.down(settings, args.components, purge=args.purge)
            return 0
        else:
            statuses = manager.status(settings, args.components, flink=args.flink_cluster)
    except StackError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps([s.__dict__ for s in statuses]))
    else:
        for s in statuses:
            pid = f"pid {s.pid}" if s.pid else "-"
            print(f"{s.name:<19} {s.state:<10} {pid:<11} {s.address}")
    return 0 if all(s.healthy for s in statuses) else 1


def _run_setup(args) -> int:
    from core.errors import CommandError
    from yuqing.setup import SetupError, run_setup

    settings = _settings(args)
    try:
        run_setup(settings, skip_apt=args.skip_apt, skip_models=args.skip_models)
    except SetupError as exc:
        raise CommandError(str(exc)) from None
    return 0


def register(subparsers) -> None:
    stack = subparsers.add_parser(
        "stack", help="start, stop or inspect the local stack (Kafka, ClickHouse, Prometheus, Alertmanager)",
        description="Manage the local single-node stack under the state folder (default .yuqing/).",
    )
    stack.add_argument("action", choices=("up", "down", "status"))
    stack.add_argument("components", nargs="*", metavar="COMPONENT",
                       help="kafka, clickhouse, prometheus, alertmanager, flink (default: all; "
                            "flink only with --flink-cluster, or when it is running)")
    stack.add_argument("--config", help="YAML settings file (or YUQING_CONFIG)")
    stack.add_argument("--purge", action="store_true", help="with down: also delete the data")
    stack.add_argument("--flink-cluster", action="store_true",
                       help="with up/status: also a local standalone Flink cluster (JobManager + 2 TaskManagers) "
                            "for `yuqing job submit`; `down` stops it whenever it runs")
    stack.add_argument("--timeout", type=float, default=None, help="seconds each component may take to become healthy")
    stack.add_argument("--json", action="store_true", help="print status as JSON")
    stack.set_defaults(func=_run_stack)

    setup = subparsers.add_parser(
        "setup", help="install Debian packages, fetch the Kafka broker and Flink connector jars, build models",
        description="One-time set-up; safe to run again (does only what is missing).",
    )
    setup.add_argument("--config", help="YAML settings file (or YUQING_CONFIG)")
    setup.add_argument("--skip-apt", action="store_true", help="do not install Debian packages")
    setup.add_argument("--skip-models", action="store_true", help="do not build the default sentiment model")
    setup.set_defaults(func=_run_setup)
