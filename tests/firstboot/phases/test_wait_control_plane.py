"""wait-control-plane: the endpoints kubeadm polls, read from the static Pod manifests as
kubeadm reads them; the failure path when the API server never comes up (exit 1, failure
marker, hint); the `kubeadm:cluster-admins` binding that makes admin.conf work."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from firstboot.phases.wait_control_plane import control_plane_components
from tests.apiobjects import live
from tests.localcluster import REPO, LocalCluster

pytestmark = pytest.mark.real


def test_components_from_kubeinits_manifests(cluster: LocalCluster) -> None:
    pods = {n: yaml.safe_load((cluster.root / f"etc/kubernetes/manifests/{n}.yaml").read_text())
            for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    host = cluster.server.split("//")[1].rsplit(":", 1)[0]
    urls = {c.name: c.url for c in control_plane_components(pods, "192.0.2.99")}
    api_port = cluster.server.rsplit(":", 1)[1]
    assert urls == {
        "kube-apiserver": f"https://{host}:{api_port}/livez",
        "kube-controller-manager": f"https://{host}:{int(api_port) - 443 + 257}/healthz",
        "kube-scheduler": f"https://{host}:{int(api_port) - 443 + 259}/livez"}


def test_defaults_when_the_manifest_sets_no_address(tmp_path: Path) -> None:
    pod = {"spec": {"containers": [{"command": ["kube-scheduler", "--kubeconfig=x"]}]}}
    api = {"spec": {"containers": [{"command": ["kube-apiserver"]}]}}
    urls = {c.name: c.url for c in control_plane_components(
        {"kube-apiserver": api, "kube-controller-manager": {"spec": {"containers": [
            {"command": ["kube-controller-manager"]}]}}, "kube-scheduler": pod}, "10.0.0.5")}
    assert urls == {"kube-apiserver": "https://10.0.0.5:6443/livez",
                    "kube-controller-manager": "https://127.0.0.1:10257/healthz",
                    "kube-scheduler": "https://127.0.0.1:10259/livez"}


def test_admin_conf_works_through_kubeadm_cluster_admins(cluster: LocalCluster) -> None:
    crb = live(cluster, "ClusterRoleBinding", "", "kubeadm:cluster-admins")
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "cluster-admin"}
    assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                "name": "kubeadm:cluster-admins"}]
    nodes = cluster.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert nodes == [f"node/{cluster.node}"]


FAILING_CONFIG = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.80.9
  bindPort: 39443
nodeRegistration:
  name: cp1
timeouts:
  controlPlaneComponentHealthCheck: {timeout}
  kubeletHealthCheck: 3s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
healthzPort: {kubelet_port}
"""


def _failing_root(tmp_path: Path, timeout: str, kubelet_port: int = 0) -> tuple[Path, Path]:
    """A node whose manifests point at an API server nobody starts (nothing listens on
    127.0.80.9:39443)."""
    config = tmp_path / "config.yaml"
    config.write_text(FAILING_CONFIG.format(timeout=timeout, kubelet_port=kubelet_port))
    return tmp_path / "root", config


def test_api_server_never_comes_up(tmp_path: Path) -> None:
    root, config = _failing_root(tmp_path, "6s")
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "firstboot", "init", "--root", str(root),
                          "--config", str(config), "--ignore-preflight-errors", "all"],
                         capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    elapsed = time.monotonic() - start
    assert res.returncode == 1, res.stderr
    assert "[wait-control-plane] failed after" in res.stderr
    assert "kube-apiserver at https://127.0.80.9:39443/livez" in res.stderr
    assert "Connection refused" in res.stderr
    assert "crictl" in res.stderr and "journalctl -u kubelet" in res.stderr
    assert elapsed < 120
    marker = json.loads((root / "var/lib/kubeinit/init.failed").read_text())
    assert marker["phase"] == "wait-control-plane"
    assert "control plane not healthy after 6s" in marker["error"]
    assert "crictl" in marker["hint"]
    assert not (root / "var/lib/kubeinit/init.done").exists()
    status = subprocess.run([sys.executable, "-m", "firstboot", "status", "--root", str(root),
                             "--json"], capture_output=True, text=True, cwd=REPO, check=False)
    assert status.returncode == 1
    s = json.loads(status.stdout)
    assert s["failed"]["phase"] == "wait-control-plane"
    (row,) = [r for r in s["phases"] if r["phase"] == "wait-control-plane"]
    assert row["result"] == "failed" and "crictl" in row["hint"]
    assert row["duration"] >= 6
    shutil.rmtree(root)


def test_kubelet_not_running_is_reported(tmp_path: Path) -> None:
    root, config = _failing_root(tmp_path, "6s", kubelet_port=39248)
    res = subprocess.run([sys.executable, "-m", "firstboot", "init", "--root", str(root),
                          "--config", str(config), "--ignore-preflight-errors", "all"],
                         capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert res.returncode == 1
    assert "the kubelet is not healthy after 3s" in res.stderr
    assert "curl -sSL http://127.0.0.1:39248/healthz" in res.stderr
    assert "journalctl -xeu kubelet" in res.stderr
