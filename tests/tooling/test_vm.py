"""tests/tooling/vm.py: a wait on a VM that never answers ends within its bound, stops QEMU and
says what hung and how to force TCG. Real QEMU (UEFI firmware, a blank disk that boots nothing)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.tooling.vm import VM

pytestmark = pytest.mark.real


def blank_disk(path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True,
                   timeout=60)
    return path


def test_a_guest_that_never_answers_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    disk = blank_disk(tmp_path / "blank.qcow2")
    with VM.start(disk, tmp_path / "vm", name="blank", memory_mib=256, cpus=1,
                  use_accel="tcg") as vm:
        start = time.monotonic()
        with pytest.raises(AssertionError) as e:
            vm.wait_for(r"kubeinit init complete", timeout=8)
        elapsed = time.monotonic() - start
        assert not vm.running(), "QEMU still runs after the wait gave up"
    message = str(e.value)
    assert message.startswith("QEMU booting blank.qcow2 under TCG hung:")
    assert "within 8 s" in message and "KUBEINIT_ACCEL=tcg forces TCG" in message
    assert 8 <= elapsed < 8 + 15


def test_the_hard_deadline_bounds_every_wait(tmp_path: Path) -> None:
    disk = blank_disk(tmp_path / "blank.qcow2")
    with VM.start(disk, tmp_path / "vm", name="blank", memory_mib=256, cpus=1,
                  use_accel="tcg", hard_timeout=5) as vm:
        start = time.monotonic()
        with pytest.raises(AssertionError, match="hung"):
            vm.wait_for(r"never", timeout=600)  # asks for 10 minutes, gets the VM's 5 s
        assert time.monotonic() - start < 5 + 15
