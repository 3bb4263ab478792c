"""`yuqing query`: run SQL as the read-only analyst user; parameters are bound, not pasted.

clickhouse-driver escapes each `--param` value into `%(name)s` (so `'; DROP …` stays a
string literal); a literal `%` in SQL that has parameters must be written `%%`.
"""
from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable
from uuid import UUID

FORMATS = ("table", "csv", "json")
_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::(str|int|float))?=(.*)$", re.S)


class QueryInputError(ValueError):
    pass


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """`name=value` (string), `name:int=5`, `name:float=0.5` -> a params dict."""
    params: dict[str, Any] = {}
    for item in items:
        m = _PARAM.match(item)
        if not m:
            raise QueryInputError(f"--param {item!r}: expected NAME=VALUE or NAME:int|float|str=VALUE")
        name, kind, value = m.group(1), m.group(2) or "str", m.group(3)
        if name in params:
            raise QueryInputError(f"--param {name} given twice")
        try:
            params[name] = int(value) if kind == "int" else float(value) if kind == "float" else value
        except ValueError:
            raise QueryInputError(f"--param {name}: {value!r} is not a valid {kind}") from None
    return params


def check_placeholders(sql: str, params: dict[str, Any]) -> None:
    """Every %(name)s in the SQL needs a --param (else the server sees the raw placeholder)."""
    missing = sorted(set(re.findall(r"(?<!%)%\(([A-Za-z_][A-Za-z0-9_]*)\)s", sql)) - set(params))
    if missing:
        raise QueryInputError(f"the SQL uses %({missing[0]})s but no --param {missing[0]}=... was given")


def _plain(value: Any) -> Any:
    """A JSON-friendly value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_plain(value), ensure_ascii=False)
    value = _plain(value)
    return str(value)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def format_table(columns: list[str], rows: list[tuple], max_cell: int = 60) -> str:
    """Aligned text table; CJK characters count double; long cells are cut with …."""
    def clip(text: str) -> str:
        text = text.replace("\n", "\\n").replace("\t", " ")
        if _width(text) <= max_cell:
            return text
        out, w = [], 0
        for ch in text:
            w += _width(ch)
            if w > max_cell - 1:
                break
            out.append(ch)
        return "".join(out) + "…"

    cells = [[clip(_cell(v)) for v in row] for row in rows]
    widths = [_width(c) for c in columns]
    for row in cells:
        widths = [max(w, _width(c)) for w, c in zip(widths, row)]

    def line(values: list[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths)).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out) + "\n"


def format_csv(columns: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])
    return buf.getvalue()


def format_json(columns: list[str], rows: list[tuple]) -> str:
    """One JSON object per line (like ClickHouse's JSONEachRow)."""
    return "".join(
        json.dumps({c: _plain(v) for c, v in zip(columns, row)}, ensure_ascii=False) + "\n" for row in rows
    )


def render(fmt: str, columns: list[str], rows: list[tuple]) -> str:
    if fmt == "table":
        return format_table(columns, rows)
    if fmt == "csv":
        return format_csv(columns, rows)
    if fmt == "json":
        return format_json(columns, rows)
    raise QueryInputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def run_query(ch, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
    """Run one statement as the analyst user in the Yuqing database."""
    from .client import connect

    client = connect(ch, user=ch.analyst_user, password=ch.analyst_secret, database=ch.database)
    try:
        rows, types = client.execute(sql, params or None, with_column_types=True)
    finally:
        client.disconnect()
    return [name for name, _ in types], rows
