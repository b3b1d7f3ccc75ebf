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


HARDENING = {
    "UMask": "0022",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
}


def test_unit_sets_umask_and_hardening_and_wants_time_sync() -> None:
    u = _unit()
    svc, unit = u["Service"], u["Unit"]
    for key, value in HARDENING.items():
        assert svc.get(key) == value, key
    # Writes /etc and /var: a strict or full read-only /usr,/etc would break the phases.
    assert svc.get("ProtectSystem", "no") in ("no", "yes")
    assert "time-sync.target" in unit["Wants"].split()
    assert "time-sync.target" in unit["After"].split()
    # systemd-time-wait-sync waits without a bound; kubeinit's own time gate is bounded.
    assert "systemd-time-wait-sync.service" not in unit["Wants"] + unit["After"]


def _security(analyze: str, unit_file: Path) -> tuple[float, str]:
    res = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit_file)],
                         capture_output=True, text=True, timeout=120, check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", res.stdout)
    assert m, res.stdout + res.stderr
    return float(m.group(1)), res.stdout


@pytest.mark.real
def test_systemd_analyze_security_sees_the_hardening(tmp_path: Path, tool: object) -> None:
    """The real `systemd-analyze security --offline=yes` scores the unit, and scores the same
    unit without its hardening block worse: the directives are understood, not just present."""
    analyze = tool("systemd-analyze")  # type: ignore[operator]
    hardened, report = _security(analyze, UNIT)
    for key in ("NoNewPrivileges=", "PrivateTmp=", "ProtectHome=", "RestrictSUIDSGID=",
                "LockPersonality=", "ProtectClock=", "ProtectKernelLogs=", "RestrictRealtime="):
        line = next((ln for ln in report.splitlines() if key in ln), "")
        assert line.lstrip().startswith("✓"), (key, line)
    bare = tmp_path / "kubeinit.service"
    bare.write_text("\n".join(ln for ln in UNIT.read_text().splitlines()
                              if ln.split("=")[0] not in (*HARDENING, "ProtectClock",
                                                          "ProtectHostname", "ProtectKernelLogs",
                                                          "RestrictRealtime", "KeyringMode",
                                                          "SystemCallArchitectures")))
    unhardened, _ = _security(analyze, bare)
    print(f"exposure: hardened {hardened}, without the hardening {unhardened}")
    assert hardened <= 8.0 < unhardened


@pytest.mark.real
def test_hardened_unit_still_verifies_with_every_directive_known(tmp_path: Path,
                                                                  tool: object) -> None:
    analyze = tool("systemd-analyze")  # type: ignore[operator]
    res = _verify(analyze, _root(tmp_path, UNIT.read_text()))
    unknown = [ln for ln in res.stderr.splitlines()
               if "Unknown key" in ln and "ImportCredential" not in ln]
    assert res.returncode == 0 and unknown == [], res.stderr
