"""`yuqing remind`: page on-call before each response deadline of an open alert.

Reminders reuse the notifier: the alert becomes a `Notice` (sinks.notify.notice), gets a
reminder line and the statement draft for that deadline, and goes to every channel of
notify.yaml that wants its route and brand, through sinks.notify.channels.deliver (same
signatures, retries and timeouts as the pages). A reminder is recorded in `alert_actions`
only after at least one channel accepted it, so a failed one is tried again next round.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from sinks.notify.channels import DeliveryError, deliver
from sinks.notify.config import NotifyConfig
from sinks.notify.notice import Notice, notice_from_alert_event

from .clock import DEFAULT_LEAD, Clock, Reminder, due_reminders, skipped_by
from .drafts import render_drafts
from .facts import facts_from_alert
from .library import PHASES, Library
from .store import REMINDED, ResponseStore, clock_for

log = logging.getLogger("yuqing.response")
ACTOR = "yuqing-remind"


@dataclass(frozen=True)
class Outcome:
    alert_id: str
    deadline: str
    sent_to: tuple[str, ...]
    failed: tuple[str, ...]
    text: str


def _draft_for(alert: dict[str, Any], hours: float, library: Library | None) -> str:
    """The statement draft of the phase that this deadline closes."""
    drafts = render_drafts(facts_from_alert(alert), library)
    for pd, phase in zip(drafts.phases, PHASES):
        if phase.end_h is None or hours <= phase.end_h + 1e-9:
            if pd.statement:
                return f"【{phase.title}·声明草稿】\n{pd.statement}"
            return ""
    return ""


def reminder_notice(alert: dict[str, Any], clock: Clock, reminder: Reminder, now: datetime,
                    library: Library | None = None) -> Notice:
    """The notifier's Notice for this alert, with the reminder and draft on top."""
    notice = notice_from_alert_event({**alert, "event": "raised", "kind": None})  # a reminder pages whatever the record's kind
    owner = (f"认领人：{clock.acked_by}" if clock.acked_by
             else f"尚未认领！认领：yuqing ack {clock.alert_id} --by 姓名")
    parts = [reminder.text(now), owner]
    try:
        draft = _draft_for(alert, reminder.deadline.hours, library)
    except Exception as exc:  # noqa: BLE001 - the reminder matters more than the draft
        log.warning("remind: no draft for %s: %s", clock.alert_id, exc)
        draft = ""
    if draft:
        parts.append(draft)
    return replace(notice, alertname="YuqingResponseReminder", summary_zh="\n".join(parts))


def run_once(store: ResponseStore, config: NotifyConfig, now: datetime, *, lead: timedelta = DEFAULT_LEAD,
             lookback: timedelta = timedelta(days=3), library: Library | None = None, dry_run: bool = False,
             send: Callable = deliver) -> list[Outcome]:
    """One round: every open alert's due reminders, sent and recorded."""
    ids = store.open_alert_ids(now - lookback)
    actions = store.actions(ids)
    out: list[Outcome] = []
    for alert_id in ids:
        alert = store.alert(alert_id)
        if alert is None:
            continue
        clock = clock_for(alert, [a for a in actions if a.alert_id == alert_id])
        reminders = due_reminders(clock, now, lead)
        for reminder in reminders:
            notice = reminder_notice(alert, clock, reminder, now, library)
            if dry_run:
                out.append(Outcome(alert_id, reminder.deadline.name, (), (), notice.summary_zh or ""))
                continue
            sent, failed = [], []
            for channel in config.channels:
                if not channel.wants(notice.route, notice.brand):
                    continue
                try:
                    send(channel, notice, config.retry)
                    sent.append(channel.name)
                except DeliveryError as exc:
                    failed.append(channel.name)
                    log.error("remind: %s", exc)
            if sent:
                store.record(alert_id, REMINDED, ACTOR, now, reminder.note)
                for d in skipped_by(reminders, clock, now, lead):  # due together: one page covers them
                    store.record(alert_id, REMINDED, ACTOR, now, f"reminder:{d.name}")
            out.append(Outcome(alert_id, reminder.deadline.name, tuple(sent), tuple(failed), notice.summary_zh or ""))
    return out
