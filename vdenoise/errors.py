"""The one exception family for expected failures: a message for people and a hint."""

from __future__ import annotations


class VdenoiseError(Exception):
    """An expected failure (bad input, missing device, out of memory). Exit code 1."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(VdenoiseError):
    """The command itself asks for something impossible; fixed by changing it. Exit code 2."""

    exit_code = 2
