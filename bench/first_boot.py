"""First-boot cost: kubeinit's own CPU per phase versus time spent waiting on components.

Runs kubeinit's whole first boot N times against a fresh real control plane (hack/local-up,
the real binaries), each run inside a private mount namespace with its own systemd-journald,
and reads kubeinit's structured records back with journalctl: KUBEINIT_DURATION (wall seconds)
and KUBEINIT_CPU (CPU seconds of the kubeinit process) per phase. "waiting" is wall minus
kubeinit's CPU: time spent on other processes (etcd, the API server, the controller-manager),
on the machine's other work, or asleep in poll loops.

Usage: /work/venv/bin/python bench/first_boot.py [--runs 3] [--port-base 35000]
Prints one table of medians. Goal (issue 5): under 2 s of kubeinit CPU for the whole boot.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from firstboot import log  # noqa: E402
from tests.localcluster import LOCAL_UP, Journal, bin_dir, in_journal_namespace  # noqa: E402

GOAL_CPU = 2.0


def one_run(work: Path, port_base: int) -> dict[str, tuple[float, float]]:
    """{phase: (wall, cpu)} plus "(total)" for the whole run, from the journal."""
    argv = in_journal_namespace(work / "journal", [
        sys.executable, str(LOCAL_UP), "--root", str(work / "root"), "--port-base",
        str(port_base), "--bin-dir", str(bin_dir()), "--exit-after-init"])
    res = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=900,
                         check=False)
    if res.returncode != 0:
        raise SystemExit(f"bench: local-up failed:\n{res.stderr[-3000:]}")
    out: dict[str, tuple[float, float]] = {}
    for r in Journal(work / "journal").records():
        mid = r.get("MESSAGE_ID")
        if mid == log.MESSAGE_ID_PHASE_FINISHED:
            out[r["KUBEINIT_PHASE"]] = (float(r["KUBEINIT_DURATION"]), float(r["KUBEINIT_CPU"]))
        elif mid == log.MESSAGE_ID_INIT_COMPLETE:
            out["(total)"] = (float(r["KUBEINIT_DURATION"]), float(r["KUBEINIT_CPU"]))
    if "(total)" not in out:
        raise SystemExit("bench: no `init complete` record in the journal")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--port-base", type=int, default=35000)
    args = ap.parse_args()
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="kubeinit-bench.") as d:
            runs.append(one_run(Path(d), args.port_base))
        total = runs[-1]["(total)"]
        print(f"run {i + 1}/{args.runs}: {total[0]:.2f} s wall, {total[1]:.2f} s kubeinit CPU",
              file=sys.stderr)
    phases = [p for p in runs[0] if p != "(total)"] + ["(total)"]
    print(f"kubeinit first boot on the local control plane: medians of {args.runs} runs")
    print(f"{'phase':<46} {'wall s':>8} {'CPU s':>8} {'waiting s':>10}")
    sums = [0.0, 0.0]
    for p in phases:
        wall = statistics.median(r[p][0] for r in runs)
        cpu = statistics.median(r[p][1] for r in runs)
        if p == "(total)":
            print("-" * 75)
            print(f"{'sum of phases':<46} {sums[0]:>8.3f} {sums[1]:>8.3f}"
                  f" {sums[0] - sums[1]:>10.3f}")
            print(f"{'whole run (CPU incl. interpreter start-up)':<46} {wall:>8.3f} {cpu:>8.3f}"
                  f" {wall - cpu:>10.3f}")
            verdict = "met" if cpu < GOAL_CPU else "NOT met"
            print(f"goal: under {GOAL_CPU:.1f} s of kubeinit CPU for the whole first boot:"
                  f" {verdict} ({cpu:.2f} s)")
        else:
            sums[0] += wall
            sums[1] += cpu
            print(f"{p:<46} {wall:>8.3f} {cpu:>8.3f} {wall - cpu:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
