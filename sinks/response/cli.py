"""`yuqing respond | ack | resolve | remind`: the PR team's response tools.

`register(subparsers)` adds the four commands (wired into `yuqing` by the lead).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "respond", help="print the response plan and statement drafts for one alert",
        description="Render the response library's steps and statement drafts (0-2 h, 2-12 h, "
                    "afterwards) for one alert, filled with its facts. The alert comes from the "
                    "ClickHouse `alerts` table, or from --alert-file (offline).")
    p.add_argument("alert_id", nargs="?", metavar="ALERT_ID", help="alert id (optional with --alert-file or --lint)")
    p.add_argument("--alert-file", metavar="FILE", help="an `alerts` record as JSON, or JSON lines of them "
                   "(the latest event of ALERT_ID is used)")
    p.add_argument("--templates", metavar="DIR", help="template directory (default: sinks/response/templates)")
    p.add_argument("--kind", help="watchlist category kind (e.g. user_rights) used when no template "
                   "matches the category name")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument("--lint", action="store_true", help="only validate the templates and list them")
    p.set_defaults(func=run_respond)

    p = subparsers.add_parser(
        "ack", help="take an alert: record who owns it; prints the time since first detection",
        description="Record in ClickHouse (alert_actions) that NAME took the alert, and print the "
                    "elapsed time since first detection against the first deadline.")
    p.add_argument("alert_id", metavar="ALERT_ID")
    p.add_argument("--by", required=True, metavar="NAME", help="who takes the alert")
    _common_action_args(p)
    p.set_defaults(func=run_ack)

    p = subparsers.add_parser(
        "resolve", help="close an alert; prints the response time against the deadline",
        description="Record in ClickHouse that the alert is resolved (reminders stop) and print "
                    "the time since first detection against the last deadline.")
    p.add_argument("alert_id", metavar="ALERT_ID")
    p.add_argument("--by", metavar="NAME", help="who closes it (default: whoever acked it)")
    _common_action_args(p)
    p.set_defaults(func=run_resolve)

    p = subparsers.add_parser(
        "remind", help="page on-call before each response deadline of open alerts",
        description="For every open (unresolved) alert, send one reminder per deadline (first "
                    "statement at 2 h, facts and plan at 12 h, …) through the notifier's channels, "
                    "LEAD minutes before it is due; each reminder once (recorded in ClickHouse).")
    p.add_argument("--once", action="store_true", help="one round, then exit (for cron)")
    p.add_argument("--notify-config", metavar="NOTIFY_YAML", help="channels, as for `yuqing notify --config`")
    p.add_argument("--lead-min", type=float, default=30.0, help="minutes before a deadline (default 30)")
    p.add_argument("--interval-s", type=float, default=60.0, help="seconds between rounds (default 60)")
    p.add_argument("--lookback-h", type=float, default=72.0, help="only alerts detected in the last N hours (default 72)")
    p.add_argument("--templates", metavar="DIR", help="template directory for the drafts")
    p.add_argument("--dry-run", action="store_true", help="print due reminders; send and record nothing")
    p.set_defaults(func=run_remind)


def _common_action_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--at", metavar="TIME", help="when (RFC 3339; default: now)")
    p.add_argument("--note", default="", help="free text stored with the action")


def _error(message: str):
    from core.errors import CommandError

    return CommandError(message)


def _parse_at(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _error(f"--at: not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise _error(f"--at: {value!r} lacks a UTC offset (e.g. +08:00)")
    return parsed.astimezone(timezone.utc)


def _library(directory: str | None):
    from .library import TemplateError, default_library, load_library

    try:
        return load_library(directory) if directory else default_library()
    except TemplateError as exc:
        raise _error(f"templates: {exc}") from None


def _settings():
    from core.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        raise _error(str(exc)) from None


def _store():
    from .store import ResponseStore

    return ResponseStore(_settings().clickhouse)


def _db_error(exc: Exception, settings_ch) -> Exception:
    from sinks.clickhouse.client import error_text

    return _error(f"ClickHouse at {settings_ch.host}:{settings_ch.port} (database {settings_ch.database}): "
                  f"{error_text(exc)}")


def read_alert_file(path: str, alert_id: str | None) -> dict[str, Any]:
    """One alert from a JSON object or JSON lines; with several, the latest event of the id."""
    file = Path(path)
    if not file.is_file():
        raise _error(f"--alert-file {path} does not exist")
    text = file.read_text(encoding="utf-8")
    records: list[Any] = []
    try:
        records = [json.loads(text)]
    except ValueError:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError as exc:
                    raise _error(f"--alert-file {path}: line {n}: invalid JSON ({exc.msg})") from None
    if records and isinstance(records[0], list):
        records = records[0]
    records = [r for r in records if isinstance(r, dict)]
    if alert_id:
        records = [r for r in records if r.get("alert_id") == alert_id]
    if not records:
        raise _error(f"--alert-file {path}: no alert record" + (f" with alert_id {alert_id}" if alert_id else ""))
    ids = {r.get("alert_id") for r in records}
    if len(ids) > 1:
        raise _error(f"--alert-file {path} holds {len(ids)} alerts: name one ALERT_ID")
    return max(records, key=lambda r: str(r.get("at") or ""))


def run_respond(args: argparse.Namespace) -> int:
    from .drafts import render_drafts
    from .facts import FactsError, facts_from_alert

    library = _library(args.templates)
    if args.lint:
        seen = set()
        for tpl in library.templates.values():
            if tpl.path in seen:
                continue
            seen.add(tpl.path)
            print(f"{tpl.path.name}\t{tpl.category}\t{','.join(tpl.applies_to)}\t{tpl.title}")
        print(f"templates OK: {len(seen)} file(s) in {library.directory}", file=sys.stderr)
        return 0
    if args.alert_file:
        alert = read_alert_file(args.alert_file, args.alert_id)
    else:
        if not args.alert_id:
            raise _error("give an ALERT_ID (or --alert-file FILE)")
        store = _store()
        try:
            alert = store.enriched_alert(args.alert_id)
        except Exception as exc:  # noqa: BLE001 - reported as one line
            raise _db_error(exc, store.ch) from None
        finally:
            store.close()
        if alert is None:
            raise _error(f"no alert {args.alert_id} in ClickHouse table {store.db}.alerts")
    try:
        drafts = render_drafts(facts_from_alert(alert), library, kind=args.kind)
    except FactsError as exc:
        raise _error(str(exc)) from None
    if args.format == "json":
        print(json.dumps(drafts.to_dict(), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(drafts.to_text(markdown=args.format == "markdown"))
    return 0


def _record(args: argparse.Namespace, action: str) -> int:
    from .clock import describe_ack, describe_deadlines, describe_resolve

    at = _parse_at(args.at)
    store = _store()
    try:
        alert = store.alert(args.alert_id)
        if alert is None:
            raise _error(f"no alert {args.alert_id} in ClickHouse table {store.db}.alerts")
        before = store.clock(alert)
        if before.resolved_at is not None:
            raise _error(f"alert {args.alert_id} was already resolved at {before.resolved_at.isoformat()}"
                         + (f" by {before.resolved_by}" if before.resolved_by else ""))
        actor = args.by or (before.acked_by if action == "resolved" else None) or ""
        if action == "acked" and before.acked_at is not None:
            print(f"yuqing ack: note: already acked by {before.acked_by}; the first ack counts for the "
                  "response time", file=sys.stderr)
        store.record(args.alert_id, action, actor, at, args.note)
        after = store.clock(alert)
    except Exception as exc:  # noqa: BLE001
        from core.errors import CommandError

        if isinstance(exc, CommandError):
            raise
        raise _db_error(exc, store.ch) from None
    finally:
        store.close()
    if action == "acked":
        print(describe_ack(after))
        print("\n".join(describe_deadlines(after, at)))
    else:
        print(describe_resolve(after))
        if after.acked_at is not None:
            print(describe_ack(after))
    return 0


def run_ack(args: argparse.Namespace) -> int:
    if not args.by.strip():
        raise _error("--by: give the name of who takes the alert")
    return _record(args, "acked")


def run_resolve(args: argparse.Namespace) -> int:
    return _record(args, "resolved")


def run_remind(args: argparse.Namespace) -> int:
    import signal
    import threading

    from sinks.notify.config import NotifyConfigError, load_notify_config

    from .remind import run_once

    if args.lead_min < 0 or args.interval_s <= 0 or args.lookback_h <= 0:
        raise _error("--lead-min must be >= 0, --interval-s and --lookback-h > 0")
    try:
        config = load_notify_config(args.notify_config)
    except NotifyConfigError as exc:
        raise _error(str(exc)) from None
    if not config.channels and not args.dry_run:
        raise _error("no notify channels configured: pass --notify-config NOTIFY_YAML "
                     "(the file of `yuqing notify --config`), or --dry-run")
    library = _library(args.templates)
    stop = threading.Event()
    if not args.once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    store = _store()
    try:
        while True:
            started = time.monotonic()
            try:
                outcomes = run_once(store, config, datetime.now(timezone.utc),
                                    lead=timedelta(minutes=args.lead_min),
                                    lookback=timedelta(hours=args.lookback_h), library=library,
                                    dry_run=args.dry_run)
            except Exception as exc:  # noqa: BLE001
                if args.once:
                    raise _db_error(exc, store.ch) from None
                print(f"yuqing remind: round failed: {exc}", file=sys.stderr)
                store.close()
                outcomes = []
            for o in outcomes:
                if args.dry_run:
                    print(f"{o.alert_id}\t{o.deadline}\t(dry run)\n{o.text}\n")
                else:
                    state = "sent to " + ",".join(o.sent_to) if o.sent_to else "NOT sent"
                    failed = f" (failed: {','.join(o.failed)})" if o.failed else ""
                    print(f"{o.alert_id}\t{o.deadline}\t{state}{failed}", flush=True)
            if args.once:
                return 1 if any(not o.sent_to for o in outcomes) and not args.dry_run else 0
            if stop.wait(max(0.0, args.interval_s - (time.monotonic() - started))):
                return 0
    finally:
        store.close()
