"""One init at a time (issue 9, finding 3) and a failure marker on SIGTERM (finding 10).

Real processes: several `kubeinit init --local-only --root R` started together on one root.
Without the lock, a CA key was replaced between another run's check and write in 4 of 8
trials, and one run's stale-temp sweep deleted another's temporary file (a traceback).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from kubeinit import paths
from tests.conftest import config_path

REPO = Path(__file__).resolve().parents[2]
KUBEINIT = [sys.executable, "-m", "firstboot"]
TRIALS = 4
RUNS = 3


def _start(root: Path, *extra: str, local: bool = True,
           env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*KUBEINIT, "init", *(["--local-only"] if local else []), "--root", str(root),
         "--config", str(config_path("default")), "--ignore-preflight-errors", "all", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})})


def _verify_chain(root: Path) -> int:
    """Every leaf under pki verifies against the CA file that is there now; returns how many."""
    pki = root / "etc/kubernetes/pki"
    cas = {
        "kubernetes": pki / "ca.crt",
        "front-proxy-ca": pki / "front-proxy-ca.crt",
        "etcd-ca": pki / "etcd/ca.crt",
    }
    n = 0
    for crt in sorted(pki.rglob("*.crt")):
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        issuer_cn = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        issuer = x509.load_pem_x509_certificate(cas[str(issuer_cn)].read_bytes())
        cert.verify_directly_issued_by(issuer)  # raises if the CA was replaced under it
        n += 1
    # the kubeconfigs embed the CA: the same one as on disk
    ca_pem = (pki / "ca.crt").read_bytes()
    import base64

    import yaml
    for conf in (root / "etc/kubernetes").glob("*.conf"):
        cluster = yaml.safe_load(conf.read_text())["clusters"][0]["cluster"]
        assert base64.b64decode(cluster["certificate-authority-data"]) == ca_pem, conf
    return n


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
def test_concurrent_inits_make_one_ca_and_every_leaf_verifies(tmp_path: Path, trial: int) -> None:
    root = tmp_path / "root"
    procs = [_start(root) for _ in range(RUNS)]
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        outs.append((p.returncode, out))
    for rc, out in outs:
        assert "Traceback" not in out, out
        assert rc in (0, 3), out
        if rc == 3:
            assert "another kubeinit is running" in out and "hint:" in out
    assert sum(rc == 0 for rc, _ in outs) >= 1
    leaves = _verify_chain(root)
    assert leaves >= 10
    # the ones that waited found the phases done
    waited = [out for rc, out in outs if rc == 0 and "already done (state journal)" in out]
    print(f"trial {trial}: exit codes {[rc for rc, _ in outs]}, {leaves} leaves verified,"
          f" {len(waited)} run(s) waited and found the phases done")
    assert len(waited) == RUNS - 1
    assert list(root.rglob(".*.tmp")) == []


def _hold_lock(root: Path) -> int:
    lock = paths.under(root, paths.LOCK_FILE)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_second_run_with_no_wait_exits_3_with_a_hint(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fd = _hold_lock(root)
    try:
        p = _start(root, "--lock-timeout", "0")
        out, _ = p.communicate(timeout=60)
    finally:
        os.close(fd)
    assert p.returncode == 3, out
    lines = [ln for ln in out.splitlines() if ln.startswith(("kubeinit: error", "hint:"))]
    assert lines[0].startswith("kubeinit: error: ") and "another kubeinit is running" in lines[0]
    assert lines[1].startswith("hint: ") and "--lock-timeout" in lines[1]
    assert not (root / "etc/kubernetes").exists()  # nothing was written


def test_second_run_waits_a_bounded_time_then_proceeds(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fd = _hold_lock(root)
    p = _start(root, "--lock-timeout", "30")
    time.sleep(2)
    assert p.poll() is None  # still waiting
    assert not (root / "etc/kubernetes").exists()
    os.close(fd)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert "waiting up to 30 s for another kubeinit" in out


def test_stale_temp_files_are_swept_only_by_the_lock_holder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    pki = root / "etc/kubernetes/pki"
    pki.mkdir(parents=True)
    stale = pki / ".ca.key.a1b2c3d4.tmp"
    stale.write_text("left by a crash")
    other = pki / ".notes.tmp"  # not one of write_file's names: kept
    other.write_text("someone else's")
    fd = _hold_lock(root)
    try:
        p = _start(root, "--lock-timeout", "0")
        p.communicate(timeout=60)
        assert p.returncode == 3
        assert stale.exists()  # the loser touched nothing
    finally:
        os.close(fd)
    p = _start(root)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert not stale.exists() and other.exists()


def _wait_stopped(proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("write", [3, 9], ids=["early-certs", "later-certs"])
def test_sigterm_mid_phase_writes_the_failure_marker(tmp_path: Path, write: int) -> None:
    """systemd's stop (TimeoutStartSec=) is SIGTERM: the marker names the phase it cut."""
    root = tmp_path / "root"
    p = _start(root, local=False, env={"KUBEINIT_FAULT_STOP_AT_WRITE": str(write)})
    try:
        assert _wait_stopped(p), "fault point not reached"
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGCONT)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, out
    assert "Traceback" not in out
    marker = json.loads((root / "var/lib/kubeinit/init.failed").read_text())
    state = json.loads((root / "var/lib/kubeinit/state.json").read_text())
    failed = [k for k, v in state["phases"].items() if v["result"] == "failed"]
    assert failed == [marker["phase"]]
    assert marker["phase"].startswith(("preflight", "certs"))
    assert "SIGTERM" in marker["error"] and marker["hint"]
    assert not (root / "var/lib/kubeinit/init.done").exists()
    assert "kubeinit: error: terminated by SIGTERM" in out


def test_join_command_refresh_takes_the_same_lock(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fd = _hold_lock(root)
    try:
        res = subprocess.run(
            [*KUBEINIT, "join-command", "--refresh", "--root", str(root), "--config",
             str(config_path("default")), "--lock-timeout", "0"],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    finally:
        os.close(fd)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "another kubeinit is running on this root" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_lock_timeout_that_is_not_a_number_of_seconds_is_invalid_input(tmp_path: Path) -> None:
    p = _start(tmp_path / "root", "--lock-timeout", "nan")
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 2, out
    assert "--lock-timeout nan: not a number of seconds" in out
