"""The judge itself: real kubeadm runs, sees this host's facts, and changes nothing on it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import config_path
from tests.oracle import sandbox
from tests.oracle.facts import tree_facts
from tests.oracle.oracle import CONFIGS, Oracle, config_file

pytestmark = [pytest.mark.real]

HOST_PATHS = ("/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/data/etcd")


def _host_state() -> dict[str, object]:
    out: dict[str, object] = {}
    for p in HOST_PATHS:
        out[p] = tree_facts(Path("/"), [p]) if os.path.lexists(p) else "absent"
    return out


@pytest.mark.parametrize("config", CONFIGS)
def test_real_kubeadm_renders_every_node_local_phase(oracle: Oracle, config: str) -> None:
    cap = oracle.kubeadm(config).capture
    assert [" ".join(r.argv[1:4]) for r in cap.runs] == [
        "init phase certs", "init phase kubeconfig", "init phase etcd",
        "init phase control-plane", "init phase kubelet-start"]
    assert cap.ok, cap.failures()


@pytest.mark.parametrize("config", CONFIGS)
def test_each_config_is_judged_by_kubeadm_of_its_version(kubeadm_bin: Path,
                                                         config: str) -> None:
    """kubeinit's version table models "kubeadm vX deploying vX" (kubeinit/versions.py), so a
    config for another pinned release is judged by that release's kubeadm."""
    cfg = config_file(config)
    judge = sandbox.judge_for(cfg, kubeadm_bin)
    out = subprocess.run([str(judge), "version", "-o", "short"], env=sandbox.CLEAN_ENV,
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == sandbox.kubernetes_version(cfg)


@pytest.mark.parametrize("config", CONFIGS)
def test_kubeadm_writes_only_under_the_node_trees(oracle: Oracle, config: str) -> None:
    """The overlay's upper layer is kubeadm's whole write set: besides the node trees it may
    only hold the copied-up ancestors of those trees (directories that exist on the host)."""
    cap = oracle.kubeadm(config).capture
    trees = cap.layout.trees
    stray = []
    for p in sorted(cap.root.rglob("*")):
        node = "/" + str(p.relative_to(cap.root))
        inside = any(node == t or node.startswith(t + "/") for t in trees)
        ancestor = any(t.startswith(node + "/") for t in trees) and p.is_dir()
        if not inside and not ancestor:
            stray.append(node)
    assert stray == []


def test_kubeadm_leaves_the_host_alone(kubeadm_bin: Path, root_user: None,
                                       tmp_path: Path) -> None:
    before = _host_state()
    cap = sandbox.run_kubeadm(kubeadm_bin, config_path("extra-sans-args"), tmp_path / "out",
                              name="extra-sans-args")
    assert cap.ok, cap.failures()
    assert (cap.path("/data/etcd")).is_dir(), "kubeadm should have created the custom dataDir"
    assert _host_state() == before
    assert not list(Path("/tmp").glob("kubeadm-oracle.*")), "scratch mount point left behind"


def test_kubelet_start_sees_no_init_system(oracle: Oracle) -> None:
    """systemctl is masked in the sandbox, so kubeadm cannot stop/restart a host kubelet
    (app/phases/kubelet/kubelet.go TryStopKubelet/TryStartKubelet)."""
    run = oracle.kubeadm("default").capture.runs[-1]
    assert "No supported init system detected" in run.stdout
    assert "cannot determine if systemd-resolved is active" in run.stderr


def test_host_ca_trust_dirs_decide_kubeadm_volumes(oracle: Oracle) -> None:
    """The conditional CA-trust volumes follow the host; kubeinit's root is given the same
    directories (sandbox.prepare_kubeinit_root), so both see the same host facts."""
    r = oracle.kubeadm("default")
    pod = yaml.safe_load(r.capture.path("/etc/kubernetes/manifests/kube-apiserver.yaml")
                         .read_text())
    paths = {v["hostPath"]["path"] for v in pod["spec"]["volumes"]}
    for d in sandbox.CA_TRUST_DIRS:
        assert (d in paths) == os.path.exists(d), d
