"""Errors shared by every command, whichever package registers it."""
from __future__ import annotations


class CommandError(Exception):
    """A user-facing failure: printed as one line on stderr, exit code 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code
