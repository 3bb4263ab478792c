"""The response library: statement drafts and playbook steps per category, level and phase.

Templates are YAML files (sinks/response/templates/*.yaml, editable by users; see
docs/pr-team.md). Everything that could go wrong with a template is checked when the
library is LOADED, not when a crisis needs it:

* every `{placeholder}` must be a known alert fact (`facts.FIELDS`);
* every level has steps in every phase; medium and high have a statement in every phase;
* the lint rejects empty phrases ("我们高度重视" …) anywhere, and a first statement
  (0–2 h) must apologise and announce something concrete (a time or a number).
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from core.levels import LEVELS

from .facts import FIELDS

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
GENERAL = "general"
LINT_FILE = "_lint.yaml"


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    start_h: float
    end_h: float | None  # None: open-ended


PHASES: tuple[Phase, ...] = (
    Phase("immediate", "0–2 小时：致歉并公布已采取的行动", 0.0, 2.0),
    Phase("facts", "2–12 小时：事实、责任与方案", 2.0, 12.0),
    Phase("aftermath", "12 小时之后：补偿、整改与长期沟通", 12.0, None),
)
PHASE_KEYS = tuple(p.key for p in PHASES)

#: Phrases that say nothing; a statement is judged by its actions, not its attitude.
EMPTY_PHRASES: tuple[str, ...] = (
    "高度重视", "十分重视", "非常重视", "极其重视", "高度关注", "密切关注",
    "第一时间", "积极处理", "正在积极", "妥善处理", "尽快处理", "深刻反思",
    "举一反三", "引以为戒", "给大家一个交代", "给公众一个交代", "敬请谅解", "感谢关注",
    "进一步加强", "持续优化", "不断完善", "相关部门", "有关人员",
)
APOLOGY = re.compile(r"道歉|致歉|抱歉|对不起|歉意")
CONCRETE = re.compile(r"\d|\{(statement_due|facts_due|first_detected|first_detected_time)\}")


class TemplateError(ValueError):
    """A template file is invalid; the message names the file, the place and the fix."""


@dataclass(frozen=True)
class PhaseText:
    steps: dict[str, tuple[str, ...]]  # level -> steps
    statement: dict[str, str | None]  # level -> statement (None: no public statement)


@dataclass(frozen=True)
class Template:
    category: str
    applies_to: tuple[str, ...]
    title: str
    phases: dict[str, PhaseText]
    path: Path


@dataclass(frozen=True)
class Library:
    templates: dict[str, Template]  # key: category name or applies_to alias
    empty_phrases: tuple[str, ...]
    directory: Path

    def template_for(self, category: str, kind: str | None = None) -> Template:
        """By category name, then by watchlist kind (e.g. user_rights), then `general`."""
        for key in (category, kind):
            if key and key in self.templates:
                return self.templates[key]
        return self.templates[GENERAL]


def placeholders(text: str, where: str) -> set[str]:
    """The `{name}` fields of a template string; TemplateError on malformed braces."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: bad braces ({exc}); write a literal brace as {{{{ or }}}}") from None
    names = set()
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or spec or conversion or not re.fullmatch(r"[a-z_]+", name):
            raise TemplateError(f"{where}: placeholder {{{name}{'!' + conversion if conversion else ''}"
                                f"{':' + spec if spec else ''}}} must be a plain field name like {{brand}}")
        names.add(name)
    return names


def check_text(text: str, where: str, empty_phrases: Iterable[str]) -> None:
    unknown = sorted(placeholders(text, where) - set(FIELDS))
    if unknown:
        raise TemplateError(f"{where}: unknown field {{{unknown[0]}}} (known: {', '.join(sorted(FIELDS))})")
    for phrase in empty_phrases:
        if phrase in text:
            raise TemplateError(f"{where}: empty phrase {phrase!r}: say what was done instead "
                                f"(an action, a time, a number)")


def _per_level(value: Any, where: str, kind: str) -> dict[str, Any]:
    """`value` for every level, or a mapping with keys high/medium/low/default.

    A statement given once (or as `default`) is for medium and high only: low-level alerts
    are handled internally, so they get a statement only when one is written under `low`.
    """
    covered = LEVELS if kind == "steps" else ("medium", "high")
    if isinstance(value, Mapping):
        bad = sorted(set(value) - set(LEVELS) - {"default"})
        if bad:
            raise TemplateError(f"{where}: unknown key {bad[0]!r} (use {', '.join(LEVELS)} or default)")
        return {lv: value.get(lv, value.get("default") if lv in covered else None) for lv in LEVELS}
    return {lv: value if lv in covered else None for lv in LEVELS}


