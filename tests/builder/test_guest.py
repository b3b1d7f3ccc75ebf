"""builder/guest.py: the libguestfs appliance launch is bounded, a KVM that does not answer gets
one retry under TCG and is remembered as unusable, and a hang under TCG is one clear error.
Real libguestfs appliances on a scratch disk (about 30-60 s each under TCG)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from builder import accel, guest
from builder.accel import Accel
from kubeinit.errors import PhaseFailed

pytestmark = [pytest.mark.real, pytest.mark.slow]

SCRATCH = 64 * 1024 * 1024


def scratch_handle(made: list[Accel]) -> Any:
    gfs = guest.import_guestfs()

    def make(acc: Accel) -> Any:
        made.append(acc)
        g = gfs.GuestFS(python_return_dict=True)
        g.set_backend("direct")
        if acc is Accel.TCG:
            g.set_backend_settings(["force_tcg"])
        g.add_drive_scratch(SCRATCH)
        return g

    return make


def test_a_hung_appliance_under_tcg_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    made: list[Accel] = []
    start = time.monotonic()
    with pytest.raises(PhaseFailed) as e:
        guest.launch(
            scratch_handle(made),
            cache_dir=tmp_path,
            forced=Accel.TCG,
            timeouts={Accel.KVM: 1.0, Accel.TCG: 1.0},
        )
    elapsed = time.monotonic() - start
    assert made == [Accel.TCG]  # forced: no retry
    assert "libguestfs appliance (TCG) did not answer within 1 s" in e.value.message
    assert e.value.hint and "KUBEINIT_ACCEL=tcg forces TCG" in e.value.hint
    assert elapsed < 60, f"the watchdog took {elapsed:.0f} s to stop the appliance"
    assert guest._qemu_children() == set(), "the appliance's QEMU is still running"


@pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK),
    reason="no /dev/kvm on this host: the KVM-to-TCG fallback has nothing to fall back from",
)
def test_kvm_that_does_not_answer_falls_back_to_tcg_and_is_remembered(tmp_path: Path) -> None:
    # the recorded verdict says KVM works; the appliance gets 0.5 s under KVM, which it cannot
    # make (a working KVM needs seconds, this machine's KVM fails or hangs)
    accel.record(tmp_path, True, "pretend the kernel probe passed")
    made: list[Accel] = []
    g = guest.launch(
        scratch_handle(made),
        cache_dir=tmp_path,
        timeouts={Accel.KVM: 0.5, Accel.TCG: guest.LAUNCH_TIMEOUT[Accel.TCG]},
    )
    try:
        assert made == [Accel.KVM, Accel.TCG]
        assert g.list_devices() == ["/dev/sda"]  # the retried appliance really works
    finally:
        g.close()
    verdict = accel.stamp_path(tmp_path).read_text().splitlines()
    assert verdict[0] == "unusable"
    assert "libguestfs appliance under KVM" in verdict[1]
    assert accel.choose(tmp_path) is Accel.TCG  # the next launch goes straight to TCG
