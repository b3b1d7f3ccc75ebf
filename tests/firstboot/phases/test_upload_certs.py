"""upload-certs against a real control plane: the kubeadm-certs Secret has kubeadm's keys, is
owned by kubeadm's kind of short-lived token, decrypts with the certificate key from the join
files, and real `kubeadm join --control-plane --dry-run` downloads exactly our CA keys."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from kubeinit.api import certs_secret
from kubeinit.api.tokens import parse_rfc3339
from tests.apiobjects import (
    b64,
    compare_as_stored,
    compare_live,
    decrypted_certs,
    kubeadm_certs_for_server,
    kubeadm_join_dry_run,
    live,
    token_secrets,
)
from tests.firstboot.conftest import KubeadmObjects
from tests.localcluster import LocalCluster, wait_stopped

pytestmark = pytest.mark.real


def test_secret_equals_kubeadms_but_for_the_ciphertext_and_owner(
        cluster: LocalCluster, kubeadm_dryrun: KubeadmObjects) -> None:
    want = kubeadm_certs_for_server(kubeadm_dryrun.get("Secret", "kube-system", "kubeadm-certs"))
    compare_live(cluster, "local-up", [want])
    got = live(cluster, "Secret", "kube-system", "kubeadm-certs")
    assert sorted(got["data"]) == sorted(want["data"])
    assert got["type"] == "Opaque"


def test_secret_decrypts_with_the_key_from_the_join_file(cluster: LocalCluster) -> None:
    key = cluster.join_file()["certificateKey"]
    assert len(bytes.fromhex(key)) == 32
    plain = decrypted_certs(cluster, key)
    pki = cluster.root / "etc/kubernetes/pki"
    for name, path in (("ca.crt", "ca.crt"), ("ca.key", "ca.key"), ("sa.key", "sa.key"),
                       ("sa.pub", "sa.pub"), ("front-proxy-ca.crt", "front-proxy-ca.crt"),
                       ("front-proxy-ca.key", "front-proxy-ca.key"),
                       ("etcd-ca.crt", "etcd/ca.crt"), ("etcd-ca.key", "etcd/ca.key")):
        assert plain[name] == (pki / path).read_bytes(), name
    wrong = "00" * 32
    with pytest.raises(InvalidTag):
        decrypted_certs(cluster, wrong)


def test_owner_is_a_two_hour_proxy_token_like_kubeadms(cluster: LocalCluster,
                                                       kubeadm_dryrun: KubeadmObjects) -> None:
    secret = live(cluster, "Secret", "kube-system", "kubeadm-certs")
    (ref,) = secret["metadata"]["ownerReferences"]
    assert ref["kind"] == "Secret" and ref["apiVersion"] == "v1"
    assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
    owner = live(cluster, "Secret", "kube-system", ref["name"])
    assert owner["metadata"]["uid"] == ref["uid"]
    # kubeadm's proxy token: the token Secret whose description is the proxy description
    (kubeadm_proxy,) = [o for o in kubeadm_dryrun.named("Secret", r"bootstrap-token-.*")
                        if "description" in o["data"]]
    assert sorted(owner["data"]) == sorted(kubeadm_proxy["data"])
    # the whole token Secret is kubeadm's, but for the random token and its expiration
    compare_live(cluster, "local-up", [kubeadm_proxy], names=[ref["name"]])
    assert b64(owner, "description") == b64(kubeadm_proxy, "description")
    assert owner["type"] == kubeadm_proxy["type"]
    expires = parse_rfc3339(b64(owner, "expiration"))
    created = datetime.datetime.fromisoformat(
        owner["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert abs((expires - created) - datetime.timedelta(hours=2)) < datetime.timedelta(minutes=1)
    assert cluster.join_file()["certificateKeyExpires"] == b64(owner, "expiration")


def test_rbac_equals_kubeadm(cluster: LocalCluster, kubeadm_dryrun: KubeadmObjects) -> None:
    want = [kubeadm_dryrun.get(kind, "kube-system", "kubeadm:kubeadm-certs")
            for kind in ("Role", "RoleBinding")]
    rendered = {o["kind"]: o for o in certs_secret.kubeadm_certs_rbac()}
    assert sorted(rendered) == ["Role", "RoleBinding"]
    compare_as_stored(cluster.admin_conf, "local-up", [(w, rendered[w["kind"]]) for w in want])
    compare_live(cluster, "local-up", want)


def test_real_kubeadm_control_plane_join_downloads_our_ca_keys(cluster: LocalCluster,
                                                               tmp_path: Path) -> None:
    res = kubeadm_join_dry_run(cluster, tmp_path / "join", control_plane=True, node="cp2")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert '[download-certs] Downloading the certificates in Secret "kubeadm-certs"' in out
    pki = cluster.root / "etc/kubernetes/pki"
    for f in ("ca.key", "ca.crt", "sa.key", "sa.pub", "front-proxy-ca.key", "etcd/ca.key"):
        assert (tmp_path / "join" / f).read_bytes() == (pki / f).read_bytes(), f


def test_rerun_reuses_key_and_token(cluster: LocalCluster) -> None:
    """A second run (as after a crash) keeps the key and the proxy token: no new tokens."""
    before = {t["metadata"]["name"] for t in token_secrets(cluster)}
    key = cluster.join_file()["certificateKey"]
    res = cluster.kubeinit("init", "phase", "upload-certs")
    assert res.returncode == 0, res.stderr
    assert {t["metadata"]["name"] for t in token_secrets(cluster)} == before
    assert decrypted_certs(cluster, key)["ca.crt"]
    assert key not in res.stdout + res.stderr


def test_crash_after_proxy_token_then_rerun_leaves_no_orphan(cluster: LocalCluster) -> None:
    """SIGKILL right after the new proxy token exists (the saved state is gone, as if lost):
    the rerun removes the token that owns nothing."""
    (cluster.root / "var/lib/kubeinit/uploaded-certs.json").unlink()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "firstboot", "init", "phase", "upload-certs", "--root",
             str(cluster.root)], env={**os.environ,
                                      "KUBEINIT_FAULT_STOP_AT_API_WRITE": "upload-certs:1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert wait_stopped(proc), "fault point not reached"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proxies = [t for t in token_secrets(cluster) if "description" in t["data"]]
        assert len(proxies) == 2  # the old owner and the new, not-yet-owning token
        res = cluster.kubeinit("init", "phase", "upload-certs")
        assert res.returncode == 0, res.stderr
        proxies = [t for t in token_secrets(cluster) if "description" in t["data"]]
        assert len(proxies) == 1
        (ref,) = live(cluster, "Secret", "kube-system", "kubeadm-certs")["metadata"][
            "ownerReferences"]
        assert ref["name"] == proxies[0]["metadata"]["name"]
    finally:
        # the join files must keep matching the Secret for the other tests
        res = cluster.kubeinit("init", "phase", "show-join-command")
        assert res.returncode == 0, res.stderr
    key = cluster.join_file()["certificateKey"]
    assert decrypted_certs(cluster, key)["ca.key"]
