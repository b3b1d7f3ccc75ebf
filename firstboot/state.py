"""The per-phase state journal: <root>/var/lib/kubeinit/state.json, plus the completion stamp
and the failure marker (field lessons #1, #2, #13).

The stamp, not the presence of some file, decides whether first boot ran. Every write is
atomic; an unreadable journal is exit code 3, never silently replaced.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeinit import hostfs, paths
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


# state.json holds one small record per phase; anything this large is not one.
MAX_STATE_BYTES = 16 * 2**20
_RESULTS = frozenset((Result.RUNNING, Result.DONE, Result.FAILED, Result.SKIPPED))
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "result": (str,),
    "started": (str,),
    "duration": (int, float, type(None)),
    "error": (str,),
    "hint": (str,),
}


def _one_line(text: str, limit: int = 200) -> str:
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return _one_line(repr(value), 60)


def _decode_phases(data: Any) -> dict[str, PhaseRecord]:
    """The journal's phases, or ValueError naming what is wrong with its shape (a file that is
    JSON but not a state journal: a list, wrong types, missing keys)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {_shown(data)}")
    if "schema" not in data:
        raise ValueError("no schema key")
    unknown = sorted(set(data) - {"schema", "phases"})
    if unknown:
        raise ValueError(f"unknown key {_shown(unknown[0])}")
    phases = data.get("phases")
    if not isinstance(phases, dict):
        raise ValueError(f"phases: expected an object, got {_shown(phases)}")
    out = {}
    for name, rec in phases.items():
        where = f"phases.{_one_line(name, 60)}"
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: expected an object, got {_shown(rec)}")
        for k, v in rec.items():
            types = _RECORD_TYPES.get(k)
            if types is None:
                raise ValueError(f"{where}: unknown key {_shown(k)}")
            if isinstance(v, bool) or not isinstance(v, types):
                raise ValueError(f"{where}.{k}: wrong type ({_shown(v)})")
        for k in ("result", "started"):
            if k not in rec:
                raise ValueError(f"{where}: no {k} key")
        if rec["result"] not in _RESULTS:
            raise ValueError(f"{where}.result: {_shown(rec['result'])} is not a phase result")
        out[name] = PhaseRecord(**rec)
    return out


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
        hint = (
            "inspect it; remove it only to restart the phases from scratch (existing keys and"
            " CAs are reused)"
        )
        try:
            with os.fdopen(hostfs.open_file(st.file), "rb") as f:  # no link followed (§16)
                raw = f.read(MAX_STATE_BYTES + 1)
            if len(raw) > MAX_STATE_BYTES:
                raise ValueError(f"larger than {MAX_STATE_BYTES // 2**20} MiB")
            data = json.loads(raw.decode("utf-8"))
            if isinstance(data, dict) and "schema" in data and data["schema"] != SCHEMA:
                raise StateUnreadable(
                    f"{st.file}: state journal schema {_shown(data['schema'])} is not {SCHEMA}",
                    hint="this kubeinit is older or newer than the one that wrote it",
                )
            st.phases = _decode_phases(data)
        except StateUnreadable:
            raise
        except PermissionError:
            raise  # the CLI says "run it as root"
        except (OSError, ValueError, RecursionError) as e:
            text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise StateUnreadable(
                f"{st.file}: state journal unreadable: {_one_line(text)}", hint=hint
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
