"""units/kubeinit.service, checked by the real `systemd-analyze verify` in a root that holds
the unit, the kubeinit command and systemd's own units, and by reading its contract."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kubeinit import paths

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "units" / "kubeinit.service"
PRESET = REPO / "packaging" / "90-kubeinit.preset"
SYSTEM_UNITS = Path("/lib/systemd/system")


def _systemd_version(tool: str) -> int:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
    return int(re.match(r"systemd (\d+)", out.stdout).group(1))  # type: ignore[union-attr]


def _root(tmp_path: Path, unit_text: str, *, executable: bool = True) -> Path:
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system/kubeinit.service").write_text(unit_text)
    if executable:
        exe = root / "usr/bin/kubeinit"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return root


def _verify(tool: str, root: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` touches /run/systemd/systemd-units-load even with --root, so it
    runs in a private mount namespace with its own /run/systemd."""
    script = 'mount -t tmpfs tmpfs /run/systemd && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                           script, "sh", tool, "verify", f"--root={root}", "--man=no",
                           "/etc/systemd/system/kubeinit.service"],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.real
def test_systemd_analyze_verify_passes(tmp_path: Path, tool: object) -> None:
    analyze = tool("systemd-analyze")  # type: ignore[operator]
    res = _verify(analyze, _root(tmp_path, UNIT.read_text()))
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.strip()]
    if _systemd_version(analyze) < 254:  # ImportCredential= arrived in systemd 254
        warnings = [w for w in warnings if "Unknown key 'ImportCredential'" not in w]
    assert warnings == []


@pytest.mark.real
def test_verify_catches_a_missing_kubeinit(tmp_path: Path, tool: object) -> None:
    """The same check fails when the command does not exist: the test can fail."""
    analyze = tool("systemd-analyze")  # type: ignore[operator]
    res = _verify(analyze, _root(tmp_path, UNIT.read_text(), executable=False))
    assert res.returncode != 0
    assert "/usr/bin/kubeinit is not executable" in res.stderr


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text())
    return cp


def test_contract_of_the_unit() -> None:
    u = _unit()
    svc, unit = u["Service"], u["Unit"]
    assert svc["Type"] == "oneshot" and svc["RemainAfterExit"] == "yes"
    assert svc["ExecStart"] == "/usr/bin/kubeinit init"
    assert svc["StandardOutput"] == "journal+console"
    assert svc["SyslogIdentifier"] == "kubeinit"
    assert svc["ImportCredential"] == "kubeinit.*"
    assert re.fullmatch(r"\d+min", svc["TimeoutStartSec"])
    assert unit["ConditionPathExists"] == f"!{paths.DONE_STAMP}"
    after = unit["After"].split()
    for dep in ("network-online.target", "time-sync.target", "containerd.service"):
        assert dep in after
    assert "kubelet.service" not in unit.get("After", "") + unit.get("Before", "")
    assert u["Install"]["WantedBy"] == "multi-user.target"
    header = UNIT.read_text().split("[Unit]")[0]
    assert "Contract" in header and "init.done" in header


def test_preset_enables_the_unit() -> None:
    lines = [ln.split() for ln in PRESET.read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines == [["enable", "kubeinit.service"]]
