"""`kubeinit status`: each phase with its state and duration, the join files' expiry, and
nothing secret (the failure path is in tests/firstboot/phases/test_wait_control_plane.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firstboot.phases import PHASES
from firstboot.selection import leaves
from tests.localcluster import REPO, LocalCluster

pytestmark = pytest.mark.real


def test_status_of_a_completed_first_boot(cluster: LocalCluster) -> None:
    res = cluster.kubeinit("status")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("kubeinit: complete (finished ")
    for path, _ in leaves(PHASES):
        (row,) = [line for line in lines if line.split()[:1] == [path]]
        assert row.split()[1] == "done" and row.split()[2].endswith("s"), row
    info = cluster.join_file()
    assert f"(token expires {info['tokenExpires']})" in res.stdout
    assert info["token"] not in res.stdout
    assert info["certificateKey"] not in res.stdout


def test_status_json(cluster: LocalCluster) -> None:
    res = cluster.kubeinit("status", "--json")
    assert res.returncode == 0
    s = json.loads(res.stdout)
    assert s["complete"] is True and s["failed"] is None
    assert [r["phase"] for r in s["phases"]] == [p for p, _ in leaves(PHASES)]
    assert all(r["result"] == "done" and r["duration"] is not None for r in s["phases"])
    assert s["join"]["tokenExpires"] == cluster.join_file()["tokenExpires"]


def test_status_of_a_node_that_never_booted(tmp_path: Path) -> None:


    res = subprocess.run([sys.executable, "-m", "firstboot", "status", "--root", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO, check=False)
    assert res.returncode == 1
    assert res.stdout.startswith("kubeinit: not complete")
    assert "pending" in res.stdout
