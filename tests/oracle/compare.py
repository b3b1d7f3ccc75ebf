"""Differences between kubeadm's facts and kubeinit's, and the one allow-list that may excuse
them (tests/oracle/allowlist.yaml: every entry says what differs and why)."""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.oracle.facts import ORDER, Facts

ALLOWLIST = Path(__file__).with_name("allowlist.yaml")


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


def _canon(v: Any) -> str:
    # json keeps true != 1 and "1" != 1, which Python's == does not
    return json.dumps(v, sort_keys=True, default=str)


@dataclass(frozen=True)
class Difference:
    config: str
    artifact: str
    field: str
    kubeadm: Any
    kubeinit: Any

    def render(self) -> str:
        a, b = self.kubeadm, self.kubeinit
        if isinstance(a, str) and isinstance(b, str) and ("\n" in a or "\n" in b):
            d = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "kubeadm", "kubeinit",
                                          lineterm="", n=1))
            shown = "\n      ".join(d[:40] + (["..."] if len(d) > 40 else []))
            return f"  {self.field}: text differs:\n      {shown}"
        return f"  {self.field}:\n      kubeadm:  {_short(a)}\n      kubeinit: {_short(b)}"


def _short(v: Any, limit: int = 300) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


def diff_facts(config: str, artifact: str, kubeadm: Facts, kubeinit: Facts) -> list[Difference]:
    out = []
    for key in sorted(set(kubeadm) | set(kubeinit)):
        a, b = kubeadm.get(key, ABSENT), kubeinit.get(key, ABSENT)
        if key.endswith(ORDER):
            if a is ABSENT or b is ABSENT:
                continue  # membership is reported by the entries' own facts
            common = set(a) & set(b)
            a, b = [x for x in a if x in common], [x for x in b if x in common]
        if a is ABSENT or b is ABSENT or _canon(a) != _canon(b):
            out.append(Difference(config, artifact, key, a, b))
    return out


@dataclass(frozen=True)
class AllowEntry:
    id: str
    reason: str
    fields: tuple[str, ...]
    artifacts: tuple[str, ...] = ("*",)
    configs: tuple[str, ...] | None = None

    def matches(self, d: Difference) -> bool:
        return (any(fnmatch.fnmatchcase(d.field, f) for f in self.fields)
                and any(fnmatch.fnmatchcase(d.artifact, a) for a in self.artifacts)
                and (self.configs is None or d.config in self.configs))


KEYS = {"id", "reason", "fields", "artifacts", "configs"}


@dataclass
class Allowlist:
    entries: list[AllowEntry]
    used: Counter[str] = field(default_factory=Counter)

    @classmethod
    def load(cls, path: Path = ALLOWLIST) -> Allowlist:
        doc = yaml.safe_load(path.read_text()) or {}
        entries = []
        for n, e in enumerate(doc.get("entries") or []):
            where = f"{path.name} entry {n} ({e.get('id', '?')})"
            unknown = set(e) - KEYS
            if unknown:
                raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
            if not str(e.get("reason", "")).strip():
                raise ValueError(f"{where}: every entry needs a reason")
            if not e.get("id") or not e.get("fields"):
                raise ValueError(f"{where}: needs an id and a list of fields")
            entries.append(AllowEntry(
                id=e["id"], reason=" ".join(str(e["reason"]).split()),
                fields=tuple(e["fields"]), artifacts=tuple(e.get("artifacts") or ("*",)),
                configs=tuple(e["configs"]) if e.get("configs") else None))
        ids = [e.id for e in entries]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{path.name}: duplicate ids")
        return cls(entries)

    def split(self, diffs: Iterable[Difference], *, count: bool = False
              ) -> tuple[list[Difference], list[Difference]]:
        """(unexplained, allowed); with `count`, records which entries were used."""
        bad, ok = [], []
        for d in diffs:
            entry = next((e for e in self.entries if e.matches(d)), None)
            if entry is None:
                bad.append(d)
            else:
                if count:
                    self.used[entry.id] += 1
                ok.append(d)
        return bad, ok


# Unexplained differences of the whole session, for the terminal summary (conftest.py).
SESSION_FINDINGS: list[Difference] = []


def report(diffs: Sequence[Difference]) -> str:
    lines = [f"{len(diffs)} difference(s) from real kubeadm not explained by "
             f"tests/oracle/allowlist.yaml:"]
    by_artifact: dict[tuple[str, str], list[Difference]] = {}
    for d in diffs:
        by_artifact.setdefault((d.config, d.artifact), []).append(d)
    for (config, artifact), ds in by_artifact.items():
        lines.append(f"[{config}] {artifact}")
        lines += [d.render() for d in ds]
    return "\n".join(lines)


def judge(allowlist: Allowlist, diffs: Iterable[Difference]) -> None:
    """Fail with every unexplained difference."""
    bad, _ = allowlist.split(diffs, count=True)
    SESSION_FINDINGS.extend(bad)
    assert not bad, report(bad)
