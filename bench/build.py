#!/usr/bin/env python3
"""How long `kubeinit-build --image` takes against the floor: `virt-customize` copying the same
payload into a copy of the same base image. Alternated runs (A B, B A, ...), medians, ratio;
plus the size of the payload and what it adds to the image file.

    bench/build.py [--runs 3] [--json out.json]

Both sides start from the cached base image (hack/base-image) and produce a new image file
next to it, so both pay for one full copy and one appliance launch; both run the appliance the
same way (KVM if it runs guests here, else TCG). The payload for virt-customize is taken from a
`kubeinit-build --root` build of the same base tree with the same inputs: the same files,
modes and symlink.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builder.accel import kvm_usable  # noqa: E402
from builder.context import default_cache_dir  # noqa: E402

CONFIG = REPO / "tests" / "builder" / "data" / "cluster.yaml"
FILES = re.compile(r"wrote (\d+) files \(([\d.]+) MiB\)")


def sh(argv: list[str | Path], env: dict[str, str] | None = None) -> str:
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=False, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{out.stderr[-3000:]}")
    return out.stderr


def payload_tree(base_tree: Path, work: Path) -> Path:
    root = work / "payload-root"
    subprocess.run(["cp", "-al", str(base_tree), str(root)], check=True)
    sh([sys.executable, "-m", "builder", "--root", root, "--config", CONFIG])
    return root


def virt_customize_args(root: Path) -> list[str]:
    """The same payload as virt-customize operations."""
    return [
        "--copy-in", f"{root}/usr/lib/kubeinit:/usr/lib",
        "--upload", f"{root}/usr/bin/kubeinit:/usr/bin/kubeinit",
        "--chmod", "0755:/usr/bin/kubeinit",
        "--upload", f"{root}/usr/lib/systemd/system/kubeinit.service:/usr/lib/systemd/system/"
        "kubeinit.service",
        "--mkdir", "/usr/lib/systemd/system-preset",
        "--upload", f"{root}/usr/lib/systemd/system-preset/90-kubeinit.preset:/usr/lib/systemd/"
        "system-preset/90-kubeinit.preset",
        "--link", "/usr/lib/systemd/system/kubeinit.service:/etc/systemd/system/"
        "multi-user.target.wants/kubeinit.service",
        "--mkdir", "/etc/kubeinit",
        "--upload", f"{root}/etc/kubeinit/config.yaml:/etc/kubeinit/config.yaml",
        "--chmod", "0600:/etc/kubeinit/config.yaml",
        "--truncate", "/etc/machine-id",
        "--delete", "/var/lib/systemd/random-seed",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    t0 = time.monotonic()
    base = Path(subprocess.run([str(REPO / "hack" / "base-image")], capture_output=True,
                               text=True, check=True).stdout.split()[-1])
    print(f"base image: {base} ({base.stat().st_size / 2**20:.0f} MiB,"
          f" ready in {time.monotonic() - t0:.1f} s)", flush=True)
    env = {"LIBGUESTFS_BACKEND": "direct"}
    if not kvm_usable(default_cache_dir()):
        env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    accel = "TCG" if "LIBGUESTFS_BACKEND_SETTINGS" in env else "KVM"

    with tempfile.TemporaryDirectory(prefix="bench-build.", dir=base.parent.parent) as tmp:
        work = Path(tmp)
        root = payload_tree(base.parent / "tree", work)
        vc_ops = virt_customize_args(root)
        ours_out, vc_out = work / "ours.qcow2", work / "vc.qcow2"

        def ours() -> float:
            ours_out.unlink(missing_ok=True)
            start = time.monotonic()
            log = sh([sys.executable, "-m", "builder", "--image", base, "--output", ours_out,
                      "--config", CONFIG])
            elapsed = time.monotonic() - start
            ours.log = log  # type: ignore[attr-defined]
            return elapsed

        def floor() -> float:
            vc_out.unlink(missing_ok=True)
            start = time.monotonic()
            subprocess.run(["cp", "--sparse=auto", str(base), str(vc_out)], check=True)
            sh(["virt-customize", "-q", "--no-network", "-a", vc_out, *vc_ops], env=env)
            return time.monotonic() - start

        print("warm-up (not timed)", flush=True)
        ours()
        floor()
        times: dict[str, list[float]] = {"kubeinit-build": [], "virt-customize": []}
        for i in range(args.runs):
            order = [("kubeinit-build", ours), ("virt-customize", floor)]
            for name, fn in order if i % 2 == 0 else reversed(order):
                times[name].append(fn())
                print(f"run {i + 1}: {name} {times[name][-1]:.1f} s", flush=True)
        m = FILES.search(ours.log)  # type: ignore[attr-defined]
        files, mib = (int(m.group(1)), float(m.group(2))) if m else (0, 0.0)
        result = {
            "accelerator": accel,
            "runs": args.runs,
            "seconds": times,
            "median_kubeinit_build_s": statistics.median(times["kubeinit-build"]),
            "median_virt_customize_s": statistics.median(times["virt-customize"]),
            "payload_files": files,
            "payload_mib": mib,
            "image_growth_mib": (ours_out.stat().st_size - base.stat().st_size) / 2**20,
            "virt_customize_image_growth_mib": (vc_out.stat().st_size
                                                - base.stat().st_size) / 2**20,
        }
        result["ratio"] = result["median_kubeinit_build_s"] / result["median_virt_customize_s"]
    print(json.dumps(result, indent=2))
    print(f"kubeinit-build {result['median_kubeinit_build_s']:.1f} s vs virt-customize"
          f" {result['median_virt_customize_s']:.1f} s (medians of {args.runs}, {accel}):"
          f" ratio {result['ratio']:.2f}; payload {files} files, {mib:.1f} MiB, image +"
          f"{result['image_growth_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
