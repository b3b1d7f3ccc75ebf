"""bootstrap-token against a real control plane: kubeadm's token Secret and RBAC, cluster-info
signed by the REAL controller-manager's bootstrap signer, real `kubeadm join --dry-run`
discovery with the written command, and a CSR made with the bootstrap token approved and signed
by the real controller-manager."""

from __future__ import annotations

import base64
import datetime
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firstboot.apiclient import Client, Credentials
from kubeinit.api import tokens
from kubeinit.api.tokens import ca_cert_hash, detached_jws
from kubeinit.versions import release_for
from tests.apiobjects import (
    b64,
    compare_as_stored,
    compare_live,
    join_argv,
    kubeadm_join_dry_run,
    live,
    token_secrets,
)
from tests.firstboot.conftest import KubeadmObjects
from tests.localcluster import LocalCluster, bin_dir

pytestmark = pytest.mark.real


def _join_token(cluster: LocalCluster) -> str:
    token = cluster.join_file()["token"]
    assert tokens.TOKEN_RE.match(token)
    return str(token)


def test_token_secret_has_kubeadms_fields(cluster: LocalCluster,
                                          kubeadm_dryrun: KubeadmObjects) -> None:
    token = _join_token(cluster)
    got = live(cluster, "Secret", "kube-system", f"bootstrap-token-{token.split('.')[0]}")
    (want,) = [o for o in kubeadm_dryrun.named("Secret", r"bootstrap-token-.*")
               if "description" not in o["data"]]
    assert got["type"] == want["type"] == "bootstrap.kubernetes.io/token"
    assert sorted(got["data"]) == sorted(want["data"])
    # the whole Secret is kubeadm's, but for the random token and its expiration time
    compare_live(cluster, "local-up", [want], names=[got["metadata"]["name"]])
    for k in ("usage-bootstrap-authentication", "usage-bootstrap-signing", "auth-extra-groups"):
        assert b64(got, k) == b64(want, k), k
    assert b64(got, "token-id") + "." + b64(got, "token-secret") == token
    expires = tokens.parse_rfc3339(b64(got, "expiration"))
    left = expires - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=23) < left <= datetime.timedelta(hours=24)


def test_rbac_and_cluster_info_equal_kubeadm(cluster: LocalCluster,
                                             kubeadm_dryrun: KubeadmObjects) -> None:
    objs = tokens.tls_bootstrap_rbac(release_for("v1.37.2")) + tokens.cluster_info_rbac()
    rendered = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                for o in objs}
    assert len(rendered) == 8
    want = [kubeadm_dryrun.get(*key) for key in rendered]
    compare_as_stored(cluster.admin_conf, "local-up",
                      list(zip(want, rendered.values(), strict=True)))
    compare_live(cluster, "local-up",
                 [*want, kubeadm_dryrun.get("ConfigMap", "kube-public", "cluster-info")])


def test_cluster_info_is_admin_confs_cluster(cluster: LocalCluster,
                                             kubeadm_dryrun: KubeadmObjects) -> None:
    """Same document as kubeadm's but for the CA (each tool made its own): ours carries this
    cluster's CA, and the server is admin.conf's."""
    got = yaml.safe_load(live(cluster, "ConfigMap", "kube-public", "cluster-info")["data"][
        "kubeconfig"])
    want = yaml.safe_load(kubeadm_dryrun.get("ConfigMap", "kube-public", "cluster-info")[
        "data"]["kubeconfig"])
    ca = base64.b64decode(got["clusters"][0]["cluster"].pop("certificate-authority-data"))
    want["clusters"][0]["cluster"].pop("certificate-authority-data")
    assert got == want
    assert ca == (cluster.root / "etc/kubernetes/pki/ca.crt").read_bytes()


