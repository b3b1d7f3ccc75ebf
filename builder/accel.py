"""KVM or TCG? Answered by booting a real Linux kernel, not by looking at /dev/kvm.

On some hosts /dev/kvm opens and even runs toy guests, but a real kernel never gets anywhere:
nested virtualisation without the CPU features QEMU asks for makes `-cpu host`/`-cpu max` abort
("failed to set MSR 0x10a"), and with QEMU's default CPU model the kernel spins at 100% without
printing a line. libguestfs only checks that /dev/kvm opens, so it picks KVM and its appliance
hangs (issue 11: 16 minutes, while a 512-byte real-mode boot sector ran fine under KVM).

So the probe boots what will really run: the host's own kernel (`/boot/vmlinuz-*`, the one
libguestfs' appliance boots too) with a tiny initramfs built here (cpio "newc", written by this
module: a static busybox and an `/init` script) that must reach userspace, print a random marker
on the serial console and power off, under `-accel kvm -cpu max,la57=off` (exactly the CPU
libguestfs 1.48 gives its appliance, and the boot test's since issue 11), within PROBE_TIMEOUT
seconds. Anything else is "use TCG". (Seen on a 2-core cloud VM: `-cpu max`/`host` abort with
"failed to set MSR 0x10a", and with QEMU's default CPU the kernel's real-mode setup prints
"Probing EDD ... ok", as the old boot-sector probe did, then nothing more, forever.)
The verdict is cached per boot (keyed by /proc/sys/kernel/random/boot_id); an appliance that
then hangs or dies under KVM records "unusable" too (builder.guest).

KUBEINIT_ACCEL=kvm|tcg skips the probe. It is read at the edges (kubeinit-build's command line
and the test tooling), which pass the parsed value down as `forced`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from kubeinit.errors import InvalidInput, KubeinitError
from kubeinit.fs import write_file
from kubeinit.run import run

log = logging.getLogger("kubeinit.builder.accel")

QEMU = "qemu-system-x86_64"
ENV = "KUBEINIT_ACCEL"
# A real kernel reaches userspace in ~1 s under KVM and ~6 s under TCG on an idle 2-core
# machine; a hung guest prints nothing at all. 60 s leaves room for a busy host.
PROBE_TIMEOUT = 60.0
BOOT_DIR = Path("/boot")
# busybox-static (hack/host-tools.tsv): the initramfs must not need a dynamic loader.
BUSYBOX = Path("/bin/busybox")
_STAMP = "kvm-verdict-{boot_id}"  # not "kvm-probe-*": verdicts of the boot-sector probe lied


class Accel(StrEnum):
    KVM = "kvm"
    TCG = "tcg"


def parse_override(value: str | None) -> Accel | None:
    """The value of KUBEINIT_ACCEL (None or "" = probe). For the edges only."""
    if not value:
        return None
    try:
        return Accel(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"{ENV}={value!r}: expected kvm or tcg",
            hint=f"unset {ENV} to let kubeinit probe, or set {ENV}=tcg to force the emulator",
        ) from None


def qemu_args(accel: Accel) -> list[str]:
    """The accelerator and CPU options every QEMU kubeinit starts uses (probe, boot test)."""
    if accel is Accel.KVM:
        return ["-accel", "kvm", "-cpu", "max,la57=off"]
    return ["-accel", "tcg"]


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    seconds: float
    detail: str  # why not, or what answered
    ran: bool = True  # False: nothing to probe with (no kernel, no static busybox)


def probe_kernel(boot: Path = BOOT_DIR) -> Path | None:
    """The newest readable /boot/vmlinuz-* (as libguestfs' supermin picks one)."""

    def key(p: Path) -> list[int]:
        return [int(n) for n in re.findall(r"\d+", p.name)]

    for k in sorted(boot.glob("vmlinuz-*"), key=key, reverse=True):
        if os.access(k, os.R_OK):
            return k
    return None


def _is_static_elf(path: Path) -> bool:
    """An ELF executable without a PT_INTERP program header (needs no dynamic loader)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only (x86_64 hosts)
        return False
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    for i in range(phnum):
        off = phoff + i * phentsize
        if int.from_bytes(data[off : off + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def _cpio_entry(
    ino: int, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
) -> bytes:
    """One cpio "newc" record (the initramfs format, Documentation/driver-api/early-userspace/
    buffer-format.rst): a 110-byte ASCII header, the name, the data, each padded to 4 bytes."""
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    out = b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    return out + data + b"\0" * (-len(data) % 4)


def initramfs(busybox: bytes, init: str) -> bytes:
    """An uncompressed initramfs: /dev/console (so init has a console), /bin/busybox, /init."""
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        ("dev", stat.S_IFDIR | 0o755, b"", (0, 0)),
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
        ("bin", stat.S_IFDIR | 0o755, b"", (0, 0)),
        ("bin/busybox", stat.S_IFREG | 0o755, busybox, (0, 0)),
        ("init", stat.S_IFREG | 0o755, init.encode(), (0, 0)),
        ("TRAILER!!!", 0, b"", (0, 0)),
    ]
    archive = b"".join(_cpio_entry(i + 1, *e) for i, e in enumerate(entries))
    return archive + b"\0" * (-len(archive) % 512)


def probe_init(marker: str) -> str:
    """/init: reach userspace, say `marker` on the console, power off (QEMU then exits)."""
    return f"#!/bin/busybox sh\n/bin/busybox echo {marker}\n/bin/busybox poweroff -f\n"


def probe(
    accel: Accel,
    *,
    kernel: Path | None = None,
    busybox: Path = BUSYBOX,
    init: str | None = None,
    timeout: float = PROBE_TIMEOUT,
) -> ProbeResult:
    """Boot `kernel` (default: probe_kernel()) with the probe initramfs under `accel`: ok when
    the marker reaches the serial console within `timeout` seconds. `init` replaces the /init
    script (tests use it to prove a guest that never answers is caught)."""
    kernel = kernel or probe_kernel()
    if kernel is None:
        return ProbeResult(
            False, 0.0, f"no readable kernel {BOOT_DIR}/vmlinuz-* to probe with", ran=False
        )
    if not _is_static_elf(busybox):
        return ProbeResult(
            False, 0.0, f"{busybox} is missing or not static (busybox-static)", ran=False
        )
    marker = f"KUBEINIT-PROBE-{secrets.token_hex(8)}"
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kubeinit-accel-probe.") as tmp:
        cpio = Path(tmp) / "probe.cpio"
        serial = Path(tmp) / "serial.log"
        write_file(cpio, initramfs(busybox.read_bytes(), init or probe_init(marker)), 0o600)
        argv = [
            QEMU,
            *qemu_args(accel),
            "-machine",
            "q35",
            "-m",
            "256",
            "-smp",
            "1",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{serial}",
            "-kernel",
            str(kernel),
            "-initrd",
            str(cpio),
            "-append",
            # no_timer_check: under TCG on a loaded host the IO-APIC timer check can panic
            # ("IO-APIC + timer doesn't work!"), which says nothing about the accelerator
            "console=ttyS0 panic=-1 loglevel=4 no_timer_check",
        ]
        try:
            result = run(argv, check=False, timeout=timeout)
        except KubeinitError:  # timed out: QEMU was killed
            return ProbeResult(
                False,
                time.monotonic() - start,
                f"{kernel.name} did not reach userspace within {timeout:.0f} s under {accel}",
            )
        seconds = time.monotonic() - start
        console = serial.read_bytes().decode("utf-8", "replace") if serial.is_file() else ""
        # a line of its own: only /init knows the marker (it is not on the kernel command line)
        if re.search(rf"^{marker}\r?$", console, re.M):
            return ProbeResult(True, seconds, f"{kernel.name} reached userspace in {seconds:.1f} s")
        why = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[0]
        return ProbeResult(False, seconds, f"{kernel.name} under {accel}: no answer ({why})")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def stamp_path(cache_dir: Path) -> Path:
    return cache_dir / _STAMP.format(boot_id=_boot_id())


def record(cache_dir: Path, usable: bool, reason: str) -> None:
    """Remember the verdict for this boot: "usable"/"unusable" on line 1, the reason after."""
    write_file(stamp_path(cache_dir), f"{'usable' if usable else 'unusable'}\n{reason}\n", 0o644)


def choose(cache_dir: Path, forced: Accel | None = None) -> Accel:
    """KVM when it boots a real kernel here (probed once per boot, cached), else TCG.
    `forced` (KUBEINIT_ACCEL, parsed at the edge) wins without probing."""
    if forced is not None:
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel.TCG
    stamp = stamp_path(cache_dir)
    if stamp.is_file():
        lines = stamp.read_text().splitlines()
        return Accel.KVM if lines and lines[0] == "usable" else Accel.TCG
    result = probe(Accel.KVM)
    if not result.ran:  # nothing to probe with: not remembered, hack/install-deps may fix it
        log.warning("cannot probe KVM (%s); using TCG", result.detail)
        return Accel.TCG
    record(cache_dir, result.ok, result.detail)
    if not result.ok:
        log.warning("KVM is not usable here (%s); using TCG", result.detail)
    return Accel.KVM if result.ok else Accel.TCG


def kvm_usable(cache_dir: Path, forced: Accel | None = None) -> bool:
    """KVM runs a real kernel on this machine (cached for this boot), or is forced."""
    return choose(cache_dir, forced) is Accel.KVM
