"""Facts about real kubeadm v1.37.2 that settle the UNVERIFIED items of the reference notes
(docs/compatibility.md links each row here). These check the judge, not kubeinit: kubeinit is
held to the same behaviour by the comparison tests. If kubeadm is bumped and one of these fails,
docs/compatibility.md is out of date."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.oracle.conftest import DryRuns
from tests.oracle.oracle import Oracle, config_file
from tests.oracle.sandbox import CLEAN_ENV

pytestmark = [pytest.mark.real]

APISERVER = "/etc/kubernetes/manifests/kube-apiserver.yaml"
ETCD = "/etc/kubernetes/manifests/etcd.yaml"


def _pod(oracle: Oracle, config: str, path: str) -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load(oracle.kubeadm(config).capture.path(path).read_text()))


def _cluster_config(config: str) -> dict:  # type: ignore[type-arg]
    for doc in yaml.safe_load_all(config_file(config).read_text()):
        if doc.get("kind") == "ClusterConfiguration":
            return dict(doc)
    return {}


@pytest.mark.parametrize(("config", "component", "section"), [
    ("extra-sans-args", "kube-apiserver", "apiServer"),
    ("extra-sans-args", "kube-controller-manager", "controllerManager"),
    ("extra-sans-args", "etcd", "etcd"),
    ("extras", "kube-apiserver", "apiServer"),
])
def test_extra_args_are_appended_in_user_order_after_sorted_defaults(
        oracle: Oracle, config: str, component: str, section: str) -> None:
    """§9.1: app/util/arguments.go:34 ArgumentsToCommand sorts only kubeadm's defaults, drops
    the defaults the user overrides and appends the user's args in the user's order."""
    path = ETCD if component == "etcd" else f"/etc/kubernetes/manifests/{component}.yaml"
    command = _pod(oracle, config, path)["spec"]["containers"][0]["command"][1:]
    sec = _cluster_config(config)[section]
    extra = (sec["local"] if section == "etcd" else sec)["extraArgs"]
    user = [f"--{a['name']}={a['value']}" for a in extra]
    assert command[-len(user):] == user
    defaults = command[:-len(user)]
    assert defaults == sorted(defaults)
    names = {a["name"] for a in extra}
    assert not [d for d in defaults if d[2:].split("=", 1)[0] in names]


def test_etcd_image_and_flags(oracle: Oracle) -> None:
    """§9.2: constants.go:330 DefaultEtcdVersion 3.7.0-0; SupportedEtcdVersion (:511) maps
    34, 35 and 36 to 3.7.0-0 and has no 37 entry (v1.37 falls back to the nearest, :574).
    The etcd flags are those of kubeadm v1.36 (local.go getEtcdCommand unchanged). (kubeadm
    v1.37.2 deploying v1.36.3 picks 3.7.0-0 too: test_image_tags_kubeadm_uses.)"""
    c = _pod(oracle, "default", ETCD)["spec"]["containers"][0]
    assert c["image"] == "registry.k8s.io/etcd:3.7.0-0"
    assert {"--feature-gates=InitialCorruptCheck=true", "--watch-progress-notify-interval=5s",
            "--snapshot-count=10000"} <= set(c["command"])
    assert not [f for f in c["command"] if f.startswith("--experimental-")]


def test_ecdsa_p384_is_supported(oracle: Oracle) -> None:
    """§9.3: pki_helpers.go:598 (also present in v1.35.4 and v1.36.3)."""
    f = oracle.kubeadm("ecdsa-p384").facts("/etc/kubernetes/pki/apiserver.crt")
    assert (f["public_key.algorithm"], f["public_key.curve"]) == ("ECDSA", "secp384r1")
    assert f["signature_algorithm"] == "ecdsa-with-SHA384"


def test_kubelet_config_key_set(oracle: Oracle) -> None:
    """§9.4: the top-level keys of a default v1.37.2 /var/lib/kubelet/config.yaml, in order."""
    doc = yaml.safe_load(oracle.kubeadm("default").capture.path("/var/lib/kubelet/config.yaml")
                         .read_text())
    assert list(doc) == [
        "apiVersion", "authentication", "authorization", "cgroupDriver", "clusterDNS",
        "clusterDomain", "containerRuntimeEndpoint", "cpuManagerReconcilePeriod",
        "crashLoopBackOff", "evictionPressureTransitionPeriod", "fileCheckFrequency",
        "healthzBindAddress", "healthzPort", "httpCheckFrequency", "imageMaximumGCAge",
        "imageMinimumGCAge", "kind", "logging", "memorySwap", "nodeStatusReportFrequency",
        "nodeStatusUpdateFrequency", "rotateCertificates", "runtimeRequestTimeout",
        "shutdownGracePeriod", "shutdownGracePeriodCriticalPods", "staticPodPath",
        "streamingConnectionIdleTimeout", "syncFrequency", "volumeStatsAggPeriod"]


def test_kubeconfigs_have_no_preferences(oracle: Oracle) -> None:
    """§9.5: client-go v0.37 omits the empty `preferences`."""
    for name in ("admin", "super-admin", "kubelet", "controller-manager", "scheduler"):
        doc = yaml.safe_load(oracle.kubeadm("default").capture.path(
            f"/etc/kubernetes/{name}.conf").read_text())
        assert list(doc) == ["apiVersion", "clusters", "contexts", "current-context", "kind",
                             "users"], name


def test_apiserver_kubelet_client_has_no_organization(oracle: Oracle,
                                                      kubeadm_dryrun: DryRuns) -> None:
    """§9.9 / §2.4: no O in v1.37.2 (certlist.go:312); the API server is authorised on kubelets
    by ClusterRoleBinding kubeadm:apiserver-kubelet-client (tlsbootstrap.go:135)."""
    f = oracle.kubeadm("default").facts("/etc/kubernetes/pki/apiserver-kubelet-client.crt")
    assert f["subject"] == "CN=kube-apiserver-kubelet-client"
    crb = kubeadm_dryrun("default").get("ClusterRoleBinding", "",
                                        "kubeadm:apiserver-kubelet-client")
    assert crb["roleRef"]["name"] == "system:kubelet-api-admin"
    # no apiGroup on the User subject: the API server's defaulting adds it
    assert crb["subjects"] == [{"kind": "User", "name": "kube-apiserver-kubelet-client"}]


def test_subject_key_id_is_truncated_sha256_on_cas_only(oracle: Oracle) -> None:
    """§9.10: Go >= 1.25 x509.CreateCertificate fills a missing SubjectKeyId of a CA with the
    first 160 bits of SHA-256 of the public key; leaves get none, only an AuthorityKeyId."""
    r = oracle.kubeadm("default")
    ca = r.facts("/etc/kubernetes/pki/ca.crt")
    assert ca["ski.method"] == "sha256(subjectPublicKey)[:20]"
    leaf = r.facts("/etc/kubernetes/pki/apiserver.crt")
    assert "subjectKeyIdentifier" not in leaf["extensions~order"]
    assert leaf["aki.keyid_is_issuer_ski"] is True


def test_kubeconfig_client_certs_inherit_the_ca_not_before(oracle: Oracle) -> None:
    """§2.6: the kubeconfig spec sets only NotAfter, so NotBefore = the CA's
    (pki_helpers.go:628), even when the CA was made by an earlier process."""
    f = oracle.kubeadm("default").facts("/etc/kubernetes/admin.conf")
    base = "users[kubernetes-admin].user.client-certificate-data"
    assert f[f"{base}.valid_from.equals_issuer_valid_from"] is True


def test_apiserver_probes_use_local_endpoint_not_extra_args(oracle: Oracle) -> None:
    """§4.2: the API server probe host is localAPIEndpoint.advertiseAddress
    (staticpod/utils.go:299) and its port the bindPort, even when extraArgs override
    --advertise-address/--secure-port; etcd's probe follows --listen-metrics-urls."""
    c = _pod(oracle, "extras", APISERVER)["spec"]["containers"][0]
    assert "--advertise-address=192.0.2.65" in c["command"]
    assert c["livenessProbe"]["httpGet"]["host"] == "192.0.2.64"
    assert c["ports"][0]["containerPort"] == 6443
    e = _pod(oracle, "extras", ETCD)["spec"]["containers"][0]
    assert e["ports"][0]["containerPort"] == 2382


