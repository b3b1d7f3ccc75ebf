"""Boot a disk image under QEMU and look at it from outside: test and demo tooling for the
end-to-end demo (tests/e2e, hack/demo, bench/boot.py).

    with VM.start(disk, workdir) as vm:          # UEFI (OVMF), KVM if it runs guests, else TCG
        vm.wait_for(r"kubeinit init complete", timeout=1200)
        vm.powerdown()                            # ACPI power button: a clean shutdown
    journal = read_back(disk, workdir / "guest")  # the guest's files, read after power-off

The guest has no way out. QEMU runs in a new, empty network namespace (`unshare --net`, only
loopback up), so its user networking (slirp) cannot reach anything, and neither can the guest.
The guest still sees an ordinary network: DHCP gives it 10.0.2.15 with a default route via
10.0.2.2, so kubeadm-style address detection (the default route's interface) works as on a
real node. (`-nic user,restrict=on` alone would not do: libslirp then leaves the router and DNS
options out of its DHCP answers, bootp.c, and the guest has no default route at all.) The only
way in is one forwarded TCP port, 127.0.0.1:<api_port> -> guest:6443, which listens inside that
namespace: run clients with `vm.in_netns(argv)` (nsenter).

The serial console (kernel, systemd and kubeinit.service, which logs to the console too) goes
to a file that `wait_for` polls. Power-off goes through QMP (`system_powerdown`), a power cut is
SIGKILL of QEMU. Everything runs with a hard timeout; `close` never leaves QEMU running. A wait
that runs out names the VM and its accelerator and says how to force TCG (KUBEINIT_ACCEL=tcg,
read here and passed to builder.accel, which otherwise boots a real kernel to decide).

After power-off the guest's root filesystem is read without mounting it and without libguestfs:
the qcow2 is converted to a sparse raw file and debugfs (e2fsprogs) copies files out of the
ext4 root partition, located from the GPT. `journalctl -D` then reads the guest's journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from builder.accel import ENV as ACCEL_ENV  # noqa: E402
from builder.accel import choose, parse_override, qemu_args  # noqa: E402
from tests.tooling.node_image import cache_root  # noqa: E402

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
SECTOR = 512
API_PORT_IN_GUEST = 6443
GUEST_ADDRESS = "10.0.2.15"  # QEMU user networking's first DHCP address


FORCE_TCG = f"{ACCEL_ENV}=tcg forces TCG"


def accel() -> str:
    """"kvm" where KVM really boots a kernel here (builder.accel), else "tcg";
    KUBEINIT_ACCEL=kvm|tcg decides instead (the test tooling's edge reads it here)."""
    return str(choose(cache_root(), parse_override(os.environ.get(ACCEL_ENV))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def overlay(base: Path, dest: Path) -> Path:
    """A qcow2 whose backing file is `base`: each boot scenario writes only its own file."""
    dest.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(dest)], check=True, timeout=60)
    return dest


@dataclass
class VM:
    disk: Path
    serial: Path
    qmp_path: Path
    proc: subprocess.Popen[bytes]
    api_port: int
    accel: str
    started: float  # time.monotonic() when QEMU was started (power-on)
    deadline: float  # the hard limit for this VM
    log: list[str] = field(default_factory=list)

    @classmethod
    def launch(cls, disk: Path, workdir: Path, *, name: str = "vm", memory_mib: int = 6144,
               cpus: int = 2, hard_timeout: float = 3600, api_port: int | None = None,
               use_accel: str | None = None, cache: str = "writeback") -> VM:
        workdir.mkdir(parents=True, exist_ok=True)
        serial = workdir / f"{name}.serial.log"
        qmp_path = workdir / f"{name}.qmp"
        serial.unlink(missing_ok=True)
        qmp_path.unlink(missing_ok=True)
        port = api_port or free_port()
        acc = parse_override(use_accel or accel())
        assert acc is not None
        assert OVMF_CODE.is_file(), f"{OVMF_CODE} missing: run hack/install-deps (ovmf)"
        argv = [
            QEMU, "-name", name,
            "-machine", "q35", *qemu_args(acc),
            "-m", str(memory_mib), "-smp", str(cpus),
            "-display", "none", "-vga", "none", "-no-reboot",
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=virtio,format=qcow2,file={disk},cache={cache}",
            "-nic", f"user,model=virtio-net-pci,"
                    f"hostfwd=tcp:127.0.0.1:{port}-:{API_PORT_IN_GUEST}",
            # entropy from the host: under TCG the guest kernel's own jitter entropy can stall
            # getrandom() for minutes ("soft lockup ... [systemd-journal]" in
            # __x64_sys_getrandom was seen on a busy host); a cloud VM has virtio-rng too
            "-device", "virtio-rng-pci",
            "-serial", f"file:{serial}",
            "-qmp", f"unix:{qmp_path},server=on,wait=off",
            "-monitor", "none",
        ]
        # An empty network namespace with only loopback: QEMU's user networking (slirp) can
        # reach nothing, so neither can the guest, which still gets a DHCP lease with a default
        # route (restrict=on would withhold the route: libslirp bootp.c).
        argv = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                *argv]
        out = (workdir / f"{name}.qemu.log").open("wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        now = time.monotonic()
        return cls(disk, serial, qmp_path, proc, port, str(acc), now, now + hard_timeout)

    @classmethod
    @contextlib.contextmanager
    def start(cls, disk: Path, workdir: Path, **kwargs: object) -> Iterator[VM]:
        vm = cls.launch(disk, workdir, **kwargs)  # type: ignore[arg-type]
        try:
            yield vm
        finally:
            vm.close()

    # --- watching ------------------------------------------------------------------------

    def text(self) -> str:
        try:
            return self.serial.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def in_netns(self, argv: list[str]) -> list[str]:
        """`argv` run in QEMU's network namespace (where the forwarded port listens)."""
        return ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "--", *argv]

    def qemu_said(self) -> str:
        """The end of QEMU's own output (e.g. "failed to set MSR 0x10a" under a broken KVM)."""
        log = self.serial.with_name(self.serial.name.replace(".serial.log", ".qemu.log"))
        try:
            return " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) or "-"
        except OSError:
            return "-"

    def what(self) -> str:
        return f"QEMU booting {self.disk.name} under {self.accel.upper()}"

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pattern: str, timeout: float, *, start: int = 0,
                 fail: str | None = None) -> re.Match[str]:
        """The first match of `pattern` in the serial output (from offset `start`), waiting
        up to `timeout` seconds (and never past the VM's hard deadline). A match of `fail`
        first, QEMU exiting, or the time running out raise AssertionError with the tail."""
        rx = re.compile(pattern, re.M)
        frx = re.compile(fail, re.M) if fail else None
        limit = min(time.monotonic() + timeout, self.deadline)
        while True:
            text = self.text()
            m = rx.search(text, start)
            if m:
                return m
            if frx is not None and (f := frx.search(text, start)):
                raise AssertionError(f"{f.group(0)!r} on the serial console:\n{text[-4000:]}")
            if not self.running():
                raise AssertionError(f"{self.what()} exited ({self.proc.returncode}) before"
                                     f" {pattern!r} ({FORCE_TCG}); QEMU said:"
                                     f" {self.qemu_said()}\n{text[-4000:]}")
            if time.monotonic() > limit:
                waited = min(timeout, self.deadline - self.started)
                self.kill()
                raise AssertionError(f"{self.what()} hung: no {pattern!r} on the serial console"
                                     f" within {waited:.0f} s; QEMU was stopped ({FORCE_TCG})"
                                     f":\n{text[-4000:]}")
            time.sleep(0.2)

    # --- power -----------------------------------------------------------------------------

    def qmp(self, command: str) -> dict[str, object]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.qmp_path))
            f = s.makefile("rwb")
            json.loads(f.readline())  # greeting
            for cmd in ("qmp_capabilities", command):
                f.write(json.dumps({"execute": cmd}).encode() + b"\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "return" in reply or "error" in reply:
                        break
            return dict(reply)

    def powerdown(self, timeout: float = 180) -> float:
        """Press the ACPI power button and wait for QEMU to exit (systemd shuts down
        cleanly). Returns the seconds it took; SIGKILL and AssertionError after `timeout`."""
        t0 = time.monotonic()
        self.qmp("system_powerdown")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.what()}: the guest did not power off within {timeout} s"
                                 f" ({FORCE_TCG}):\n{self.text()[-3000:]}") from None
        return time.monotonic() - t0

    def kill(self) -> None:
        """Cut the power: SIGKILL QEMU (the guest gets no chance to flush anything)."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def close(self) -> None:
        self.kill()
        self.qmp_path.unlink(missing_ok=True)


# --- reading the guest back after power-off ---------------------------------------------------


def root_partition_offset(raw: Path, label: str = "root") -> int:
    """Byte offset of the GPT partition named `label`."""
    with raw.open("rb") as f:
        f.seek(SECTOR)
        header = f.read(92)
        assert header[:8] == b"EFI PART", f"{raw}: no GPT"
        entries_lba = int.from_bytes(header[72:80], "little")
        count = int.from_bytes(header[80:84], "little")
        size = int.from_bytes(header[84:88], "little")
        f.seek(entries_lba * SECTOR)
        table = f.read(count * size)
    for i in range(count):
        e = table[i * size:(i + 1) * size]
        if e[56:128].decode("utf-16-le").rstrip("\0") == label:
            return int.from_bytes(e[32:40], "little") * SECTOR
    raise AssertionError(f"{raw}: no partition named {label}")


@dataclass(frozen=True)
class Guest:
    """The guest's root filesystem, read-only, after power-off."""

    raw: Path
    offset: int

    @property
    def device(self) -> str:
        return f"{self.raw}?offset={self.offset}" if self.offset else str(self.raw)

    def _debugfs(self, request: str) -> bytes:
        out = subprocess.run(["debugfs", "-R", request, self.device], capture_output=True,
                             check=True, timeout=600)
        return out.stdout

    def read(self, path: str) -> bytes:
        assert self.exists(path), f"{path} does not exist in the guest"
        return self._debugfs(f"cat {path}")

    def exists(self, path: str) -> bool:
        out = subprocess.run(["debugfs", "-R", f"stat {path}", self.device],
                             capture_output=True, text=True, timeout=120, check=False)
        return "Inode:" in out.stdout

    def mode(self, path: str) -> int:
        """Permission bits of `path` (debugfs stat: "Mode:  0600")."""
        out = self._debugfs(f"stat {path}").decode()
        m = re.search(r"Mode:\s+([0-7]+)", out)
        assert m, out
        return int(m.group(1), 8) & 0o7777

    def copy_out(self, path: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["debugfs", "-R", f"rdump {path} {dest}", self.device],
                       capture_output=True, check=True, timeout=600)
        return dest / Path(path).name

    def journal(self, dest: Path) -> Journal:
        """The guest's journal (/var/log/journal), copied out to `dest`."""
        return Journal(self.copy_out("/var/log/journal", dest))


