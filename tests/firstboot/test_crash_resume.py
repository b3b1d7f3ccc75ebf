"""Crash safety: SIGKILL at every phase boundary and in the middle of file writes inside the
certs phase; a rerun completes, the CA is unchanged, and every file is valid.

Every boundary of the first boot is cut, every run: after each node-local phase here (with
`--local-only`, preflight included, in a second), after each API phase in
tests/firstboot/test_resume_api.py (against a real control plane); a table test below fails
when a phase is added without its boundary being cut. (The end-to-end power cut under QEMU
takes one boundary per run: tests/e2e/powercut.py.)

The kill is real: the process stops itself at a fault point (SIGSTOP, see
firstboot/runner.py and kubeinit/fs.py) and the test SIGKILLs it there, so no Python cleanup,
finally-block or atexit handler runs — as with a power cut, minus the page cache.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from firstboot.phases import PHASES
from firstboot.selection import leaves, select
from tests.conftest import config_path
from tests.firstboot.test_resume_api import BOUNDARIES as API_BOUNDARIES

KUBEINIT = [sys.executable, "-m", "firstboot"]
LOCAL = [p for p in select(PHASES, skip=[]) if not p.startswith(
    ("wait-control-plane", "upload-", "mark-", "bootstrap-", "kubelet-finalize", "addon",
     "show-"))]


def test_every_phase_boundary_is_cut_by_a_host_test() -> None:
    """A kill after each phase: the local ones here, the API ones in test_resume_api.py."""
    assert sorted(LOCAL + API_BOUNDARIES) == sorted(p for p, _ in leaves(PHASES))
    assert not set(LOCAL) & set(API_BOUNDARIES)


def _init(root: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen(
        [*KUBEINIT, "init", "--local-only", "--root", str(root), "--config",
         str(config_path("default")), "--ignore-preflight-errors", "all"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_stopped(proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    """True once the process stopped itself at the fault point; False if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return True
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("kubeinit neither stopped at the fault point nor exited")


def _kill_at(root: Path, env_extra: dict[str, str]) -> bool:
    proc = _init(root, env_extra)
    stopped = _wait_stopped(proc)
    if stopped:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return stopped


def _check_node(root: Path) -> None:
    """Every certificate pairs with its key and chains to its CA; YAML files parse."""
    pki = root / "etc/kubernetes/pki"
    certs = sorted(pki.rglob("*.crt"))
    assert len(certs) == 10, [str(c) for c in certs]
    for crt in certs:
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        key = serialization.load_pem_private_key(crt.with_suffix(".key").read_bytes(), None)
        assert cert.public_key().public_numbers() == key.public_key().public_numbers(), crt
        issuer_file = {"kubernetes": pki / "ca.crt", "front-proxy-ca": pki / "front-proxy-ca.crt",
                       "etcd-ca": pki / "etcd/ca.crt"}[
            cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value]
        issuer = x509.load_pem_x509_certificate(issuer_file.read_bytes())
        cert.verify_directly_issued_by(issuer)
    for conf in (root / "etc/kubernetes").glob("*.conf"):
        assert yaml.safe_load(conf.read_text())["kind"] == "Config"
    for manifest in (root / "etc/kubernetes/manifests").glob("*.yaml"):
        assert yaml.safe_load(manifest.read_text())["kind"] == "Pod"
    leftovers = [p for p in root.rglob(".*.tmp")]
    assert not leftovers, leftovers


@pytest.mark.slow
@pytest.mark.parametrize("phase", LOCAL, ids=lambda p: f"after-{p}")
def test_sigkill_at_phase_boundary_then_rerun_completes(tmp_path: Path, phase: str) -> None:
    root = tmp_path / "root"
    assert _kill_at(root, {"KUBEINIT_FAULT_STOP_AFTER": phase}), "fault point not reached"
    print(f"killed after [{phase}]")
    ca = root / "etc/kubernetes/pki/ca.crt"
    ca_before = ca.read_bytes() if ca.exists() else None
    assert (ca_before is None) == (phase == "preflight"), "the CA is the first thing written"
    rerun = _init(root)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out
    assert f"[{phase}] already done" in out
    for later in LOCAL[LOCAL.index(phase) + 1:]:
        assert f"[{later}] finished in" in out, later
    if ca_before is not None:
        assert ca.read_bytes() == ca_before
    _check_node(root)


@pytest.mark.slow
@pytest.mark.parametrize("write", range(1, 40, 3), ids=lambda n: f"write-{n}")
def test_sigkill_mid_write_then_rerun_completes(tmp_path: Path, write: int) -> None:
    root = tmp_path / "root"
    assert _kill_at(root, {"KUBEINIT_FAULT_STOP_AT_WRITE": str(write)})
    ca = root / "etc/kubernetes/pki/ca.crt"
    ca_before = ca.read_bytes() if ca.exists() else None
    rerun = _init(root)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out
    if ca_before is not None:
        assert ca.read_bytes() == ca_before, "a crash made kubeinit replace the CA"
    _check_node(root)