def test_no_cri_socket_annotation(kubeadm_bin: Path, kubeadm_dryrun: DryRuns) -> None:
    """Appendix B.2: v1.37.2 no longer knows the annotation at all."""
    assert b"kubeadm.alpha.kubernetes.io/cri-socket" not in kubeadm_bin.read_bytes()
    cap = kubeadm_dryrun("default")
    assert [a.verb for a in cap.actions if a.resource == "nodes"] == ["GET", "PATCH"]


def test_cluster_info_serialisation(kubeadm_dryrun: DryRuns) -> None:
    """Appendix B.3: clientcmd.Write of a Config with one unnamed cluster."""
    text = kubeadm_dryrun("default").get("ConfigMap", "kube-public", "cluster-info")["data"][
        "kubeconfig"]
    doc = yaml.safe_load(text)
    assert list(doc) == ["apiVersion", "clusters", "contexts", "current-context", "kind",
                         "users"]
    assert (doc["contexts"], doc["current-context"], doc["users"]) == (None, "", None)
    assert "contexts: null\n" in text and "users: null\n" in text


def test_default_kubeadm_config_content(kubeadm_dryrun: DryRuns) -> None:
    """Appendix B.4: what upload-config stores for the default config (no ClusterStatus, no
    empty controlPlaneEndpoint)."""
    cm = kubeadm_dryrun("default").get("ConfigMap", "kube-system", "kubeadm-config")
    assert list(cm["data"]) == ["ClusterConfiguration"]
    assert yaml.safe_load(cm["data"]["ClusterConfiguration"]) == {
        "apiServer": {}, "apiVersion": "kubeadm.k8s.io/v1beta4",
        "caCertificateValidityPeriod": "87600h0m0s", "certificateValidityPeriod": "8760h0m0s",
        "certificatesDir": "/etc/kubernetes/pki", "clusterName": "kubernetes",
        "controllerManager": {}, "dns": {}, "encryptionAlgorithm": "RSA-2048",
        "etcd": {"local": {"dataDir": "/var/lib/etcd"}}, "imageRepository": "registry.k8s.io",
        "kind": "ClusterConfiguration", "kubernetesVersion": "v1.37.2",
        "networking": {"dnsDomain": "cluster.local", "serviceSubnet": "10.96.0.0/12"},
        "proxy": {}, "scheduler": {}}


