"""The per-phase state journal: <root>/var/lib/kubeinit/state.json, plus the completion stamp
and the failure marker (field lessons #1, #2, #13).

The stamp, not the presence of some file, decides whether first boot ran. Every write is
atomic; an unreadable journal is exit code 3, never silently replaced.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeinit import paths
from kubeinit.errors import StateUnreadable
from kubeinit.fs import write_file

SCHEMA = 1


class Result:
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class PhaseRecord:
    result: str
    started: str
    duration: float | None = None
    error: str = ""
    hint: str = ""


@dataclass
class State:
    root: Path
    phases: dict[str, PhaseRecord] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return paths.under(self.root, paths.STATE_FILE)

    @classmethod
    def load(cls, root: Path) -> State:
        st = cls(root)
        if not st.file.exists():
            return st
        try:
            data = json.loads(st.file.read_text())
            if data.get("schema") != SCHEMA:
                raise StateUnreadable(
                    f"{st.file}: state journal schema {data.get('schema')!r} is not {SCHEMA}",
                    hint="this kubeinit is older or newer than the one that wrote it",
                )
            st.phases = {k: PhaseRecord(**v) for k, v in data["phases"].items()}
        except StateUnreadable:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StateUnreadable(
                f"{st.file}: state journal unreadable: {e}",
                hint="inspect it; remove it only to restart the phases from"
                " scratch (existing keys and CAs are reused)",
            ) from None
        return st

    def save(self) -> None:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "phases": {k: vars(v) for k, v in self.phases.items()},
        }
        write_file(
            self.file, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600, dir_mode=0o700
        )

    def is_done(self, phase: str) -> bool:
        rec = self.phases.get(phase)
        return rec is not None and rec.result == Result.DONE


def done_stamp(root: Path) -> Path:
    return paths.under(root, paths.DONE_STAMP)


def failed_marker(root: Path) -> Path:
    return paths.under(root, paths.FAILED_MARKER)
