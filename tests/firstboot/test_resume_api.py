"""Crash-resume of the API-side first boot: SIGKILL at every API phase boundary and inside
upload-certs and bootstrap-token, against a fresh real control plane each time; the next run
(the next boot) completes, and the cluster passes the same checks as an uninterrupted boot: one
join token, one kubeadm-certs proxy token, the Secret decrypting with the saved key, real
`kubeadm join` discovery working.

The kill is real: kubeinit stops itself at the fault point (firstboot/runner.py after a phase,
firstboot/apiclient.py after an API write) and the test SIGKILLs it; local-up then stops the
components, and a second local-up on the same root restarts them from the manifests and runs
`kubeinit init` again, as the next boot would.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests import localcluster
from tests.apiobjects import check_first_boot

pytestmark = [pytest.mark.real, pytest.mark.slow]

# After every API-side phase (the node-local ones: tests/firstboot/test_crash_resume.py).
BOUNDARIES = ["wait-control-plane", "upload-config/kubeadm", "upload-config/kubelet",
              "upload-certs", "mark-control-plane", "bootstrap-token",
              "kubelet-finalize/enable-client-cert-rotation", "addon/coredns",
              "addon/kube-proxy", "show-join-command"]
INSIDE = ["upload-certs:1", "upload-certs:2", "bootstrap-token:1", "bootstrap-token:4",
          "bootstrap-token:8"]


def _crash_then_resume(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "root"
    first = localcluster.start(root, port_base=37000, env=env, exit_after_init=True,
                             wait=False)
    pid = localcluster.stopped_kubeinit(first)
    try:
        assert pid is not None, f"fault point not reached:\n{first.log.read_text()[-3000:]}"
        os.kill(pid, signal.SIGKILL)
        assert first.proc.wait(timeout=120) == 1
    finally:
        localcluster.stop(first)
    assert not (root / "var/lib/kubeinit/init.done").exists()
    ca = root / "etc/kubernetes/pki/ca.crt"
    ca_at_kill = ca.read_bytes()
    second = localcluster.start(root, port_base=37000)
    try:
        assert second.ready.get("kubeinitExit") == 0, second.log.read_text()[-4000:]
        assert "already done (state journal), skipping" in second.log.read_text()
        assert ca.read_bytes() == ca_at_kill, "the resumed boot replaced the CA"
        check_first_boot(second, tmp_path / "join")
    finally:
        assert localcluster.stop(second) == 0


@pytest.mark.parametrize("phase", BOUNDARIES, ids=lambda p: f"after-{p}")
def test_sigkill_at_api_phase_boundary_then_next_boot_completes(tmp_path: Path,
                                                                phase: str) -> None:
    _crash_then_resume(tmp_path, {"KUBEINIT_FAULT_STOP_AFTER": phase})


@pytest.mark.parametrize("point", INSIDE, ids=lambda p: p.replace(":", "-write-"))
def test_sigkill_inside_api_phase_then_next_boot_completes(tmp_path: Path, point: str) -> None:
    _crash_then_resume(tmp_path, {"KUBEINIT_FAULT_STOP_AT_API_WRITE": point})
