"""Operator-facing reporting: the runner frames each phase as started / finished / failed.

Every line goes to stderr, which kubeinit.service sends to the journal and the console
(`StandardOutput=journal+console`); without journald that is all there is. When journald's
socket exists, the key events are *also* sent as native structured records through
systemd-python, with a fixed MESSAGE_ID and KUBEINIT_* fields, documented in docs/journal.md:

    journalctl -u kubeinit MESSAGE_ID=0504294b76b34c5b963773c0e2b45316   # phase failed

Secrets (bootstrap tokens, the certificate key) are registered with `register_secret` the moment
kubeinit creates or reads them; every line, journal field and API error message passes through
`redact`, so a secret cannot reach a log by accident (house style §9).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

# The one masking helper (kubeinit.redact), re-exported for the phases.
from kubeinit.redact import REDACTED, redact, register_secret

__all__ = ["REDACTED", "Reporter", "current_phase", "redact", "register_secret"]

# Fixed, documented message IDs (docs/journal.md). Generated with `systemd-id128 new`; never
# change one: operators filter on them.
MESSAGE_ID_PHASE_FINISHED = "f7699f37a3d448348b5729a4006f2d75"
MESSAGE_ID_PHASE_FAILED = "0504294b76b34c5b963773c0e2b45316"
MESSAGE_ID_INIT_COMPLETE = "e70d541ebbd24ec19e7a5780baf491ed"
MESSAGE_ID_JOIN_REFRESHED = "acb71106bff34a56987715c7fb7f2ebb"

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")

# syslog priorities (sd-daemon.h)
PRIORITY_ERR = 3
PRIORITY_WARNING = 4
PRIORITY_INFO = 6

_phase = {"current": ""}


def current_phase() -> str:
    """The phase the runner last started ("" outside phases): lets fault points count per
    phase."""
    return _phase["current"]


class Reporter:
    def __init__(self, *, debug: bool = False, stream: Any = None) -> None:
        self.debug_enabled = debug
        self.stream = stream or sys.stderr
        self._journal: Any = None
        self._cpu_started: dict[str, float] = {}
        if JOURNAL_SOCKET.exists() and not os.environ.get("KUBEINIT_NO_JOURNAL"):
            try:
                from systemd import journal  # python3-systemd on the image

                self._journal = journal
            except ImportError:
                self._journal = None

    @property
    def journal_enabled(self) -> bool:
        return self._journal is not None

    def line(self, text: str) -> None:
        print(redact(text), file=self.stream, flush=True)

    def info(self, text: str, phase: str = "") -> None:
        self.line(f"[{phase}] {text}" if phase else text)

    def debug(self, text: str, phase: str = "") -> None:
        if self.debug_enabled:
            self.info(text, phase)

    def warn(self, text: str, phase: str = "") -> None:
        self.info(f"WARNING: {text}", phase)

    def send(
        self, message: str, message_id: str, priority: int = PRIORITY_INFO, **fields: str
    ) -> None:
        """A structured journal record (dropped when there is no journald)."""
        if self._journal is None:
            return
        clean = {k: redact(v) for k, v in fields.items() if v != ""}
        # journald went away: the stderr line is still there
        with contextlib.suppress(OSError):
            self._journal.send(
                redact(message),
                MESSAGE_ID=message_id,
                PRIORITY=str(priority),
                SYSLOG_IDENTIFIER="kubeinit",
                **clean,
            )

    def phase_started(self, phase: str) -> None:
        _phase["current"] = phase
        self._cpu_started[phase] = time.process_time()
        self.info("started", phase)

    def _cpu(self, phase: str) -> str:
        start = self._cpu_started.pop(phase, None)
        return f"{time.process_time() - start:.3f}" if start is not None else ""

    def phase_finished(self, phase: str, duration: float, note: str = "") -> None:
        self.info(f"finished in {duration:.2f}s{' (' + note + ')' if note else ''}", phase)
        self.send(
            f"phase {phase} finished in {duration:.2f}s",
            MESSAGE_ID_PHASE_FINISHED,
            KUBEINIT_PHASE=phase,
            KUBEINIT_RESULT="done",
            KUBEINIT_DURATION=f"{duration:.3f}",
            KUBEINIT_CPU=self._cpu(phase),
            KUBEINIT_NOTE=note,
        )

    def phase_failed(self, phase: str, duration: float, error: str, hint: str) -> None:
        self.info(f"failed after {duration:.2f}s: {error}", phase)
        if hint:
            self.info(f"hint: {hint}", phase)
        self.send(
            f"phase {phase} failed: {error}",
            MESSAGE_ID_PHASE_FAILED,
            PRIORITY_ERR,
            KUBEINIT_PHASE=phase,
            KUBEINIT_RESULT="failed",
            KUBEINIT_DURATION=f"{duration:.3f}",
            KUBEINIT_CPU=self._cpu(phase),
            KUBEINIT_ERROR=error,
            KUBEINIT_HINT=hint,
        )

    def init_complete(self, duration: float) -> None:
        self.info(f"kubeinit init complete in {duration:.2f}s")
        self.send(
            f"kubeinit init complete in {duration:.2f}s",
            MESSAGE_ID_INIT_COMPLETE,
            KUBEINIT_RESULT="complete",
            KUBEINIT_DURATION=f"{duration:.3f}",
            KUBEINIT_CPU=f"{time.process_time():.3f}",
        )

    def join_refreshed(self, token_expires: str, certs_expire: str) -> None:
        self.info(
            f"join commands refreshed: token expires {token_expires}, uploaded"
            f" certificates expire {certs_expire}"
        )
        self.send(
            "kubeinit join commands refreshed",
            MESSAGE_ID_JOIN_REFRESHED,
            KUBEINIT_RESULT="refreshed",
            KUBEINIT_TOKEN_EXPIRES=token_expires,
            KUBEINIT_CERTS_EXPIRE=certs_expire,
        )
