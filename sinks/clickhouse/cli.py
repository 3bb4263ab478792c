"""Commands: `yuqing db migrate|status`, `yuqing query`, `yuqing sink clickhouse`.

Heavy imports (clickhouse-driver, kafka-python) happen inside the command functions so
that `yuqing --help` stays fast.
"""
from __future__ import annotations

import argparse
import sys


def _settings(args):
    from core.errors import CommandError
    from core.config import ConfigError, load_settings

    try:
        return load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        raise CommandError(f"config: {exc}") from None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _unreachable(ch, exc) -> str:
    from .client import error_text

    return f"ClickHouse at {ch.host}:{ch.port}: {error_text(exc)}"


def cmd_db_migrate(args) -> int:
    from clickhouse_driver.errors import Error as DriverError

    from core.errors import CommandError

    from .client import connect
    from .migrate import MigrationError, migrate

    settings = _settings(args)
    ch = settings.clickhouse
    client = connect(ch)
    # the local stack's server (no SQL access management on 18.16): its users.xml carries the analyst
    users_xml = settings.state_dir / "clickhouse" / "users.xml"
    local = ch.host in ("127.0.0.1", "localhost", "::1") and users_xml.is_file()
    try:
        result = migrate(client, ch, log=_say, users_xml=users_xml if local else None)
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    except (DriverError, OSError, EOFError) as exc:
        raise CommandError(_unreachable(ch, exc)) from None
    finally:
        client.disconnect()
    version = ".".join(map(str, result.server_version))
    if result.applied:
        _say(f"database {ch.database}: applied {len(result.applied)} migration(s) on ClickHouse {version}")
    else:
        _say(f"database {ch.database}: up to date ({len(result.already)} migration(s) applied, ClickHouse {version})")
    return 0


def cmd_db_status(args) -> int:
    from clickhouse_driver.errors import Error as DriverError

    from core.errors import CommandError

    from .client import connect
    from .migrate import MigrationError, applied_migrations, load_migrations

    settings = _settings(args)
    ch = settings.clickhouse
    client = connect(ch)
    try:
        migrations = load_migrations()
        exists = client.execute(
            "SELECT count() FROM system.tables WHERE database = %(db)s AND name = 'schema_migrations'",
            {"db": ch.database})[0][0]
        done = applied_migrations(client, ch.database) if exists else {}
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    except (DriverError, OSError, EOFError) as exc:
        raise CommandError(_unreachable(ch, exc)) from None
    finally:
        client.disconnect()
    pending = 0
    for mig in migrations:
        if mig.version not in done:
            state, pending = "pending", pending + 1
        elif done[mig.version][1] != mig.checksum:
            state = "CHANGED after apply"
        else:
            state = "applied"
        print(f"{mig.filename}\t{state}")
    return 1 if pending else 0


def cmd_query(args) -> int:
    from clickhouse_driver.errors import Error as DriverError
    from clickhouse_driver.errors import ServerException

    from core.errors import CommandError

    from .client import error_text
    from .query import QueryInputError, check_placeholders, parse_params, render, run_query

    sql = sys.stdin.read() if args.sql == "-" else args.sql
    if not sql.strip():
        raise CommandError("empty SQL")
    try:
        params = parse_params(args.param or [])
        check_placeholders(sql, params)
    except QueryInputError as exc:
        raise CommandError(str(exc), code=2) from None
    settings = _settings(args)
    ch = settings.clickhouse
    try:
        columns, rows = run_query(ch, sql, params)
    except ServerException as exc:
        raise CommandError(error_text(exc)) from None
    except KeyError as exc:  # clickhouse-driver: a %(name)s without a --param
        raise CommandError(f"the SQL uses parameter {exc} but no --param {exc.args[0]}=... was given", 2) from None
    except (ValueError, TypeError) as exc:
        raise CommandError(f"cannot bind parameters: {exc} (write a literal % as %%)", 2) from None
    except (DriverError, OSError, EOFError) as exc:
        raise CommandError(_unreachable(ch, exc)) from None
    sys.stdout.write(render(args.format, columns, rows))
    if args.format == "table":
        _say(f"{len(rows)} row(s)")
    return 0


