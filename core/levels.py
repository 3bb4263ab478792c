"""Risk levels, their Chinese names and the playbook of each level.

Why in the core: the scoring job attaches a level's playbook to each alert, and the PR
tools (sinks.response) fall back to the same playbook's deadlines when a record lacks them;
both read it from here instead of one feature package importing the other.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.times import format_ms

LEVELS = ("low", "medium", "high")
LEVEL_ZH = {"high": "高", "medium": "中", "low": "低"}
PLAYBOOKS_PATH = Path(__file__).with_name("playbooks.yaml")


class PlaybookError(ValueError):
    """The playbooks file is missing, unreadable or incomplete (one line, names the level)."""


@dataclass(frozen=True)
class Deadline:
    name: str
    hours: float


@dataclass(frozen=True)
class Playbook:
    level: str
    title: str
    owner: str
    steps: tuple[str, ...]
    deadlines: tuple[Deadline, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "title": self.title, "owner": self.owner, "steps": list(self.steps)}

    def deadlines_from(self, first_detected_ms: int) -> list[dict[str, Any]]:
        return [{"name": d.name, "due_at": format_ms(first_detected_ms + int(d.hours * 3_600_000)),
                 "hours_after_detection": float(d.hours)} for d in self.deadlines]


def load_playbooks(path: str | Path = PLAYBOOKS_PATH) -> dict[str, Playbook]:
    """level -> Playbook, validated: every level present, steps non-empty, hours >= 0."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PlaybookError(f"playbooks file {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("levels"), dict):
        raise PlaybookError(f"playbooks file {path}: expected a 'levels' mapping")
    out: dict[str, Playbook] = {}
    for level in LEVELS:
        entry = data["levels"].get(level)
        where = f"playbooks file {path}: level {level}"
        if not isinstance(entry, dict):
            raise PlaybookError(f"{where}: missing")
        steps = entry.get("steps")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s for s in steps):
            raise PlaybookError(f"{where}: steps must be a non-empty list of strings")
        deadlines = []
        for d in entry.get("deadlines") or []:
            if (not isinstance(d, dict) or not isinstance(d.get("name"), str)
                    or not isinstance(d.get("hours"), (int, float)) or d["hours"] < 0):
                raise PlaybookError(f"{where}: each deadline needs a name and hours >= 0")
            deadlines.append(Deadline(d["name"], float(d["hours"])))
        for key in ("title", "owner"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise PlaybookError(f"{where}: {key} must be a non-empty string")
        out[level] = Playbook(level, entry["title"], entry["owner"], tuple(steps), tuple(deadlines))
    return out
