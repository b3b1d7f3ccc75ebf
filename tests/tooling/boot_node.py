"""First boot of an image built by kubeinit-build, under QEMU, offline (demo and benchmark
tooling; `hack/boot-node`, bench/boot.py).

    hack/boot-node IMAGE [--workdir DIR] [--timeout SECONDS] [--json FILE]

Boots a copy-on-write overlay of IMAGE (the image itself stays a pristine template) with
tests/tooling/vm.py: UEFI, KVM where it runs guests, else TCG, 6 GiB, 2 CPUs, no network
reachable. Streams kubeinit's lines from the serial console as they come, with the time since
power-on; when "kubeinit init complete" appears it powers the machine off (ACPI), reads the
disk back and prints `journalctl -u kubeinit` of that boot and /etc/kubeinit/join-command.
Exit status 0 on success, 1 when first boot failed or timed out (the console's tail is
printed).

Timings: power-on is QEMU's start; the guest's journal timestamps are seconds since the kernel
started, so the firmware's part is measured from the serial console (first kernel line).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from tests.tooling.vm import VM, Journal, overlay, read_back

COMPLETE = re.compile(r"kubeinit init complete in [\d.]+s")
FAILED = re.compile(r"kubeinit: error: .*")
UNIT_FINISHED = re.compile(r"Finished (?:\x1b\[[\d;]*m)?kubeinit\.service")
KUBEINIT_LINE = re.compile(r"kubeinit\[\d+\]: (.*)")
KERNEL = re.compile(r"Linux version \d")
MESSAGE_ID_PHASE_FINISHED = "f7699f37a3d448348b5729a4006f2d75"  # firstboot.log


@dataclass
class Timings:
    """Seconds. `firmware`: power-on to the kernel's first line; the rest from the journal."""

    accel: str = ""
    firmware: float = 0.0
    kernel_to_kubeinit: float = 0.0  # kernel start to kubeinit.service start
    power_on_to_kubeinit: float = 0.0
    kubeinit_total: float = 0.0  # kubeinit.service start to the join command written
    image_import: float = 0.0  # part of preflight: ctr import of the preloaded archives
    wait_control_plane: float = 0.0  # the wait-control-plane phase
    kubeinit_own: float = 0.0  # kubeinit_total - wait_control_plane
    kubeinit_cpu: float = 0.0  # CPU seconds of the kubeinit process, all phases
    power_on_to_join_command: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


def _mono(rec: dict[str, str]) -> float:
    return int(rec["__MONOTONIC_TIMESTAMP"]) / 1e6


def timings_from(journal: Journal, firmware: float, accel: str) -> Timings:
    """The split of the (only or last) boot that ran kubeinit to completion."""
    boot = journal.boots()[-1]
    started = [r for r in journal.records("-b", boot, "-u", "kubeinit.service",
                                          "SYSLOG_IDENTIFIER=systemd")
               if r.get("MESSAGE", "").startswith("Starting kubeinit.service")]
    assert started, "no 'Starting kubeinit.service' in the journal"
    t_start = _mono(started[0])
    phases = journal.records("-b", boot, f"MESSAGE_ID={MESSAGE_ID_PHASE_FINISHED}")
    by_phase = {r["KUBEINIT_PHASE"]: r for r in phases}
    join = by_phase["show-join-command"]
    t_join = _mono(join)
    text = journal.text("-b", boot, "-u", "kubeinit.service", "-o", "cat")
    imports = [float(x) for x in re.findall(r"into namespace k8s\.io in ([\d.]+)s", text)]
    t = Timings(accel=accel, firmware=firmware)
    t.kernel_to_kubeinit = t_start
    t.power_on_to_kubeinit = firmware + t_start
    t.kubeinit_total = t_join - t_start
    t.image_import = sum(imports)
    wait = by_phase.get("wait-control-plane")
    t.wait_control_plane = float(wait["KUBEINIT_DURATION"]) if wait else 0.0
    t.kubeinit_own = t.kubeinit_total - t.wait_control_plane
    t.kubeinit_cpu = sum(float(r.get("KUBEINIT_CPU") or 0) for r in phases)
    t.power_on_to_join_command = firmware + t_join
    t.phases = {p: float(r["KUBEINIT_DURATION"]) for p, r in by_phase.items()}
    return t


