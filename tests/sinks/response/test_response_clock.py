"""The response clock's pure logic: elapsed times against deadlines, which reminders are due."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sinks.response.clock import Action, Deadline, clock_from, describe_ack, describe_resolve, due_reminders

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 10:00 Beijing
DEADLINES = [Deadline("事实与方案", T0 + timedelta(hours=12), 12.0), Deadline("首次声明", T0 + timedelta(hours=2), 2.0),
             Deadline("黄金4小时", T0 + timedelta(hours=4), 4.0)]


def clock(*actions):
    return clock_from("A1", T0, DEADLINES, [Action("A1", a, who, T0 + dt, note) for a, who, dt, note in actions]
                      + [Action("OTHER", "resolved", "x", T0, "")])


def test_first_ack_and_resolve_count_against_first_and_last_deadline():
    c = clock(("acked", "李雷", timedelta(minutes=95), ""), ("acked", "韩梅梅", timedelta(minutes=10), ""),
              ("resolved", "李雷", timedelta(hours=13), ""))
    assert [d.name for d in c.deadlines] == ["首次声明", "黄金4小时", "事实与方案"]  # sorted by hours
    assert c.acked_by == "韩梅梅" and c.time_to_ack() == timedelta(minutes=10) and c.ack_met() is True
    assert c.time_to_resolve() == timedelta(hours=13) and c.resolve_met() is False
    assert "距首次发现 10分钟" in describe_ack(c) and "首次声明时限 2小时：达标（余 1小时50分）" in describe_ack(c)
    assert "事实与方案时限 12小时：超时 1小时" in describe_resolve(c)
    late = clock(("acked", "李雷", timedelta(hours=3), ""))
    assert late.ack_met() is False and "超时 1小时" in describe_ack(late)
    assert clock().ack_met() is None and "尚未认领" in describe_ack(clock())


def test_reminders_once_per_deadline_within_the_lead_and_only_while_open():
    lead = timedelta(minutes=30)
    assert due_reminders(clock(), T0 + timedelta(minutes=80), lead) == []  # 40 min before: too early
    due = due_reminders(clock(), T0 + timedelta(minutes=95), lead)
    assert [(r.deadline.name, r.overdue) for r in due] == [("首次声明", False)]
    assert "距首次声明截止还有 25分钟" in due[0].text(T0 + timedelta(minutes=95))
    sent = clock(("reminded", "yuqing-remind", timedelta(minutes=95), "reminder:首次声明"))
    assert due_reminders(sent, T0 + timedelta(minutes=100), lead) == []
    # overdue and never reminded: one "overdue" page
    late = due_reminders(clock(), T0 + timedelta(minutes=130), lead)
    assert [(r.deadline.name, r.overdue) for r in late] == [("首次声明", True)]
    assert "已超时 10分钟" in late[0].text(T0 + timedelta(minutes=130))
    # resolved: nothing
    assert due_reminders(clock(("resolved", "x", timedelta(minutes=60), "")), T0 + timedelta(minutes=95), lead) == []
    # acked is still open: the statement is still due
    assert len(due_reminders(clock(("acked", "x", timedelta(minutes=5), "")), T0 + timedelta(minutes=95), lead)) == 1


def test_a_late_start_pages_once_for_the_next_deadline_not_for_every_missed_one():
    now = T0 + timedelta(hours=3, minutes=45)  # statement missed, golden 4 h in 15 min
    due = due_reminders(clock(), now)
    assert [(r.deadline.name, r.overdue) for r in due] == [("黄金4小时", False)]
    stale = due_reminders(clock(), T0 + timedelta(days=3))
    assert stale == []  # everything overdue by more than a day: no page
