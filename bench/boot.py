#!/usr/bin/env python3
"""Seconds from power-on to the join command being written, for an image built by
kubeinit-build and booted under QEMU offline (issue 6; the demo's image and boot:
tests/tooling/node_image.py, tests/tooling/boot_node.py), and how they split:

  boot                 power-on to kubeinit.service start: firmware (from the serial console)
                       + kernel to the unit's start (from the guest's journal)
  kubeinit's own work  kubeinit.service start to the join command written, minus the wait for
                       the control plane; of which preflight, and within it the image import
                       (containerd importing the preloaded archives in ImagePull: archive mode
                       only), are shown apart
  waiting              the wait-control-plane phase: the kubelet starting the static Pods and
                       the API server, controller-manager and scheduler becoming healthy

Each run boots a fresh overlay of the same image (the image is built once and cached).

Two images side by side (issue 13), built from the same inputs: `unpacked` (the default build:
the images already in containerd's store) and `archives` (`kubeinit-build --no-unpack`: the
archives imported at first boot, as before), with their sizes. One VM at a time.

Usage: .venv/bin/python bench/boot.py [--runs 1] [--mode both|unpacked|archives]
                                      [--config FILE] [--json out.json]
Goal (issue 6): under 60 s from power-on under KVM. TCG figures are in docs/e2e.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.tooling.boot_node import first_boot  # noqa: E402
from tests.tooling.node_image import (  # noqa: E402
    _last_line,
    _stderr,
    cache_root,
    source_digest,
)
from tests.tooling.vm import Journal  # noqa: E402

CONFIG = REPO / "tests" / "e2e" / "data" / "cluster.yaml"
GOAL_KVM = 60.0
ROWS = (
    ("power-on to join command written", "power_on_to_join_command"),
    ("  boot: power-on to kubeinit.service start", "power_on_to_kubeinit"),
    ("    firmware (OVMF) to the kernel", "firmware"),
    ("    kernel to kubeinit.service start", "kernel_to_kubeinit"),
    ("  kubeinit's own work", "kubeinit_own"),
    ("    of which: preflight", "preflight"),
    ("      of which: image import (ctr, in preflight)", "image_import"),
    ("  waiting for the control plane (wait-control-plane)", "wait_control_plane"),
    ("kubeinit CPU seconds, all phases", "kubeinit_cpu"),
    ("kubeinit.service CPU seconds (systemd: Consumed)", "unit_cpu"),
)
CONSUMED = re.compile(r"kubeinit\.service: Consumed (?:(\d+)min )?([\d.]+)s CPU time")


def unit_cpu(journal_dir: Path) -> float:
    """systemd's account of kubeinit.service's CPU (the process and everything it ran: ctr,
    crictl, ...), from the guest's journal."""
    text = Journal(journal_dir).text("-u", "kubeinit.service", "-o", "cat")
    m = CONSUMED.search(text)
    return (int(m.group(1) or 0) * 60 + float(m.group(2))) if m else float("nan")


def bench_image(mode: str, config: Path, base: Path, images: Path) -> Path:
    """The node image for `mode` (`--no-unpack` for archives), built by the real kubeinit-build
    and cached under <cache>/bench-boot/<mode>/<key>/ (key: tests/tooling/node_image.py's),
    apart from the test's image so that a test session never removes it mid-build."""
    key = source_digest(config, base, images)
    top = cache_root() / "bench-boot" / mode
    out = top / key / "node.qcow2"
    if out.is_file():
        return out
    shutil.rmtree(top, ignore_errors=True)
    out.parent.mkdir(parents=True)
    tmp = out.with_suffix(".tmp.qcow2")
    extra = ["--no-unpack"] if mode == "archives" else []
    subprocess.run([sys.executable, "-m", "builder", "--image", str(base), "--output", str(tmp),
                    "--config", str(config), "--images", str(images), *extra],
                   cwd=REPO, check=True, timeout=3600, stdout=sys.stderr)
    tmp.rename(out)
    return out


def disk_mib(path: Path) -> float:
    return path.stat().st_blocks * 512 / 2**20


def boot(image: Path, runs: int) -> list[dict[str, float]]:
    """`runs` first boots of fresh overlays of `image`. A boot that does not complete is
    reported with its directory (console log, overlay) kept; the others are measured."""
    out = []
    for i in range(runs):
        tmp = Path(tempfile.mkdtemp(prefix="kubeinit-bench-boot."))
        with open(os.devnull, "w") as quiet:
            ok, timings, _ = first_boot(image, tmp, stream=False, out=quiet)
        if not ok or timings is None:
            print(f"bench: {image}: run {i + 1}: first boot did not complete (kept: {tmp})",
                  file=sys.stderr)
            continue
        row: dict[str, float] = {k: float(v) for k, v in asdict(timings).items()
                                 if isinstance(v, (int, float))}  # image_import: sum([]) == 0
        row["preflight"] = timings.phases.get("preflight", float("nan"))
        row["unit_cpu"] = unit_cpu(tmp / "journal" / "journal")
        out.append(row)
        print(f"{image.parent.parent.name}: run {i + 1}:"
              f" {timings.power_on_to_join_command:.1f} s ({timings.accel})", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--mode", choices=("both", "unpacked", "archives"), default="both")
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    base = Path(_last_line([str(REPO / "hack" / "base-image")], "base image", _stderr))
    archives = Path(_last_line([sys.executable, str(REPO / "hack" / "oci-images")],
                               "control-plane images", _stderr))
    modes = ("archives", "unpacked") if args.mode == "both" else (args.mode,)
    images = {m: bench_image(m, args.config, base, archives) for m in modes}
    results = {mode: boot(image, args.runs) for mode, image in images.items()}
    if not all(results.values()):
        failed = [m for m, r in results.items() if not r]
        raise SystemExit(f"bench: no completed first boot for {', '.join(failed)}")
    print(f"first boot, {len(next(iter(results.values())))} run(s) each, median seconds")
    print(f"{'':<55} " + " ".join(f"{m:>10}" for m in modes))
    for label, key in ROWS:
        cells = [statistics.median(r[key] for r in results[m]) for m in modes]
        print(f"{label:<55} " + " ".join(f"{c:10.1f}" for c in cells))
    print(f"{'image file, MiB on disk (qcow2)':<55} "
          + " ".join(f"{disk_mib(images[m]):10.0f}" for m in modes))
    base_mib = disk_mib(base)
    print(f"{'  growth over the base image, MiB':<55} "
          + " ".join(f"{disk_mib(images[m]) - base_mib:10.0f}" for m in modes))
    archives_mib = sum(p.stat().st_size for p in archives.glob("*.tar")) / 2**20
    print(f"archives (--images): {archives_mib:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
