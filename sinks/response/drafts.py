"""Statement drafts for one alert: the library's templates filled with the alert's facts."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from .facts import AlertFacts, beijing_long, facts_from_alert
from .library import PHASES, Library, Phase, default_library

log = logging.getLogger("yuqing.response")


@dataclass(frozen=True)
class PhaseDraft:
    phase: Phase
    due_at: datetime | None  # end of the phase (None: open-ended or unknown detection time)
    steps: tuple[str, ...]
    statement: str | None  # None: no public statement at this level


@dataclass(frozen=True)
class Drafts:
    facts: AlertFacts
    template_title: str
    template_category: str
    phases: tuple[PhaseDraft, ...]

    def to_text(self, markdown: bool = False) -> str:
        """The whole response plan in Chinese (plain text or Markdown)."""
        f = self.facts
        v = f.values()
        h1, h2 = ("# ", "## ") if markdown else ("", "")
        lines = [
            f"{h1}舆情回应草稿：{v['brand']}·{v['category_zh']}（{v['level_zh']}风险）",
            f"告警 {v['alert_id']}｜首次发现 {v['first_detected']}（北京时间）｜相关帖子 {v['total_posts']} 条｜"
            f"负面占比 {v['negative_share']}｜平台 {v['platforms']}",
            f"模板：{self.template_title}（{self.template_category}）",
        ]
        for pd in self.phases:
            due = f"（截止 {beijing_long(pd.due_at)}）" if pd.due_at else ""
            lines += ["", f"{h2}{pd.phase.title}{due}", "处置步骤："]
            lines += [f"{i}. {s}" for i, s in enumerate(pd.steps, 1)]
            if pd.statement:
                lines += ["声明草稿：", *(("> " + ln if markdown else "    " + ln) for ln in pd.statement.splitlines())]
            else:
                lines.append("声明草稿：本等级无需对外发声（内部处理）。")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.facts.alert_id, "brand": self.facts.brand, "category": self.facts.category,
            "level": self.facts.level, "template": self.template_category,
            "phases": [{"phase": pd.phase.key, "title": pd.phase.title,
                        "due_at": pd.due_at.isoformat() if pd.due_at else None,
                        "steps": list(pd.steps), "statement": pd.statement} for pd in self.phases],
        }


def render_drafts(facts: AlertFacts, library: Library | None = None, *, kind: str | None = None,
                  now: datetime | None = None) -> Drafts:
    """Fill every phase's steps and statement for the alert's category (or kind) and level."""
    library = library or default_library()
    tpl = library.template_for(facts.category, kind)
    values = facts.values(now)
    phases = []
    for phase in PHASES:
        text = tpl.phases[phase.key]
        due = None
        if phase.end_h is not None:
            due = facts.deadline_at(phase.end_h)
        statement = text.statement[facts.level]
        phases.append(PhaseDraft(
            phase, due,
            tuple(s.format(**values) for s in text.steps[facts.level]),
            statement.format(**values) if statement else None,
        ))
    return Drafts(facts, tpl.title, tpl.category, tuple(phases))


def first_draft(alert: Mapping[str, Any]) -> str:
    """The 0–2 h statement draft for an `alerts` record, for on-call messages.

    Never raises (a page must not be lost to a draft): returns "" when the record is
    unusable or the level needs no public statement.
    """
    try:
        drafts = render_drafts(facts_from_alert(alert))
    except Exception as exc:  # noqa: BLE001 - the page matters more than the draft
        log.warning("response: no first draft for alert %s: %s", alert.get("alert_id") if isinstance(alert, Mapping) else "?", exc)
        return ""
    first = drafts.phases[0]
    if not first.statement:
        return ""
    due = f"（{beijing_long(first.due_at)}前发布）" if first.due_at else ""
    return f"首次声明草稿{due}：\n{first.statement}"
