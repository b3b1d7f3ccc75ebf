"""kubelet-finalize/enable-client-cert-rotation: with the kubelet's rotating client
certificate present, kubelet.conf points at it (read back by the real kubectl); without it,
nothing changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.localcluster import REPO, LocalCluster, bin_dir

pytestmark = pytest.mark.real


def _run(root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firstboot", "init", "phase",
                           "kubelet-finalize", "all", "--root", str(root), "--config",
                           str(config)], capture_output=True, text=True, cwd=REPO, check=False,
                          timeout=120)


def _view(conf: Path) -> dict:
    out = subprocess.run([str(bin_dir() / "kubectl"), "config", "view", "--kubeconfig",
                          str(conf), "--raw", "-o", "json"], capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout))


def test_points_kubelet_conf_at_the_rotating_certificate(cluster: LocalCluster,
                                                         tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/kubernetes").mkdir(parents=True)
    conf = root / "etc/kubernetes/kubelet.conf"
    shutil.copy(cluster.root / "etc/kubernetes/kubelet.conf", conf)
    before = _view(conf)
    assert before["users"][0]["user"].get("client-certificate-data")

    res = _run(root, cluster.config)
    assert res.returncode == 0, res.stderr
    assert _view(conf) == before, "changed kubelet.conf without a rotating certificate"

    pem = root / "var/lib/kubelet/pki/kubelet-client-current.pem"
    pem.parent.mkdir(parents=True)
    pem.write_bytes(b"")  # only its existence matters to kubeadm's phase
    res = _run(root, cluster.config)
    assert res.returncode == 0, res.stderr
    after = _view(conf)
    user = after["users"][0]["user"]
    assert user == {"client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
                    "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem"}
    assert after["clusters"] == before["clusters"]
    assert after["contexts"] == before["contexts"]
    assert conf.stat().st_mode & 0o777 == 0o600
