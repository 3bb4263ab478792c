"""The PR team's response tools: statement drafts (library), response clock, reminders.

`first_draft(alert_dict) -> str` is the hook for the notifier's messages.
"""
from .drafts import first_draft

__all__ = ["first_draft"]
