"""Is KVM usable here? Answered by running a guest, not by looking at /dev/kvm.

On some hosts /dev/kvm opens and even creates VMs, but guests never run (nested virtualisation
without the CPU features QEMU asks for: `qemu -accel kvm -cpu host` aborts, or the guest hangs).
libguestfs only checks that /dev/kvm opens, so it would pick KVM and hang. We boot a 512-byte
boot sector that writes to QEMU's isa-debug-exit port: QEMU then exits with status
(0x31 << 1) | 1 = 99. Anything else within the timeout means "use TCG". The answer is cached
per boot (keyed by /proc/sys/kernel/random/boot_id).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kubeinit.errors import KubeinitError
from kubeinit.fs import write_file
from kubeinit.run import run

QEMU = "qemu-system-x86_64"
_EXPECTED = (0x31 << 1) | 1
# mov al, 0x31; out 0xf4, al; hlt
_BOOT_SECTOR = b"\xb0\x31\xe6\xf4\xf4".ljust(510, b"\0") + b"\x55\xaa"
_TIMEOUT = 10.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def probe(accel: str) -> bool:
    """True when QEMU with `accel` ("kvm" or "tcg") runs a guest to completion."""
    with tempfile.TemporaryDirectory(prefix="kubeinit-kvm-probe.") as tmp:
        disk = Path(tmp) / "boot.img"
        write_file(disk, _BOOT_SECTOR, 0o600)
        argv = [
            QEMU,
            "-accel",
            accel,
            *(["-cpu", "host"] if accel == "kvm" else []),
            "-machine",
            "pc",
            "-m",
            "16",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive",
            f"file={disk},format=raw,if=ide,snapshot=on",
        ]
        try:
            result = run(argv, check=False, timeout=_TIMEOUT)
        except KubeinitError:  # timed out (a hung guest) or no qemu
            return False
        return result.returncode == _EXPECTED


def kvm_usable(cache_dir: Path) -> bool:
    """KVM runs guests on this machine (cached for this boot)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    stamp = cache_dir / f"kvm-probe-{_boot_id()}"
    if stamp.is_file():
        return stamp.read_text().strip() == "usable"
    usable = probe("kvm")
    write_file(stamp, "usable\n" if usable else "unusable\n", 0o644)
    return usable
