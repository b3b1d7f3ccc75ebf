"""upload-config against a real control plane, compared with real `kubeadm init --dry-run`.

The ConfigMaps' YAML payloads must be byte-identical to kubeadm's (kubeadm signs kubelet-config
with a sha256 of those bytes and `kubeadm join`/`upgrade` decode them strictly)."""

from __future__ import annotations

import pytest
import yaml

from firstboot.phases.upload_config import kubelet_yaml
from kubeinit.api import upload_config
from kubeinit.config import load_config, parse_config
from tests.apiobjects import API_CONFIGS, compare_as_stored, compare_live, context_for, live
from tests.conftest import ALL_CONFIGS, config_path
from tests.firstboot.conftest import KubeadmDryRuns, KubeadmObjects
from tests.localcluster import LocalCluster

pytestmark = pytest.mark.real


@pytest.mark.parametrize("name", ["kubeadm-config", "kubelet-config"])
def test_configmap_payload_is_byte_identical_to_kubeadm(cluster: LocalCluster,
                                                        kubeadm_dryrun: KubeadmObjects,
                                                        name: str) -> None:
    want = kubeadm_dryrun.get("ConfigMap", "kube-system", name)
    got = live(cluster, "ConfigMap", "kube-system", name)
    assert got["data"] == want["data"]
    assert got["metadata"].get("annotations") == want["metadata"].get("annotations")
    assert got["metadata"].get("labels") == want["metadata"].get("labels")


RBAC = [("Role", "kubeadm:nodes-kubeadm-config"), ("RoleBinding", "kubeadm:nodes-kubeadm-config"),
        ("Role", "kubeadm:kubelet-config"), ("RoleBinding", "kubeadm:kubelet-config")]


def test_rbac_and_configmaps_equal_kubeadm(cluster: LocalCluster,
                                           kubeadm_dryrun: KubeadmObjects) -> None:
    rendered = {(o["kind"], o["metadata"]["name"]): o
                for o in upload_config.kubeadm_config_rbac() + upload_config.kubelet_config_rbac()}
    assert sorted(rendered) == sorted(RBAC)
    compare_as_stored(cluster.admin_conf, "local-up",
                      [(kubeadm_dryrun.get(k, "kube-system", n), rendered[(k, n)])
                       for k, n in RBAC])
    # what kubeinit created on the cluster: kubeadm's objects, the ConfigMaps included
    keys = [*RBAC, ("ConfigMap", "kubeadm-config"), ("ConfigMap", "kubelet-config")]
    compare_live(cluster, "local-up", [kubeadm_dryrun.get(k, "kube-system", n) for k, n in keys])


@pytest.mark.parametrize("name", API_CONFIGS)
def test_rendered_configmaps_equal_kubeadm_for_each_config(cluster: LocalCluster,
                                                            kubeadm_dryruns: KubeadmDryRuns,
                                                            name: str) -> None:
    """For every test config: kubeadm-config and kubelet-config as kubeinit renders them are
    kubeadm's, payload bytes and the component-config hash included."""
    want = kubeadm_dryruns(name)
    config = load_config(config_path(name))
    ctx = context_for(config)
    rendered = {
        "kubeadm-config": upload_config.kubeadm_config_configmap(config),
        "kubelet-config": upload_config.kubelet_config_configmap(
            kubelet_yaml(ctx), user_supplied=config.kubelet is not None),
    }
    compare_as_stored(cluster.admin_conf, name,
                      [(want.get("ConfigMap", "kube-system", n), cm) for n, cm in rendered.items()])


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_cluster_configuration_omits_init_only_fields(name: str) -> None:
    """kubeadm uploads only the ClusterConfiguration: nothing of InitConfiguration leaks."""
    text = config_path(name).read_text()
    config = parse_config(text)
    doc = yaml.safe_load(upload_config.kubeadm_config_configmap(config)["data"][
        "ClusterConfiguration"])
    assert doc["kind"] == "ClusterConfiguration"
    for leaked in ("bootstrapTokens", "nodeRegistration", "localAPIEndpoint", "certificateKey",
                   "timeouts", "skipPhases"):
        assert leaked not in doc
    assert doc["kubernetesVersion"] == config.release.version


def test_rerun_mutates_only_the_payload(cluster: LocalCluster) -> None:
    """CreateOrMutate: a second run keeps a label someone added and rewrites the payload."""
    cluster.kubectl("label", "configmap", "-n", "kube-system", "kubeadm-config", "extra=kept")
    cluster.kubectl("patch", "configmap", "-n", "kube-system", "kubeadm-config", "--type",
                    "merge", "-p", '{"data":{"ClusterConfiguration":"tampered"}}')
    res = cluster.kubeinit("init", "phase", "upload-config", "kubeadm")
    assert res.returncode == 0, res.stderr
    cm = live(cluster, "ConfigMap", "kube-system", "kubeadm-config")
    assert cm["metadata"]["labels"]["extra"] == "kept"
    assert yaml.safe_load(cm["data"]["ClusterConfiguration"])["kind"] == "ClusterConfiguration"
    cluster.kubectl("label", "configmap", "-n", "kube-system", "kubeadm-config", "extra-")
