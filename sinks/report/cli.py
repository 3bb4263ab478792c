"""`yuqing report`: the weekly report (register(subparsers) is wired into `yuqing` by the lead)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="build the weekly report (舆情周报) as one offline HTML file",
        description="Read posts, alerts and the response clock from ClickHouse and write the "
                    "weekly report: volume and sentiment trends per brand (inline SVG charts), the "
                    "alerts with their levels and response times against the deadlines, top posts "
                    "and spreaders by platform, and rising categories. Dates are Beijing days, both "
                    "included.")
    p.add_argument("--from", dest="date_from", required=True, metavar="DATE", help="first day, e.g. 2026-11-16")
    p.add_argument("--to", dest="date_to", required=True, metavar="DATE", help="last day (included)")
    p.add_argument("--brand", metavar="B", help="only this brand")
    p.add_argument("--out", required=True, metavar="report.html", help="HTML file to write ('-': stdout)")
    p.add_argument("--markdown", metavar="report.md", help="also write a Markdown version")
    p.add_argument("--top", type=int, default=3, metavar="N", help="top posts and spreaders per platform (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sinks.clickhouse.client import error_text
    from sinks.response.store import ResponseStore
    from core.errors import CommandError
    from core.config import ConfigError, load_settings

    from .data import Period, load_report, parse_day
    from .render import render_html, render_markdown

    try:
        period = Period.from_dates(parse_day(args.date_from, "--from"), parse_day(args.date_to, "--to"))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if period.days > 366:
        raise CommandError(f"--from/--to span {period.days} days; a report covers at most a year")
    if not 1 <= args.top <= 50:
        raise CommandError("--top must be between 1 and 50")
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    ch = settings.clickhouse
    store = ResponseStore(ch)
    try:
        data = load_report(store, period, args.brand, top_n=args.top)
    except Exception as exc:  # noqa: BLE001 - one line for the user
        raise CommandError(f"ClickHouse at {ch.host}:{ch.port} (database {ch.database}): {error_text(exc)}") from None
    finally:
        store.close()
    html = render_html(data)
    try:
        if args.out == "-":
            sys.stdout.write(html)
        else:
            Path(args.out).write_text(html, encoding="utf-8")
        if args.markdown:
            Path(args.markdown).write_text(render_markdown(data), encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write the report: {exc.strerror or exc} ({exc.filename})") from None
    print(f"yuqing report: {len(data.brands)} brand(s), {data.total_posts()} posts, {len(data.alerts)} alert(s) "
          f"-> {args.out}" + (f", {args.markdown}" if args.markdown else ""), file=sys.stderr)
    return 0