def _signed_cluster_info(cluster: LocalCluster, token_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        cm = live(cluster, "ConfigMap", "kube-public", "cluster-info")
        if f"jws-kubeconfig-{token_id}" in cm["data"] or time.monotonic() > deadline:
            return dict(cm["data"])
        time.sleep(1)


def test_cluster_info_is_signed_by_the_real_bootstrap_signer(cluster: LocalCluster) -> None:
    token = _join_token(cluster)
    tid, secret = token.split(".")
    data = _signed_cluster_info(cluster, tid)
    sig = data.get(f"jws-kubeconfig-{tid}")
    assert sig, f"the controller-manager did not sign cluster-info: {sorted(data)}"
    assert sig == detached_jws(data["kubeconfig"], tid, secret)
    assert sig != detached_jws(data["kubeconfig"], tid, "0" * 16)


def test_anonymous_can_read_only_cluster_info(cluster: LocalCluster) -> None:
    ca = (cluster.root / "etc/kubernetes/pki/ca.crt").read_bytes()
    anon = Client(Credentials(server=cluster.server, ca_pem=ca))
    try:
        cm = anon.request("GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info")
        assert "kubeconfig" in cm["data"]
        with pytest.raises(Exception, match="403"):
            anon.request("GET", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    finally:
        anon.close()


def test_real_kubeadm_join_discovery_passes(cluster: LocalCluster, tmp_path: Path) -> None:
    res = kubeadm_join_dry_run(cluster, tmp_path / "join")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert ("Cluster info signature and contents are valid and TLS certificate validates"
            " against pinned roots") in out
    assert 'Reading configuration from the "kubeadm-config" ConfigMap' in out
    hashes = cluster.join_file()["caCertHashes"]
    assert hashes == [ca_cert_hash((cluster.root / "etc/kubernetes/pki/ca.crt").read_bytes())]


def test_join_with_a_wrong_ca_hash_is_refused(cluster: LocalCluster, tmp_path: Path) -> None:
    """The pin is checked: the same command with another hash fails discovery."""


    argv = join_argv(cluster)
    argv[0] = str(bin_dir() / "kubeadm")
    i = argv.index("--discovery-token-ca-cert-hash")
    argv[i + 1] = "sha256:" + "0" * 64
    argv += ["--dry-run", "--ignore-preflight-errors=all", "--node-name", "worker9"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                         env={"PATH": "/usr/bin:/bin",
                              "KUBEADM_JOIN_DRYRUN_DIR": str(tmp_path)})
    assert res.returncode != 0
    assert "none of the public keys" in res.stdout + res.stderr


def test_bootstrap_token_csr_is_approved_and_signed_by_the_controller_manager(
        cluster: LocalCluster) -> None:
    """What a joining kubelet's TLS bootstrap does, with the token from the join file."""
    token = _join_token(cluster)
    ca = (cluster.root / "etc/kubernetes/pki/ca.crt").read_bytes()
    key = ec.generate_private_key(ec.SECP256R1())
    node = "tls-bootstrap-test"
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])).sign(
        key, hashes.SHA256())
    pem = csr.public_bytes(serialization.Encoding.PEM)
    client = Client(Credentials(server=cluster.server, ca_pem=ca, token=token))
    name = f"kubeinit-test-{int(time.time())}"
    try:
        client.create({"apiVersion": "certificates.k8s.io/v1",
                       "kind": "CertificateSigningRequest", "metadata": {"name": name},
                       "spec": {"request": base64.b64encode(pem).decode(),
                                "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                                "usages": ["digital signature", "client auth"]}})
        deadline = time.monotonic() + 90
        status: dict = {}
        while time.monotonic() < deadline:
            obj = client.get(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}")
            status = (obj or {}).get("status") or {}
            if status.get("certificate"):
                break
            time.sleep(1)
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        assert "Approved" in conditions, status
        assert conditions["Approved"]["reason"] == "AutoApproved"
        cert = x509.load_pem_x509_certificate(base64.b64decode(status["certificate"]))
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
            f"system:node:{node}")
    finally:
        client.close()
        cluster.kubectl("delete", "csr", name, "--ignore-not-found", check=False)


def test_rerun_keeps_the_same_token(cluster: LocalCluster) -> None:
    before = sorted(t["metadata"]["name"] for t in token_secrets(cluster))
    token = _join_token(cluster)
    res = cluster.kubeinit("init", "phase", "bootstrap-token")
    assert res.returncode == 0, res.stderr
    assert sorted(t["metadata"]["name"] for t in token_secrets(cluster)) == before
    assert token not in res.stdout + res.stderr
    assert token.split(".")[1] not in res.stdout + res.stderr


@pytest.mark.parametrize(("version", "binding"), [("v1.35.4", False), ("v1.36.3", True),
                                                  ("v1.37.2", True)])
def test_apiserver_kubelet_client_binding_by_version(version: str, binding: bool) -> None:
    """kubeadm v1.35.4's bootstrap-token phase has no AllowAPIServerToAccessKubeletAPI (its
    apiserver-kubelet-client certificate still carries O=kubeadm:cluster-admins)."""
    names = [o["metadata"]["name"] for o in tokens.tls_bootstrap_rbac(release_for(version))]
    assert ("kubeadm:apiserver-kubelet-client" in names) is binding
    assert len(names) == 5 + binding