def first_boot(image: Path, workdir: Path, *, timeout: float = 1800, stream: bool = True,
               out: TextIO = sys.stdout) -> tuple[bool, Timings | None, Path]:
    """Boot an overlay of `image` until first boot completes (or fails); power off; read back.
    Returns (ok, timings, the overlay disk)."""
    disk = overlay(image, workdir / "node.qcow2")
    ok = False
    firmware = 0.0
    with VM.start(disk, workdir, name="node", hard_timeout=timeout + 300) as vm:
        print(f"booting {image.name} (overlay {disk}) with {vm.accel.upper()}, 6 GiB, 2 CPUs,"
              " no network; serial console: " + str(vm.serial), file=out, flush=True)
        seen = 0
        complete_at: float | None = None
        deadline = vm.started + timeout
        while True:
            text = vm.text()
            if not firmware and (m := KERNEL.search(text)):
                firmware = time.monotonic() - vm.started
                print(f"[{firmware:6.1f}s] firmware done, kernel started", file=out, flush=True)
            end = text.rfind("\n") + 1
            for line in text[seen:end].splitlines():
                km = KUBEINIT_LINE.search(line)
                if km and stream:
                    print(f"[{time.monotonic() - vm.started:6.1f}s] {km.group(1)}", file=out,
                          flush=True)
            seen = max(seen, end)
            if m := COMPLETE.search(text):
                # kubeinit said so; give its process time to exit (systemd's console line for
                # that is printed only while boot seems slow, ShowStatus=auto)
                if complete_at is None:
                    complete_at = time.monotonic()
                if UNIT_FINISHED.search(text, m.end()) or time.monotonic() - complete_at > 30:
                    ok = True
                    break
            if FAILED.search(text) or not vm.running() or time.monotonic() > deadline:
                print("first boot did not complete; the console's last lines:", file=out)
                print(text[-4000:], file=out, flush=True)
                break
            time.sleep(0.5)
        if vm.running():
            print(f"[{time.monotonic() - vm.started:6.1f}s] powering off (ACPI)", file=out,
                  flush=True)
            vm.powerdown()
        accel = vm.accel
    if not ok:
        return False, None, disk
    guest = read_back(disk, workdir / "guest")
    journal = guest.journal(workdir / "journal")
    timings = timings_from(journal, firmware, accel)
    boot = journal.boots()[-1]
    print("\n== journalctl -u kubeinit (first boot, read back from the disk; the structured"
          " copies of the phase records are left out: docs/journal.md)", file=out)
    for rec in journal.records("-b", boot, "-u", "kubeinit.service"):
        if rec.get("MESSAGE_ID") and rec.get("SYSLOG_IDENTIFIER") == "kubeinit":
            continue
        when = time.strftime("%H:%M:%S", time.gmtime(int(rec["__REALTIME_TIMESTAMP"]) / 1e6))
        who = rec.get("SYSLOG_IDENTIFIER", "")
        pid = rec.get("_PID") or rec.get("SYSLOG_PID", "")
        print(f"{when} {who}[{pid}]: {rec.get('MESSAGE', '')}", file=out)
    print("== /etc/kubeinit/join-command (mode "
          f"{guest.mode('/etc/kubeinit/join-command'):04o}; it holds the bootstrap token)",
          file=out)
    print(guest.read("/etc/kubeinit/join-command").decode(), file=out, flush=True)
    guest.raw.unlink()
    return True, timings, disk


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hack/boot-node", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", type=Path)
    ap.add_argument("--workdir", type=Path, help="overlay, console log, journal (default: temp)")
    ap.add_argument("--timeout", type=float, default=1800, help="power-on to init complete")
    ap.add_argument("--json", type=Path, help="write the timings here")
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kubeinit-boot."))
    workdir.mkdir(parents=True, exist_ok=True)
    ok, timings, _ = first_boot(args.image.resolve(), workdir, timeout=args.timeout)
    if timings is not None:
        print(f"power-on to join command: {timings.power_on_to_join_command:.0f} s"
              f" ({timings.accel.upper()}): boot {timings.power_on_to_kubeinit:.0f} s,"
              f" kubeinit {timings.kubeinit_own:.0f} s (of which image import"
              f" {timings.image_import:.0f} s), waiting for the control plane"
              f" {timings.wait_control_plane:.0f} s")
        if args.json:
            args.json.write_text(json.dumps(asdict(timings), indent=2) + "\n")
    return 0 if ok else 1
