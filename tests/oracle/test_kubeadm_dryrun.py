"""The API-side reference captured from real `kubeadm init --dry-run` holds what kubeadm's source
says init creates, so a later implementation of the API phases can be compared against it
(tests/oracle/kubeadm_dryrun.py documents how the capture is made and its limits)."""

from __future__ import annotations

import base64

import pytest
import yaml

from tests.oracle.conftest import DryRuns
from tests.oracle.kubeadm_dryrun import parse_output
from tests.oracle.oracle import CONFIGS, config_file
from tests.oracle.sandbox import layout_of

pytestmark = [pytest.mark.real]

KS, KP = "kube-system", "kube-public"
# What `kubeadm init` creates through the API, by phase (kubeadm v1.37.2 source):
EXPECTED = {
    # upload-config/kubeadm: app/phases/uploadconfig/uploadconfig.go:42 UploadConfiguration
    ("ConfigMap", KS, "kubeadm-config"),
    ("Role", KS, "kubeadm:nodes-kubeadm-config"),
    ("RoleBinding", KS, "kubeadm:nodes-kubeadm-config"),
    # upload-config/kubelet: app/phases/kubelet/config.go:126 CreateConfigMap, :165 RBAC
    ("ConfigMap", KS, "kubelet-config"),
    ("Role", KS, "kubeadm:kubelet-config"),
    ("RoleBinding", KS, "kubeadm:kubelet-config"),
    # bootstrap-token: app/phases/bootstraptoken/node/token.go:35, tlsbootstrap.go:53-135
    ("Secret", KS, "bootstrap-token-<id>"),
    ("ClusterRole", "", "kubeadm:get-nodes"),
    ("ClusterRoleBinding", "", "kubeadm:get-nodes"),
    ("ClusterRoleBinding", "", "kubeadm:kubelet-bootstrap"),
    ("ClusterRoleBinding", "", "kubeadm:node-autoapprove-bootstrap"),
    ("ClusterRoleBinding", "", "kubeadm:node-autoapprove-certificate-rotation"),
    ("ClusterRoleBinding", "", "kubeadm:apiserver-kubelet-client"),
    # bootstrap-token/cluster-info: app/phases/bootstraptoken/clusterinfo/clusterinfo.go:42,83
    ("ConfigMap", KP, "cluster-info"),
    ("Role", KP, "kubeadm:bootstrap-signer-clusterinfo"),
    ("RoleBinding", KP, "kubeadm:bootstrap-signer-clusterinfo"),
    # addon/coredns: app/phases/addons/dns/dns.go:172 createCoreDNSAddon
    ("ConfigMap", KS, "coredns"),
    ("ClusterRole", "", "system:coredns"),
    ("ClusterRoleBinding", "", "system:coredns"),
    ("ServiceAccount", KS, "coredns"),
    ("Deployment", KS, "coredns"),
    ("Service", KS, "kube-dns"),
    # addon/kube-proxy: app/phases/addons/proxy/proxy.go:73 printOrCreateKubeProxyObjects
    ("ConfigMap", KS, "kube-proxy"),
    ("DaemonSet", KS, "kube-proxy"),
    ("ServiceAccount", KS, "kube-proxy"),
    ("ClusterRoleBinding", "", "kubeadm:node-proxier"),
    ("Role", KS, "kube-proxy"),
    ("RoleBinding", KS, "kube-proxy"),
}


def _node_registration(config: str) -> dict[str, object]:
    for doc in yaml.safe_load_all(config_file(config).read_text()):
        if doc.get("kind") == "InitConfiguration":
            return dict(doc["nodeRegistration"])
    raise AssertionError("no InitConfiguration")


@pytest.mark.parametrize("config", CONFIGS)
def test_dry_run_creates_exactly_the_objects_of_kubeadm_source(kubeadm_dryrun: DryRuns,
                                                               config: str) -> None:
    cap = kubeadm_dryrun(config)
    assert cap.keys() == EXPECTED


@pytest.mark.parametrize("config", CONFIGS)
def test_dry_run_marks_the_node_control_plane(kubeadm_dryrun: DryRuns, config: str) -> None:
    """app/phases/markcontrolplane/markcontrolplane.go:37: GET then PATCH the Node; labels and
    the taints (v1beta4 default when nodeRegistration.taints is unset; `[]` means none)."""
    cap = kubeadm_dryrun(config)
    reg = _node_registration(config)
    node = reg["name"]
    node_actions = [(a.verb, a.name) for a in cap.actions if a.resource == "nodes"]
    assert node_actions == [("GET", node), ("PATCH", node)]
    assert cap.node_labels == ("node-role.kubernetes.io/control-plane",
                               "node.kubernetes.io/exclude-from-external-load-balancers")
    taints = ("node-role.kubernetes.io/control-plane:NoSchedule",)
    assert cap.node_taints == (() if reg.get("taints") == [] else taints)


