"""The response clock: how fast an alert was taken and closed, against its deadlines.

Deadlines come from the alert record (core/playbooks.yaml via core.levels), counted
from first detection. Taking the alert (ack) is measured against the FIRST deadline (the
first statement cannot go out before someone owns the crisis); resolving against the LAST
one (facts and plan). Reminders go out `lead` before each deadline while the alert is
open, once per deadline. Pure functions; ClickHouse access lives in store.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from sinks.zh import format_duration_zh

from .facts import beijing_long

REMINDER_PREFIX = "reminder:"
DEFAULT_LEAD = timedelta(minutes=30)
STALE_AFTER = timedelta(hours=24)  # deadlines overdue by more than this get no reminder


@dataclass(frozen=True)
class Deadline:
    name: str
    due_at: datetime
    hours: float


@dataclass(frozen=True)
class Action:
    alert_id: str
    action: str  # acked | resolved | escalated | noted | reminded
    actor: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class Clock:
    """One alert's response clock."""

    alert_id: str
    first_detected_at: datetime
    deadlines: tuple[Deadline, ...]
    acked_by: str | None = None
    acked_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    reminded: frozenset[str] = frozenset()  # deadline names already reminded

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def ack_deadline(self) -> Deadline | None:
        return self.deadlines[0] if self.deadlines else None

    @property
    def resolve_deadline(self) -> Deadline | None:
        return self.deadlines[-1] if self.deadlines else None

    def time_to_ack(self) -> timedelta | None:
        return None if self.acked_at is None else self.acked_at - self.first_detected_at

    def time_to_resolve(self) -> timedelta | None:
        return None if self.resolved_at is None else self.resolved_at - self.first_detected_at

    def ack_met(self) -> bool | None:
        """True/False once acked (against the first deadline); None if not acked or no deadline."""
        d = self.ack_deadline
        return None if d is None or self.acked_at is None else self.acked_at <= d.due_at

    def resolve_met(self) -> bool | None:
        d = self.resolve_deadline
        return None if d is None or self.resolved_at is None else self.resolved_at <= d.due_at


def clock_from(alert_id: str, first_detected_at: datetime, deadlines: Iterable[Deadline],
               actions: Iterable[Action]) -> Clock:
    """Fold the alert's actions: the first ack and the first resolve count."""
    acked = resolved = None
    reminded = set()
    for a in sorted(actions, key=lambda a: a.at):
        if a.alert_id != alert_id:
            continue
        if a.action == "acked" and acked is None:
            acked = a
        elif a.action == "resolved" and resolved is None:
            resolved = a
        elif a.action == "reminded" and a.note.startswith(REMINDER_PREFIX):
            reminded.add(a.note[len(REMINDER_PREFIX):])
    return Clock(
        alert_id, first_detected_at, tuple(sorted(deadlines, key=lambda d: d.hours)),
        acked.actor if acked else None, acked.at if acked else None,
        resolved.actor if resolved else None, resolved.at if resolved else None, frozenset(reminded))


def _against(elapsed: timedelta, deadline: Deadline | None) -> str:
    if deadline is None:
        return ""
    limit = format_duration_zh(deadline.hours * 3600)
    slack = timedelta(hours=deadline.hours) - elapsed
    if slack >= timedelta(0):
        return f"，{deadline.name}时限 {limit}：达标（余 {format_duration_zh(slack.total_seconds())}）"
    return f"，{deadline.name}时限 {limit}：超时 {format_duration_zh(-slack.total_seconds())}"


def describe_ack(clock: Clock) -> str:
    """One line for `yuqing ack`: who, when, elapsed since detection against the deadline."""
    if clock.acked_at is None:
        return f"告警 {clock.alert_id} 尚未认领"
    elapsed = clock.time_to_ack()
    return (f"告警 {clock.alert_id} 由 {clock.acked_by} 于 {beijing_long(clock.acked_at)} 认领，"
            f"距首次发现 {format_duration_zh(elapsed.total_seconds())}{_against(elapsed, clock.ack_deadline)}")


def describe_resolve(clock: Clock) -> str:
    if clock.resolved_at is None:
        return f"告警 {clock.alert_id} 尚未关闭"
    elapsed = clock.time_to_resolve()
    who = f" 由 {clock.resolved_by}" if clock.resolved_by else ""
    return (f"告警 {clock.alert_id}{who} 于 {beijing_long(clock.resolved_at)} 关闭，"
            f"距首次发现 {format_duration_zh(elapsed.total_seconds())}{_against(elapsed, clock.resolve_deadline)}")


def describe_deadlines(clock: Clock, now: datetime) -> list[str]:
    """Each deadline: still ahead (countdown) or passed."""
    out = []
    for d in clock.deadlines:
        left = (d.due_at - now).total_seconds()
        state = f"还有 {format_duration_zh(left)}" if left > 0 else f"已过 {format_duration_zh(-left)}"
        out.append(f"  {d.name}：{beijing_long(d.due_at)} 截止，{state}")
    return out


@dataclass(frozen=True)
class Reminder:
    alert_id: str
    deadline: Deadline
    overdue: bool

    @property
    def note(self) -> str:
        return REMINDER_PREFIX + self.deadline.name

    def text(self, now: datetime) -> str:
        left = (self.deadline.due_at - now).total_seconds()
        if self.overdue:
            return f"⏰ 回应提醒：{self.deadline.name}已超时 {format_duration_zh(-left)}（{beijing_long(self.deadline.due_at)} 截止）"
        return f"⏰ 回应提醒：距{self.deadline.name}截止还有 {format_duration_zh(left)}（{beijing_long(self.deadline.due_at)}）"


def due_reminders(clock: Clock, now: datetime, lead: timedelta = DEFAULT_LEAD,
                  stale_after: timedelta = STALE_AFTER) -> list[Reminder]:
    """Reminders to send now: deadlines within `lead` (or passed, up to `stale_after`),
    not yet reminded, while the alert is open. Only the latest due deadline is reminded
    when several are due at once (a late start should not page three times)."""
    if not clock.is_open:
        return []
    due = [d for d in clock.deadlines
           if d.name not in clock.reminded and d.due_at - lead <= now <= d.due_at + stale_after]
    if not due:
        return []
    # Several at once: remind only the next upcoming one, or else the latest passed one.
    upcoming = [d for d in due if now < d.due_at]
    pick = min(upcoming, key=lambda d: d.due_at) if upcoming else max(due, key=lambda d: d.due_at)
    return [Reminder(clock.alert_id, pick, overdue=now >= pick.due_at)]


def skipped_by(reminders: Sequence[Reminder], clock: Clock, now: datetime, lead: timedelta = DEFAULT_LEAD,
               stale_after: timedelta = STALE_AFTER) -> list[Deadline]:
    """Deadlines that were due together with the picked one and are marked done without a page."""
    if not reminders:
        return []
    picked = reminders[0].deadline
    return [d for d in clock.deadlines
            if d.name not in clock.reminded and d.name != picked.name and d.due_at <= picked.due_at
            and d.due_at - lead <= now <= d.due_at + stale_after]
