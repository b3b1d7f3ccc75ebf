"""kubeinit's node-local phases against real kubeadm's, side by side.

For each of N pairs (alternating which goes first), run into an empty root:
  A: `kubeinit init phase P --root DIR --config F` for P in certs, kubeconfig, etcd,
     control-plane, kubelet-start (one process each, as an operator would);
  B: `kubeadm init phase P ... --config F` for the same phases (hack/kubeadm-oracle, which runs
     kubeadm in a private mount namespace; only kubeadm's own process time is counted, from
     runs.tsv, not the namespace set-up).
Prints per-phase medians, the total, and the ratio kubeinit / kubeadm. Also the import cost:
the median wall time of `kubeinit --help`.

Usage: bench/node_local.py [--pairs 5] [--config tests/data/configs/default.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHASES = ["certs all", "kubeconfig all", "etcd local", "control-plane all", "kubelet-start"]


def kubeinit_run(config: Path) -> dict[str, float]:
    out = {}
    with tempfile.TemporaryDirectory() as root:
        for phase in PHASES:
            argv = [sys.executable, "-m", "firstboot", "init", "phase", *phase.split(),
                    "--root", root, "--config", str(config)]
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            out[phase] = time.perf_counter() - t0
    return out


def kubeinit_one_process(config: Path) -> float:
    """The four phases in one `kubeinit init --local-only` process, as first boot runs them."""
    with tempfile.TemporaryDirectory() as root:
        argv = [sys.executable, "-m", "firstboot", "init", "--local-only", "--root", root,
                "--config", str(config), "--skip-phases", "preflight,kubelet-start"]
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        return time.perf_counter() - t0


def kubeadm_run(kubeadm: Path, config: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp) / "out"
        subprocess.run([str(REPO / "hack/kubeadm-oracle"), "--kubeadm", str(kubeadm),
                        "--config", str(config), "--out", str(outdir)],
                       check=True, capture_output=True)
        out = {}
        for line in (outdir / "runs.tsv").read_text().splitlines():
            fields = line.split("\t")
            if len(fields) < 5 or not fields[0].isdigit():
                continue
            argv = fields[4]
            phase = next((p for p in PHASES if f"phase {p}" in argv), None)
            if phase:
                out[phase] = (int(fields[2]) - int(fields[1])) / 1e9
    return out


def median_help() -> float:
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "firstboot", "--help"], check=True,
                       capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--config", type=Path, default=REPO / "tests/data/configs/default.yaml")
    args = ap.parse_args()
    bindir = subprocess.run([str(REPO / "hack/k8s-binaries"), "--only", "kubernetes"],
                            check=True, capture_output=True, text=True).stdout.split()[-1]
    kubeadm = Path(bindir) / "kubeadm"
    a: list[dict[str, float]] = []
    b: list[dict[str, float]] = []
    one: list[float] = []
    for i in range(args.pairs):
        if i % 2 == 0:
            a.append(kubeinit_run(args.config))
            one.append(kubeinit_one_process(args.config))
            b.append(kubeadm_run(kubeadm, args.config))
        else:
            b.append(kubeadm_run(kubeadm, args.config))
            one.append(kubeinit_one_process(args.config))
            a.append(kubeinit_run(args.config))
    print(f"node-local phases, {args.pairs} alternated pairs, medians (s), config"
          f" {args.config.name}")
    print(f"{'phase':<20} {'kubeinit':>9} {'kubeadm':>9} {'ratio':>7}")
    for phase in PHASES:
        ma = statistics.median(r[phase] for r in a)
        mb = statistics.median(r[phase] for r in b)
        print(f"{phase:<20} {ma:9.3f} {mb:9.3f} {ma / mb:7.2f}x")
    four = PHASES[:4]
    ta = statistics.median(sum(r[p] for p in four) for r in a)
    tb = statistics.median(sum(r[p] for p in four) for r in b)
    print(f"{'certs+kubeconfig+etcd+control-plane':<20}\n{'':<20} {ta:9.3f} {tb:9.3f}"
          f" {ta / tb:7.2f}x")
    t1 = statistics.median(one)
    print(f"same four phases, kubeinit in one process (as first boot runs them):\n{'':<20}"
          f" {t1:9.3f} {tb:9.3f} {t1 / tb:7.2f}x")
    print(f"kubeinit --help: {median_help():.3f} s (median of 5)")


if __name__ == "__main__":
    main()