@pytest.mark.parametrize("config", CONFIGS)
def test_cluster_info_carries_admin_conf_cluster(kubeadm_dryrun: DryRuns, config: str) -> None:
    """clusterinfo.go:42 copies admin.conf's cluster (CA data and server URL) into cluster-info,
    under the empty cluster name, with no users or contexts."""
    cap = kubeadm_dryrun(config)
    ci = yaml.safe_load(cap.get("ConfigMap", KP, "cluster-info")["data"]["kubeconfig"])
    admin = yaml.safe_load(cap.capture.path(f"{cap.dry_run_dir}/admin.conf").read_text())
    assert [c["name"] for c in ci["clusters"]] == [""]
    assert ci["clusters"][0]["cluster"] == admin["clusters"][0]["cluster"]
    ca = cap.capture.path(f"{cap.dry_run_dir}/ca.crt").read_bytes()
    assert base64.b64decode(ci["clusters"][0]["cluster"]["certificate-authority-data"]) == ca
    assert ci["contexts"] is None and ci["users"] is None


@pytest.mark.parametrize("config", CONFIGS)
def test_uploaded_configs_are_captured(kubeadm_dryrun: DryRuns, config: str) -> None:
    cap = kubeadm_dryrun(config)
    cc = yaml.safe_load(cap.get("ConfigMap", KS, "kubeadm-config")["data"]
                        ["ClusterConfiguration"])
    assert cc["kind"] == "ClusterConfiguration"
    assert cc["certificatesDir"] == layout_of(config_file(config)).cert_dir
    kc = yaml.safe_load(cap.get("ConfigMap", KS, "kubelet-config")["data"]["kubelet"])
    assert kc["kind"] == "KubeletConfiguration"
    # the node-specific CRI socket is patched into the on-disk file only (instance-config.yaml,
    # app/phases/kubelet/config.go:73); the uploaded copy keeps the field, empty (the kubelet
    # v1beta1 field has no omitempty)
    assert kc["containerRuntimeEndpoint"] == ""


def test_bootstrap_token_secret_shape(kubeadm_dryrun: DryRuns) -> None:
    """Key names only: the token itself is never printed by tests."""
    cap = kubeadm_dryrun("default")
    (key,) = [k for k in cap.objects if k[0] == "Secret"]
    secret = cap.objects[key]
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert sorted(secret["data"]) == ["auth-extra-groups", "expiration", "token-id",
                                      "token-secret", "usage-bootstrap-authentication",
                                      "usage-bootstrap-signing"]
    token_id = base64.b64decode(secret["data"]["token-id"]).decode()
    assert key == ("Secret", KS, f"bootstrap-token-{token_id}")


def test_dry_run_writes_node_files_to_its_own_directory(kubeadm_dryrun: DryRuns) -> None:
    cap = kubeadm_dryrun("default")
    assert cap.dry_run_dir.startswith("/etc/kubernetes/tmp/kubeadm-init-dryrun")
    assert set(cap.would_write) >= {"/etc/kubernetes/manifests/kube-apiserver.yaml",
                                    "/var/lib/kubelet/config.yaml",
                                    "/var/lib/kubelet/kubeadm-flags.env"}
    written = cap.capture.path(f"{cap.dry_run_dir}/kube-apiserver.yaml").read_text()
    assert cap.would_write["/etc/kubernetes/manifests/kube-apiserver.yaml"] == written


def test_parser_reads_named_and_object_actions() -> None:
    out = "\n".join([
        "[upload-config] Storing the configuration",
        '[dryrun] Would perform action GET on resource "nodes" in API group "core/v1"',
        '[dryrun] Resource name "cp1", namespace ""',
        "[dryrun] Attached object:",
        "apiVersion: v1", "kind: Node", "metadata:", "  name: cp1", "",
        '[dryrun] Would perform action CREATE on resource "configmaps" in API group "core/v1"',
        "[dryrun] Attached object:",
        "apiVersion: v1", "data:", "  Corefile: |", "    .:53 {", "", "    }", "kind: ConfigMap",
        "metadata:", "  name: coredns", "  namespace: kube-system", "",
        '[dryrun] Would write file "/var/lib/kubelet/kubeadm-flags.env" with content:',
        'KUBELET_KUBEADM_ARGS=""',
        "[mark-control-plane] Marking the node cp1 as control-plane by adding the taints [a:b]",
    ])
    actions, files, labels, taints = parse_output(out)
    assert [(a.verb, a.resource, a.name) for a in actions] == [
        ("GET", "nodes", "cp1"), ("CREATE", "configmaps", None)]
    assert actions[1].obj is not None
    assert actions[1].obj["data"]["Corefile"] == ".:53 {\n\n}\n"
    assert files == {"/var/lib/kubelet/kubeadm-flags.env": 'KUBELET_KUBEADM_ARGS=""\n'}
    assert (labels, taints) == ((), ("a:b",))
