"""builder/accel.py: KVM counts as usable only when a guest really runs on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import accel

pytestmark = pytest.mark.real


def test_the_probe_guest_runs_under_tcg() -> None:
    # the same boot sector under the emulator: proves the probe itself works
    assert accel.probe("tcg") is True


def test_kvm_answer_is_cached_per_boot(tmp_path: Path) -> None:
    first = accel.kvm_usable(tmp_path)
    stamps = list(tmp_path.glob("kvm-probe-*"))
    if Path("/dev/kvm").exists():
        assert len(stamps) == 1
        assert stamps[0].read_text().strip() == ("usable" if first else "unusable")
        assert accel.kvm_usable(tmp_path) is first
    assert first == accel.probe("kvm") or not Path("/dev/kvm").exists()