def _phase(data: Any, where: str, empty: tuple[str, ...]) -> PhaseText:
    if not isinstance(data, Mapping):
        raise TemplateError(f"{where}: expected a mapping with steps and statement")
    bad = sorted(set(data) - {"steps", "statement"})
    if bad:
        raise TemplateError(f"{where}: unknown key {bad[0]!r} (known: steps, statement)")
    steps: dict[str, tuple[str, ...]] = {}
    for level, value in _per_level(data.get("steps"), f"{where}.steps", "steps").items():
        here = f"{where}.steps.{level}"
        if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
            raise TemplateError(f"{here}: needs a non-empty list of steps")
        for i, s in enumerate(value):
            check_text(s, f"{here}[{i}]", empty)
        steps[level] = tuple(s.strip() for s in value)
    statements: dict[str, str | None] = {}
    for level, value in _per_level(data.get("statement"), f"{where}.statement", "statement").items():
        here = f"{where}.statement.{level}"
        if value is None:
            if level != "low":
                raise TemplateError(f"{here}: missing (medium and high need a statement in every phase)")
            statements[level] = None
            continue
        if not isinstance(value, str) or not value.strip():
            raise TemplateError(f"{here}: expected text")
        check_text(value, here, empty)
        statements[level] = value.strip()
    return PhaseText(steps, statements)


def load_template(path: Path, empty_phrases: tuple[str, ...] = EMPTY_PHRASES) -> Template:
    name = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{name}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, Mapping):
        raise TemplateError(f"{name}: expected a mapping with category, title and phases")
    bad = sorted(set(data) - {"category", "applies_to", "title", "phases"})
    if bad:
        raise TemplateError(f"{name}: unknown key {bad[0]!r} (known: applies_to, category, phases, title)")
    category = data.get("category")
    if not isinstance(category, str) or not category:
        raise TemplateError(f"{name}: category must be a non-empty string")
    applies = data.get("applies_to") or []
    if not isinstance(applies, list) or not all(isinstance(a, str) and a for a in applies):
        raise TemplateError(f"{name}: applies_to must be a list of category names or watchlist kinds")
    title = data.get("title")
    if not isinstance(title, str) or not title:
        raise TemplateError(f"{name}: title must be a non-empty string")
    phases_data = data.get("phases")
    if not isinstance(phases_data, Mapping):
        raise TemplateError(f"{name}: phases must map {', '.join(PHASE_KEYS)} to steps and statement")
    unknown = sorted(set(phases_data) - set(PHASE_KEYS))
    if unknown:
        raise TemplateError(f"{name}: unknown phase {unknown[0]!r} (known: {', '.join(PHASE_KEYS)})")
    phases = {}
    for key in PHASE_KEYS:
        if key not in phases_data:
            raise TemplateError(f"{name}: phase {key!r} is missing")
        phases[key] = _phase(phases_data[key], f"{name}: phases.{key}", empty_phrases)
    for level, text in phases["immediate"].statement.items():
        if text is None:
            continue
        where = f"{name}: phases.immediate.statement.{level}"
        if not APOLOGY.search(text):
            raise TemplateError(f"{where}: a first statement must apologise (道歉/致歉/抱歉)")
        if not CONCRETE.search(text):
            raise TemplateError(f"{where}: a first statement must announce concrete actions with a time "
                                f"or number (e.g. {{facts_due}} or '24 小时内')")
    return Template(category, tuple(applies), title, phases, path)


def _lint_phrases(directory: Path) -> tuple[str, ...]:
    path = directory / LINT_FILE
    if not path.is_file():
        return EMPTY_PHRASES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"{LINT_FILE}: {str(exc).splitlines()[0]}") from None
    extra = data.get("empty_phrases") if isinstance(data, Mapping) else None
    if extra is None:
        extra = []
    if not isinstance(extra, list) or not all(isinstance(p, str) and p for p in extra):
        raise TemplateError(f"{LINT_FILE}: empty_phrases must be a list of phrases")
    return tuple(dict.fromkeys(EMPTY_PHRASES + tuple(extra)))


def load_library(directory: str | Path | None = None) -> Library:
    """All templates of a directory, validated; one template must be `general`."""
    directory = Path(directory) if directory else TEMPLATES_DIR
    if not directory.is_dir():
        raise TemplateError(f"template directory {directory} does not exist")
    empty = _lint_phrases(directory)
    templates: dict[str, Template] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        tpl = load_template(path, empty)
        for key in (tpl.category, *tpl.applies_to):
            if key in templates and templates[key].path != path:
                raise TemplateError(f"{path.name}: {key!r} is also served by {templates[key].path.name}")
            templates[key] = tpl
    if GENERAL not in templates:
        raise TemplateError(f"{directory}: no template for category {GENERAL!r} (the fallback for unknown categories)")
    return Library(templates, empty, directory)


@lru_cache(maxsize=4)
def default_library(directory: str | None = None) -> Library:
    """The bundled library, loaded once per process."""
    return load_library(directory)
