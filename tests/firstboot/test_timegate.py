"""The time gate (issue 9, finding 10): no certificates minted with a clock from before the
image was built. The clock enters through the runner (`timegate.Clock`), so these tests set it
without touching the machine's; a time namespace cannot move CLOCK_REALTIME."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509

from firstboot import timegate
from firstboot.context import InitContext
from firstboot.log import Reporter
from firstboot.phases import PHASES
from firstboot.runner import _time_gate, run_phases
from firstboot.selection import select
from kubeinit.config import load_config
from kubeinit.errors import PhaseFailed
from kubeinit.identity import Identity

UTC = datetime.UTC
EPOCH = datetime.datetime(1970, 1, 1, 0, 0, 42, tzinfo=UTC)


class FakeClock:
    """A stand-in for the kernel clock and NTP (named as such: the real ones cannot be moved
    here). The clock reads 1970 until `sync_after` polls, then the real time."""

    def __init__(self, sync_after: int | None) -> None:
        self.sync_after = sync_after
        self.polls = 0
        self.slept: list[float] = []

    def synchronized(self) -> bool:
        self.polls += 1
        return self.sync_after is not None and self.polls > self.sync_after

    def now(self) -> datetime.datetime:
        synced = self.sync_after is not None and self.polls > self.sync_after
        return datetime.datetime.now(UTC) if synced else EPOCH

    def clock(self, wait: float = 10.0) -> timegate.Clock:
        return timegate.Clock(now=self.now, synchronized=self.synchronized,
                              sleep=self.slept.append, wait=wait, poll=2.0)


def _ctx(root: Path, profile: Any = None) -> InitContext:
    return InitContext(config=load_config(None), root=root, identity=Identity("n", "192.0.2.9"),
                       start_time=EPOCH, profile=profile)


def _run(root: Path, clock: timegate.Clock) -> str:
    out = io.StringIO()
    run_phases(_ctx(root), PHASES, select(PHASES, only="certs/ca"), Reporter(stream=out),
               complete_init=True, resume=True, clock=clock)
    return out.getvalue()


def test_a_clock_behind_the_build_that_never_syncs_fails_before_minting(tmp_path: Path) -> None:
    fake = FakeClock(sync_after=None)
    with pytest.raises(PhaseFailed) as e:
        _run(tmp_path, fake.clock(wait=10))
    assert "behind this image's build time" in e.value.message
    assert "1970-01-01T00:00:42Z" in e.value.message
    assert "NTP" in e.value.hint and "RTC" in e.value.hint
    assert sum(fake.slept) == 10  # bounded
    assert not (tmp_path / "etc/kubernetes/pki/ca.key").exists()
    marker = json.loads((tmp_path / "var/lib/kubeinit/init.failed").read_text())
    assert marker["phase"] == "certs/ca"


def test_minting_waits_for_sync_and_uses_the_synchronised_time(tmp_path: Path) -> None:
    fake = FakeClock(sync_after=3)
    out = _run(tmp_path, fake.clock(wait=60))
    assert "waiting up to 60 s for time synchronisation" in out
    assert len(fake.slept) == 3
    cert = x509.load_pem_x509_certificate((tmp_path / "etc/kubernetes/pki/ca.crt").read_bytes())
    # NotBefore comes from the time after the sync, not from 1970 (kubeadm: start - 5 min)
    age = datetime.datetime.now(UTC) - cert.not_valid_before_utc
    assert datetime.timedelta(0) < age < datetime.timedelta(minutes=10)


def test_a_right_clock_does_not_wait(tmp_path: Path) -> None:
    slept: list[float] = []
    clock = timegate.Clock(synchronized=lambda: False, sleep=slept.append)
    _run(tmp_path, clock)
    assert slept == [] and (tmp_path / "etc/kubernetes/pki/ca.key").exists()


def test_the_profiles_build_time_is_the_reference(tmp_path: Path) -> None:
    now = datetime.datetime.now(UTC)
    future = SimpleNamespace(built=(now + datetime.timedelta(days=400)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"))
    slept: list[float] = []
    clock = timegate.Clock(synchronized=lambda: False, sleep=slept.append, wait=4, poll=2)
    with pytest.raises(PhaseFailed, match="behind this image's build time"):
        _time_gate(_ctx(tmp_path, future), clock, Reporter(stream=io.StringIO()), "certs/ca")
    assert slept == [2, 2]
    # a synchronised clock is trusted even when the build host's clock ran ahead
    trusted = timegate.Clock(synchronized=lambda: True, sleep=slept.append)
    ctx = _time_gate(_ctx(tmp_path, future), trusted, Reporter(stream=io.StringIO()), "certs/ca")
    assert ctx.start_time.year == now.year
    past = SimpleNamespace(built="2020-01-01T00:00:00Z")
    same = _ctx(tmp_path, past)
    assert _time_gate(same, timegate.Clock(synchronized=lambda: False), Reporter(
        stream=io.StringIO()), "certs/ca") is same
