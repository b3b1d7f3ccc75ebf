"""builder/accel.py: KVM counts as usable only when a real Linux kernel boots to userspace on it
and answers; the verdict is cached per boot; KUBEINIT_ACCEL overrides it. Real QEMU, the host's
real kernel (/boot/vmlinuz-*, linux-image-amd64) and busybox-static."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from builder import accel
from builder.accel import Accel
from kubeinit.errors import InvalidInput

pytestmark = pytest.mark.real

HAVE_KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)


def test_the_host_has_what_the_probe_boots() -> None:
    kernel = accel.probe_kernel()
    assert kernel is not None, "no /boot/vmlinuz-*: hack/install-deps installs linux-image-amd64"
    assert accel._is_static_elf(accel.BUSYBOX), "hack/install-deps installs busybox-static"


def test_a_real_kernel_reaches_userspace_under_tcg() -> None:
    # the same kernel and initramfs under the emulator: proves the probe itself works
    result = accel.probe(Accel.TCG)
    assert result.ok, result.detail
    assert result.seconds < accel.PROBE_TIMEOUT


def test_a_guest_that_never_answers_is_unusable_within_the_bound() -> None:
    silent = "#!/bin/busybox sh\n/bin/busybox sleep 600\n"  # boots, but never says the marker
    start = time.monotonic()
    result = accel.probe(Accel.TCG, init=silent, timeout=15)
    elapsed = time.monotonic() - start
    assert not result.ok
    assert "did not reach userspace within 15 s" in result.detail
    assert elapsed < 15 + 10


def test_a_marker_printed_by_anyone_but_init_does_not_count(tmp_path: Path) -> None:
    # /init prints a different marker: the probe wants the one it generated
    wrong = "#!/bin/busybox sh\n/bin/busybox echo KUBEINIT-PROBE-0000\n/bin/busybox poweroff -f\n"
    result = accel.probe(Accel.TCG, init=wrong, timeout=30)
    assert not result.ok
    assert "no answer" in result.detail


def test_a_broken_kernel_is_unusable_at_once(tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinuz-broken"
    kernel.write_bytes(b"\x00" * 4096)
    start = time.monotonic()
    result = accel.probe(Accel.TCG, kernel=kernel, timeout=30)
    assert not result.ok and result.ran
    assert time.monotonic() - start < 30


def test_a_dynamic_busybox_cannot_probe() -> None:
    # /bin/ls needs ld.so, which the initramfs does not have: not probed, not remembered
    result = accel.probe(Accel.KVM, busybox=Path("/bin/ls"))
    assert not result.ok and not result.ran
    assert "busybox-static" in result.detail


def test_initramfs_is_a_newc_archive_with_a_console_and_init() -> None:
    data = accel.initramfs(b"BUSYBOX", "#!/bin/busybox sh\n")
    assert data.startswith(b"070701") and len(data) % 512 == 0
    for name in (b"dev/console\0", b"bin/busybox\0", b"init\0", b"TRAILER!!!\0"):
        assert name in data
    # the console is a character device 5:1 (rdevmajor, rdevminor fields of its header)
    head = data[data.index(b"dev/console\0") - 104 : data.index(b"dev/console\0")]
    assert int(head[1 * 8 : 2 * 8], 16) & 0o170000 == 0o020000
    assert (int(head[9 * 8 : 10 * 8], 16), int(head[10 * 8 : 11 * 8], 16)) == (5, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("kvm", Accel.KVM), ("TCG", Accel.TCG), (" tcg ", Accel.TCG)],
    ids=["unset", "empty", "kvm", "upper-case", "spaces"],
)
def test_override_values(value: str | None, expected: Accel | None) -> None:
    assert accel.parse_override(value) is expected


def test_a_bad_override_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as e:
        accel.parse_override("hvf")
    assert "KUBEINIT_ACCEL='hvf'" in e.value.message
    assert e.value.hint and "KUBEINIT_ACCEL=tcg" in e.value.hint


@pytest.mark.parametrize("forced", [Accel.KVM, Accel.TCG], ids=["kvm", "tcg"])
def test_an_override_skips_the_probe(tmp_path: Path, forced: Accel) -> None:
    accel.record(tmp_path, forced is not Accel.KVM, "a verdict the override must beat")
    assert accel.choose(tmp_path, forced) is forced
    assert accel.stamp_path(tmp_path).read_text().splitlines()[1] == (
        "a verdict the override must beat"
    )


@pytest.mark.parametrize("verdict", [True, False], ids=["usable", "unusable"])
def test_a_recorded_verdict_is_used_without_probing(tmp_path: Path, verdict: bool) -> None:
    if not HAVE_KVM:
        assert accel.choose(tmp_path) is Accel.TCG  # no /dev/kvm: TCG, whatever was recorded
        return
    accel.record(tmp_path, verdict, "recorded by the test")
    assert accel.choose(tmp_path) is (Accel.KVM if verdict else Accel.TCG)


def test_the_verdict_is_probed_once_per_boot_and_tells_the_truth(tmp_path: Path) -> None:
    chosen = accel.choose(tmp_path)
    if not HAVE_KVM:
        assert chosen is Accel.TCG and not accel.stamp_path(tmp_path).exists()
        return
    lines = accel.stamp_path(tmp_path).read_text().splitlines()
    assert lines[0] == ("usable" if chosen is Accel.KVM else "unusable")
    assert "vmlinuz" in lines[1]  # the reason names the kernel that was booted
    # a fresh probe agrees with the cached verdict
    assert accel.probe(Accel.KVM).ok is (chosen is Accel.KVM)
    print(f"\nKVM on this machine: {lines[0]} ({lines[1]})")
