"""builder/preflight.py: the base image passes; each way a base image can be unfit fails with
its own finding. Trees are hard-linked copies of the real base image, changed by replacing
links (never by writing into the shared files)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from builder.preflight import ImageCheckFailed, check_space, check_target
from builder.target import TreeTarget
from kubeinit.config import load_config, parse_config
from tests.builder.conftest import CLUSTER_YAML

pytestmark = pytest.mark.real


def _failed_checks(root: Path, config_text: str | None = None) -> list[str]:
    config = parse_config(config_text) if config_text else load_config(CLUSTER_YAML)
    with pytest.raises(ImageCheckFailed) as e:
        check_target(TreeTarget(root), config)
    return [f.check for f in e.value.findings]


def test_the_base_image_passes_and_is_described(tree_copy: Path) -> None:
    facts = check_target(TreeTarget(tree_copy), load_config(CLUSTER_YAML))
    assert (facts.arch, facts.python, facts.glibc) == ("x86_64", (3, 11), (2, 36))
    assert (facts.kubelet_version, facts.runtime, facts.runtime_version) == (
        "v1.37.2", "containerd", "v2.3.7")
    assert facts.sandbox_image == "registry.k8s.io/pause:3.10.2"
    assert facts.unit_dir == "/usr/lib/systemd/system"
    assert facts.warnings == ()


def test_old_python(tree_copy: Path) -> None:
    link = tree_copy / "usr/bin/python3"
    link.unlink()
    link.symlink_to("python3.9")
    os.link(tree_copy / "usr/bin/python3.11", tree_copy / "usr/bin/python3.9")
    assert _failed_checks(tree_copy) == ["python3", "python3"]  # too old, no stdlib 3.9


def test_no_python3_systemd(tree_copy: Path) -> None:
    shutil.rmtree(tree_copy / "usr/lib/python3/dist-packages/systemd")  # unlinks only
    assert _failed_checks(tree_copy) == ["python3-systemd"]


def test_no_kubelet_and_no_runtime(tree_copy: Path) -> None:
    for b in ("usr/bin/kubelet", "usr/local/bin/containerd"):
        (tree_copy / b).unlink()
    assert _failed_checks(tree_copy) == ["kubelet", "container-runtime", "units"] or \
        _failed_checks(tree_copy) == ["kubelet", "container-runtime"]


def test_cri_socket_must_be_the_runtimes(tree_copy: Path) -> None:
    text = CLUSTER_YAML.read_text() + (
        "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n"
        "  criSocket: unix:///var/run/crio/crio.sock\n")
    assert _failed_checks(tree_copy, text) == ["cri-socket"]


def test_containerd_socket_is_read_from_its_config(tree_copy: Path) -> None:
    config = tree_copy / "etc/containerd/config.toml"
    text = config.read_text()
    config.unlink()
    config.write_text(text + "\n[plugins.'io.containerd.server.v1.grpc']\n"
                      "  address = '/run/other/containerd.sock'\n")
    assert _failed_checks(tree_copy) == ["cri-socket"]


def test_a_node_that_already_ran_init_is_no_template(tree_copy: Path) -> None:
    pki = tree_copy / "etc/kubernetes/pki"
    pki.mkdir(parents=True)
    (pki / "ca.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    assert _failed_checks(tree_copy) == ["node-state"]


def test_missing_mandatory_tools(tree_copy: Path) -> None:
    for name in ("usr/sbin/losetup", "usr/bin/mount"):
        os.unlink(tree_copy / name)
    assert _failed_checks(tree_copy) == ["tools", "tools"]


def test_free_space_is_checked_per_filesystem(tree_copy: Path) -> None:
    t = TreeTarget(tree_copy)
    free = t.space("/usr/lib").available
    check_space(t, {"/usr/lib": 1 << 20})
    with pytest.raises(ImageCheckFailed) as e:
        check_space(t, {"/usr/lib": free // 2, "/etc": free // 2})  # same filesystem: summed
    assert e.value.findings[0].check == "free-space"