@pytest.mark.parametrize(("version", "etcd", "coredns", "pause"), [
    ("v1.37.2", "3.7.0-0", "v1.14.6", "3.10.2"),
    ("v1.36.3", "3.7.0-0", "v1.14.6", "3.10.2"),
])
def test_image_tags_kubeadm_uses(kubeadm_bin: Path, version: str, etcd: str, coredns: str,
                                 pause: str) -> None:
    """Appendix B.5: `kubeadm config images list`. CoreDNS and pause are kubeadm's own
    constants, whatever the target version; etcd comes from SupportedEtcdVersion."""
    out = subprocess.run(["unshare", "--net", "--", str(kubeadm_bin), "config", "images",
                          "list", "--kubernetes-version", version], env=CLEAN_ENV,
                         capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert out == [f"registry.k8s.io/kube-apiserver:{version}",
                   f"registry.k8s.io/kube-controller-manager:{version}",
                   f"registry.k8s.io/kube-scheduler:{version}",
                   f"registry.k8s.io/kube-proxy:{version}",
                   f"registry.k8s.io/coredns/coredns:{coredns}",
                   f"registry.k8s.io/pause:{pause}",
                   f"registry.k8s.io/etcd:{etcd}"]


def test_kube_proxy_runs_privileged(kubeadm_dryrun: DryRuns) -> None:
    """Appendix B.6."""
    ds = kubeadm_dryrun("default").get("DaemonSet", "kube-system", "kube-proxy")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert c["securityContext"] == {"privileged": True}


def test_cluster_info_is_readable_by_user_anonymous(kubeadm_dryrun: DryRuns) -> None:
    """Appendix B.8 (clusterinfo.go:83)."""
    rb = kubeadm_dryrun("default").get("RoleBinding", "kube-public",
                                       "kubeadm:bootstrap-signer-clusterinfo")
    assert rb["subjects"] == [{"kind": "User", "name": "system:anonymous"}]
