"""One error type, one line, one hint, a fixed exit code (house style §10)."""

from __future__ import annotations

from enum import IntEnum

from kubeinit.redact import redact


class ExitCode(IntEnum):
    OK = 0
    PHASE_FAILED = 1
    INVALID_INPUT = 2
    STATE_UNREADABLE = 3


class KubeinitError(Exception):
    """An error an operator can act on. `str()` is the one line; `hint` says what to do."""

    exit_code: ExitCode = ExitCode.PHASE_FAILED

    def __init__(self, message: str, *, hint: str = "") -> None:
        # Masked once, here: the message reaches stderr, the journal, state.json and
        # init.failed, and none of them may show a token or a certificate key.
        message, hint = redact(message), redact(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(KubeinitError):
    """Bad configuration, arguments or files given by the user: nothing was written."""

    exit_code = ExitCode.INVALID_INPUT


class StateUnreadable(KubeinitError):
    """The state journal, the profile or an image cannot be read."""

    exit_code = ExitCode.STATE_UNREADABLE


class PhaseFailed(KubeinitError):
    """A phase could not do its work."""

    exit_code = ExitCode.PHASE_FAILED