def cmd_sink_clickhouse(args) -> int:
    import logging
    import signal
    import threading

    from clickhouse_driver.errors import Error as DriverError
    from prometheus_client import start_http_server

    from core.errors import CommandError

    from .sink import GROUP_ID, ClickHouseSink, SinkOptions

    settings = _settings(args)
    if args.batch_size is None:
        args.batch_size = SinkOptions.batch_size
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1", 2)
    if args.batch_interval <= 0:
        raise CommandError("--batch-interval must be positive", 2)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not args.no_metrics:
        try:
            start_http_server(settings.metrics.sink_port, addr=settings.metrics.host)
        except OSError as exc:
            raise CommandError(f"metrics port {settings.metrics.sink_port}: {exc.strerror}") from None
        _say(f"metrics on http://{settings.metrics.host}:{settings.metrics.sink_port}/metrics")
    options = SinkOptions(batch_size=args.batch_size, batch_interval_s=args.batch_interval,
                          idle_exit_s=args.idle_exit, group_id=args.group_id or GROUP_ID)
    sink = ClickHouseSink(settings, options, stop_event=stop)
    _say(f"consuming {', '.join(sink.routes)} from {settings.kafka.bootstrap} "
         f"into ClickHouse {settings.clickhouse.host}:{settings.clickhouse.port}/{settings.clickhouse.database}")
    try:
        stats = sink.run()
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None
    except (DriverError, OSError, EOFError) as exc:
        raise CommandError(_unreachable(settings.clickhouse, exc)) from None
    _say(f"stopped: {stats.records} record(s) in {stats.batches} batch(es), inserted {stats.inserted}, "
         f"{stats.duplicates} duplicate(s) skipped, {stats.rejected} rejected")
    return 0


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="settings YAML (default: $YUQING_CONFIG)")


def register(subparsers, sink_subparsers) -> None:
    """Top-level `db` and `query`; `clickhouse` under `yuqing sink`."""
    db = subparsers.add_parser("db", help="ClickHouse schema: migrate, status")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    db.set_defaults(func=lambda a: (db.print_help(sys.stderr), 2)[1])
    p = db_sub.add_parser("migrate", help="apply pending schema migrations (idempotent)",
                          description="Create the Yuqing tables and views; already applied migrations are skipped.")
    _add_config(p)
    p.set_defaults(func=cmd_db_migrate)
    p = db_sub.add_parser("status", help="list migrations and whether they are applied (exit 1 if any pending)")
    _add_config(p)
    p.set_defaults(func=cmd_db_status)

    p = subparsers.add_parser(
        "query", help="run SQL as the read-only analyst user",
        description="Run one SQL statement against the Yuqing database as the read-only analyst user. "
                    "Bind values with --param and %%(name)s placeholders; they are never pasted into the SQL.")
    p.add_argument("sql", metavar="SQL", help="the statement, or - to read it from stdin")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default), csv with a header, or json (one object per line)")
    p.add_argument("--param", action="append", metavar="NAME[:int|float]=VALUE",
                   help="bind a value to %%(NAME)s; repeatable")
    _add_config(p)
    p.set_defaults(func=cmd_query)

    p = sink_subparsers.add_parser(
        "clickhouse", help="store scored posts, assessments, alerts and dead letters in ClickHouse",
        description="Consume posts.scored, risk.assessments, alerts and posts.dlq and insert them in batches; "
                    "offsets are committed after the insert (at-least-once, deduplicated in ClickHouse).")
    p.add_argument("--batch-size", type=int, default=None,
                   help="records per insert batch (default 5000, SinkOptions.batch_size)")
    p.add_argument("--batch-interval", type=float, default=1.0, metavar="SECONDS",
                   help="flush a partial batch after this long (default 1.0)")
    p.add_argument("--group-id", help="Kafka consumer group (default yuqing-sink-clickhouse); a new group "
                                      "reads every topic from its start, e.g. to fill another database")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="exit after this long without records (default: run until SIGTERM)")
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    _add_config(p)
    p.set_defaults(func=cmd_sink_clickhouse)
