"""addon/coredns and addon/kube-proxy: every object equals what real `kubeadm init --dry-run`
sends, for every test config; on the live cluster the server kept all of it; reruns follow
EnsureDNSAddon (replicas kept, a modified Corefile retained)."""

from __future__ import annotations

import json

import pytest

from kubeinit.api.addons import coredns_objects, kube_proxy_objects
from kubeinit.api.upload_config import addon_disabled
from kubeinit.config import load_config, parse_config
from tests.apiobjects import API_CONFIGS, contains, live, normalize
from tests.conftest import config_path
from tests.firstboot.conftest import KubeadmDryRuns, KubeadmObjects
from tests.localcluster import LocalCluster

pytestmark = pytest.mark.real

CLEAN_ENV: dict[str, str] = {}  # the oracle runs kubeadm without *_proxy variables


def _rendered(name: str) -> dict[tuple[str, str, str], dict]:
    config = load_config(config_path(name))
    text = config_path(name).read_text()
    addr = text.split("advertiseAddress:")[1].split()[0]
    objs = list(coredns_objects(config).values()) + list(
        kube_proxy_objects(config, addr, CLEAN_ENV).values())
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for o in objs}


@pytest.mark.parametrize("name", API_CONFIGS)
def test_addon_objects_equal_kubeadm(kubeadm_dryruns: KubeadmDryRuns, name: str) -> None:
    want = kubeadm_dryruns(name)
    rendered = _rendered(name)
    assert len(rendered) == 12
    for key, obj in rendered.items():
        assert normalize(obj) == normalize(want.get(*key)), key
    # byte-identical payload, so the component-config hash matches too
    assert rendered[("ConfigMap", "kube-system", "kube-proxy")]["data"] == want.get(
        "ConfigMap", "kube-system", "kube-proxy")["data"]


def test_live_objects_hold_everything_kubeadm_sends(cluster: LocalCluster,
                                                    kubeadm_dryrun: KubeadmObjects) -> None:
    keys = [("ConfigMap", "kube-system", "coredns"), ("ClusterRole", "", "system:coredns"),
            ("ClusterRoleBinding", "", "system:coredns"),
            ("ServiceAccount", "kube-system", "coredns"),
            ("Deployment", "kube-system", "coredns"), ("Service", "kube-system", "kube-dns"),
            ("ConfigMap", "kube-system", "kube-proxy"),
            ("DaemonSet", "kube-system", "kube-proxy"),
            ("ServiceAccount", "kube-system", "kube-proxy"),
            ("ClusterRoleBinding", "", "kubeadm:node-proxier"),
            ("Role", "kube-system", "kube-proxy"), ("RoleBinding", "kube-system", "kube-proxy")]
    for key in keys:
        want = normalize(kubeadm_dryrun.get(*key))
        want["metadata"].pop("resourceVersion", None)  # "0" on create, the server assigns one
        problems = contains(live(cluster, key[0], key[1], key[2]), want)
        assert not problems, (key, problems)


def test_rerun_keeps_replicas_and_a_modified_corefile(cluster: LocalCluster) -> None:
    cluster.kubectl("scale", "deployment", "-n", "kube-system", "coredns", "--replicas=3")
    cm = live(cluster, "ConfigMap", "kube-system", "coredns")
    custom = cm["data"]["Corefile"].replace("cache 30", "cache 60")
    cluster.kubectl("patch", "configmap", "-n", "kube-system", "coredns", "--type", "merge",
                    "-p", json.dumps({"data": {"Corefile": custom}}))
    try:
        res = cluster.kubeinit("init", "phase", "addon", "coredns")
        assert res.returncode == 0, res.stderr
        assert live(cluster, "Deployment", "kube-system", "coredns")["spec"]["replicas"] == 3
        assert live(cluster, "ConfigMap", "kube-system", "coredns")["data"]["Corefile"] == custom
        assert "kept the existing, modified Corefile" in res.stderr
    finally:
        cluster.kubectl("scale", "deployment", "-n", "kube-system", "coredns", "--replicas=2")
        cluster.kubectl("patch", "configmap", "-n", "kube-system", "coredns", "--type",
                        "merge", "-p", json.dumps(
                            {"data": {"Corefile": cm["data"]["Corefile"]}}))


@pytest.mark.parametrize(("extra", "expected"), [
    ("proxy:\n  disabled: true\n", (False, True)),
    ("dns:\n  disabled: true\n", (True, False)),
], ids=["proxy-disabled", "dns-disabled"])
def test_disabled_addons_are_reported_disabled(extra: str, expected: tuple[bool, bool]) -> None:
    config = parse_config(config_path("default").read_text() + extra)
    assert addon_disabled(config) == expected
