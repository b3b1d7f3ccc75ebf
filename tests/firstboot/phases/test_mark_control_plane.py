"""mark-control-plane: the Node the kubelet (here: hack/local-up's stand-in) registered gets
kubeadm's labels and taints, and a rerun adds nothing twice."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubeinit.api.mark import control_plane_patch, taint_string
from kubeinit.config import Taint, TaintEffect
from tests.firstboot.conftest import KubeadmObjects
from tests.localcluster import REPO, LocalCluster

pytestmark = pytest.mark.real


def test_labels_and_taints_are_kubeadms(cluster: LocalCluster,
                                        kubeadm_dryrun: KubeadmObjects) -> None:
    node = cluster.get("node", cluster.node)
    labels = node["metadata"]["labels"]
    assert kubeadm_dryrun.labels  # kubeadm's own log line names them
    for label in kubeadm_dryrun.labels:
        assert labels.get(label) == "", label
    taints = [taint_string(t) for t in node["spec"].get("taints", [])]
    for t in kubeadm_dryrun.taints:
        assert t in taints, (t, taints)


def test_rerun_adds_no_duplicate_taint(cluster: LocalCluster) -> None:
    before = cluster.get("node", cluster.node)["spec"]["taints"]
    res = cluster.kubeinit("init", "phase", "mark-control-plane")
    assert res.returncode == 0, res.stderr
    after = cluster.get("node", cluster.node)["spec"]["taints"]
    keys = [(t["key"], t["effect"]) for t in after]
    assert len(keys) == len(set(keys))
    assert [t for t in before if t not in after] == []


@pytest.mark.parametrize(("existing", "expected"), [
    ([], [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
    ([{"key": "other", "effect": "NoExecute"}],
     [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
      {"key": "other", "effect": "NoExecute"}]),
    ([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}], None),
], ids=["fresh-node", "keeps-foreign-taints-after-ours", "already-marked"])
def test_patch_follows_markControlPlaneNode(existing: list[dict], expected: list | None) -> None:
    node = {"metadata": {"labels": {"kubernetes.io/hostname": "n"}},
            "spec": {"taints": existing}}
    patch = control_plane_patch(node, [Taint(key="node-role.kubernetes.io/control-plane",
                                             effect=TaintEffect.NO_SCHEDULE)])
    assert patch["metadata"]["labels"] == {
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": ""}
    assert patch.get("spec", {}).get("taints") == expected


def test_timeout_names_the_missing_node(cluster: LocalCluster, tmp_path: Path) -> None:
    """No kubelet registered the node: the phase fails within kubernetesAPICall, saying so.
    (Run on a copy of the node's /etc, so the session node's state journal stays clean.)"""


    root = tmp_path / "root"
    shutil.copytree(cluster.root / "etc", root / "etc")
    config = root / "etc/kubeinit/config.yaml"
    text = config.read_text()
    assert "timeouts:\n" in text
    config.write_text(text.replace("timeouts:\n", "timeouts:\n  kubernetesAPICall: 3s\n", 1))
    res = subprocess.run([sys.executable, "-m", "firstboot", "init", "phase",
                          "mark-control-plane", "--node-name", "no-such-node", "--root",
                          str(root)], capture_output=True, text=True, cwd=REPO, timeout=120,
                         check=False)
    assert res.returncode == 1
    assert "Node no-such-node was not registered" in res.stderr
    assert "journalctl -u kubelet" in res.stderr
