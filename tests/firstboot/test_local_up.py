"""hack/local-up: kubeinit's first boot on this machine against real components, every file
under --root, stopped cleanly by SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import localcluster
from tests.localcluster import LOCAL_UP, LocalCluster, bin_dir

pytestmark = pytest.mark.real


def test_kubectl_lists_the_node_with_admin_conf(cluster: LocalCluster) -> None:
    nodes = cluster.get("nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [cluster.node]
    assert cluster.admin_conf == cluster.root / "etc/kubernetes/admin.conf"


def test_says_it_ran_processes_instead_of_a_kubelet(cluster: LocalCluster) -> None:
    text = cluster.log.read_text()
    assert "no kubelet and no container runtime ran" in text
    assert f"admin kubeconfig:  {cluster.admin_conf}" in text
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        argv = (cluster.root / f"var/log/local-up/{component}.argv").read_text().split("\n")
        assert argv[0] == str(bin_dir() / component)


def test_commands_are_the_manifests_with_paths_rebased(cluster: LocalCluster) -> None:

    pod = yaml.safe_load((cluster.root / "etc/kubernetes/manifests/kube-apiserver.yaml")
                         .read_text())
    manifest = pod["spec"]["containers"][0]["command"]
    ran = (cluster.root / "var/log/local-up/kube-apiserver.argv").read_text().splitlines()
    assert len(ran) == len(manifest)
    for m, r in zip(manifest[1:], ran[1:], strict=True):
        assert r == m.replace("/etc/kubernetes/", f"{cluster.root}/etc/kubernetes/"), (m, r)


def test_nothing_under_the_hosts_kubernetes_dirs() -> None:
    for p in ("/etc/kubernetes", "/var/lib/kubelet", "/etc/kubeinit", "/var/lib/kubeinit"):
        assert not Path(p).exists(), p


def test_busy_port_is_refused(tmp_path: Path) -> None:
    base = localcluster.worker_ports(38000)
    with socket.socket() as s:
        s.bind(("127.0.80.1", base + 443))
        s.listen()
        res = subprocess.run([sys.executable, str(LOCAL_UP), "--root", str(tmp_path / "r"),
                              "--port-base", str(base), "--bin-dir", str(bin_dir())],
                             capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2
    assert f"ports in use: 127.0.80.1:{base + 443}" in res.stderr


@pytest.mark.slow
def test_sigint_stops_everything_it_started(tmp_path: Path) -> None:
    c = localcluster.start(tmp_path / "root", port_base=38000)
    try:
        assert c.ready.get("kubeinitExit") == 0, c.log.read_text()[-4000:]
        pids = c.ready["pids"]
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager",
                             "kube-scheduler"}
        assert all(localcluster.alive(p) for p in pids.values())
    finally:
        rc = localcluster.stop(c, signal.SIGINT)
    assert rc == 0
    assert not [n for n, p in pids.items() if localcluster.alive(p)]
    assert "local-up: stopped etcd" in c.log.read_text()