@dataclass(frozen=True)
class Journal:
    """A copied-out journal directory, read with the host's journalctl."""

    directory: Path

    def text(self, *args: str) -> str:
        """`journalctl -D DIR ARGS` (e.g. `-u kubeinit -b <id>`), as text."""
        out = subprocess.run(["journalctl", "-D", str(self.directory), "--no-pager", *args],
                             capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode in (0, 1), out.stderr
        return out.stdout

    def records(self, *args: str) -> list[dict[str, str]]:
        """`journalctl -o json ARGS`, one dict per entry (binary fields decoded)."""
        out = []
        for line in self.text("-o", "json", *args).splitlines():
            rec = json.loads(line)
            for k, v in rec.items():
                if isinstance(v, list):  # binary or repeated field
                    rec[k] = (bytes(v).decode("utf-8", "replace") if v and isinstance(v[0], int)
                              else " ".join(map(str, v)))
                elif v is None:
                    rec[k] = ""
            out.append(rec)
        return out

    def boots(self) -> list[str]:
        """Boot IDs, oldest first."""
        seen: list[str] = []
        for rec in self.records("--output-fields=_BOOT_ID"):
            if rec.get("_BOOT_ID") and rec["_BOOT_ID"] not in seen:
                seen.append(rec["_BOOT_ID"])
        return seen


def read_back(disk: Path, dest: Path) -> Guest:
    """Convert `disk` (with its backing chain) to a sparse raw file under `dest`. After a power
    cut, what was fsync-ed may sit only in the root filesystem's ext4 journal, which debugfs
    does not read: then the partition is copied into a file of its own and its journal
    replayed, as the next mount would do (`e2fsck -E journal_only`; e2fsck cannot re-open a
    filesystem given as FILE?offset=N after replaying it)."""
    dest.mkdir(parents=True, exist_ok=True)
    raw = dest / (disk.stem + ".raw")
    raw.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(disk), str(raw)],
                   check=True, timeout=900)
    guest = Guest(raw, root_partition_offset(raw))
    stats = guest._debugfs("stats").decode()
    features = next((ln for ln in stats.splitlines() if ln.startswith("Filesystem features")), "")
    if "needs_recovery" not in features:
        return guest
    part = dest / (disk.stem + ".root.raw")
    subprocess.run(["dd", f"if={raw}", f"of={part}", "bs=4M", f"skip={guest.offset}",
                    "iflag=skip_bytes", "conv=sparse", "status=none"], check=True, timeout=900)
    raw.unlink()
    fsck = subprocess.run(["e2fsck", "-E", "journal_only", "-y", str(part)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert fsck.returncode in (0, 1), f"e2fsck -E journal_only: {fsck.stdout}{fsck.stderr}"
    return Guest(part, 0)


def discard(guest: Guest) -> None:
    guest.raw.unlink(missing_ok=True)


def have_tools() -> list[str]:
    """The host tools this module needs that are missing."""
    need = [QEMU, "qemu-img", "debugfs", "e2fsck", "journalctl", "unshare", "nsenter"]
    return [t for t in need if shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
            is None]
