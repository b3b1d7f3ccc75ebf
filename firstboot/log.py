"""Operator-facing reporting: the runner frames each phase as started / finished / failed.

Lines go to stderr (which kubeinit.service sends to the journal and the console). When journald
is reachable, key events are also sent as structured records with fixed MESSAGE_IDs and
KUBEINIT_* fields (house style §9). Secrets never reach this module: callers pass only
redacted text.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# Fixed, documented message IDs (docs/journal.md). Generated once with `systemd-id128 new`.
MESSAGE_ID_PHASE_FINISHED = "3c9a7e2a5f0b4d6e9a51c0f2d8b7e611"
MESSAGE_ID_PHASE_FAILED = "b1f64a1d0c7e4b8f9d2a6e3c5f7a9b02"
MESSAGE_ID_INIT_COMPLETE = "6d2e8f4a1b3c4e5f8a9b0c1d2e3f4a5b"

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")


class Reporter:
    def __init__(self, *, debug: bool = False, stream: Any = None) -> None:
        self.debug_enabled = debug
        self.stream = stream or sys.stderr
        self._journal: Any = None
        if JOURNAL_SOCKET.exists() and not os.environ.get("KUBEINIT_NO_JOURNAL"):
            try:
                from systemd import journal  # the image's python3-systemd

                self._journal = journal
            except ImportError:
                self._journal = None

    def line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def info(self, text: str, phase: str = "") -> None:
        self.line(f"[{phase}] {text}" if phase else text)

    def debug(self, text: str, phase: str = "") -> None:
        if self.debug_enabled:
            self.info(text, phase)

    def warn(self, text: str, phase: str = "") -> None:
        self.info(f"WARNING: {text}", phase)

    def _send(self, message: str, message_id: str, **fields: str) -> None:
        if self._journal is None:
            return
        self._journal.send(message, MESSAGE_ID=message_id, SYSLOG_IDENTIFIER="kubeinit",
                           **fields)

    def phase_started(self, phase: str) -> None:
        self.info("started", phase)

    def phase_finished(self, phase: str, duration: float, note: str = "") -> None:
        self.info(f"finished in {duration:.2f}s{' (' + note + ')' if note else ''}", phase)
        self._send(f"phase {phase} finished in {duration:.2f}s", MESSAGE_ID_PHASE_FINISHED,
                   KUBEINIT_PHASE=phase, KUBEINIT_RESULT="done",
                   KUBEINIT_DURATION=f"{duration:.3f}")

    def phase_failed(self, phase: str, duration: float, error: str, hint: str) -> None:
        self.info(f"failed after {duration:.2f}s: {error}", phase)
        if hint:
            self.info(f"hint: {hint}", phase)
        self._send(f"phase {phase} failed: {error}", MESSAGE_ID_PHASE_FAILED,
                   KUBEINIT_PHASE=phase, KUBEINIT_RESULT="failed",
                   KUBEINIT_DURATION=f"{duration:.3f}", KUBEINIT_HINT=hint)

    def init_complete(self, duration: float) -> None:
        self.info(f"kubeinit init complete in {duration:.2f}s")
        self._send(f"kubeinit init complete in {duration:.2f}s", MESSAGE_ID_INIT_COMPLETE,
                   KUBEINIT_RESULT="done", KUBEINIT_DURATION=f"{duration:.3f}")
