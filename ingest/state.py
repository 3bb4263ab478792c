"""Crash-safe JSON state: per-source cursors, written atomically (temp file, fsync, rename).

A reader never sees half a file: after a crash either the old or the new cursor is there.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any


class StateError(RuntimeError):
    pass


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: Path, default: Any) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"state file {path} is corrupt ({exc.msg}); move it away to start over") from None


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class CursorStore:
    """One JSON file per source under `<state_dir>/cursors/`."""

    def __init__(self, state_dir: Path):
        self.directory = Path(state_dir) / "cursors"

    def path(self, source: str) -> Path:
        return self.directory / f"{_safe_name(source)}.json"

    def load(self, source: str) -> dict[str, Any]:
        data = read_json(self.path(source), {})
        if not isinstance(data, dict):
            raise StateError(f"cursor file {self.path(source)} does not hold a JSON object")
        return data

    def save(self, source: str, cursor: dict[str, Any]) -> None:
        write_json_atomic(self.path(source), cursor)
