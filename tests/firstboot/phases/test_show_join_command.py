"""show-join-command and `kubeinit join-command`: the files (0600, kubeadm's command format,
expiry times), printing on request only, and `--refresh` minting a working new token and a new
certificate key, checked with real kubeadm."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from kubeinit.api.join import join_command
from kubeinit.api.tokens import parse_rfc3339
from tests.apiobjects import b64, decrypted_certs, kubeadm_join_dry_run, live
from tests.firstboot.conftest import KubeadmObjects
from tests.localcluster import LocalCluster

pytestmark = pytest.mark.real


def test_files_are_private(cluster: LocalCluster) -> None:
    for name in ("join-command", "join-command-control-plane", "join.json"):
        f = cluster.root / "etc/kubeinit" / name
        assert f.stat().st_mode & 0o777 == 0o600, name


def test_worker_command_is_kubeadms_format(cluster: LocalCluster,
                                           kubeadm_dryrun: KubeadmObjects) -> None:
    """kubeadm's own printed join command (from the dry run) and ours differ only in the token
    and the CA hash, which are per cluster."""
    printed = re.search(r"(kubeadm join \S+ --token \S+ \\\n\t(--discovery-token-ca-cert-hash "
                        r"\S+ )+)", kubeadm_dryrun.stdout)
    assert printed, kubeadm_dryrun.stdout[-1500:]
    info = cluster.join_file()
    ours = join_command(info["server"], info["token"], info["caCertHashes"])
    mask = lambda s: re.sub(r"sha256:[0-9a-f]{64}", "H", re.sub(  # noqa: E731
        r"--token [a-z0-9.]+", "--token T", s))
    assert mask(ours) == mask(printed.group(1))
    text = (cluster.root / "etc/kubeinit/join-command").read_text()
    assert f"exec {ours}\n" in text


def test_expiry_times_match_the_api_objects(cluster: LocalCluster) -> None:
    info = cluster.join_file()
    tid = info["token"].split(".")[0]
    secret = live(cluster, "Secret", "kube-system", f"bootstrap-token-{tid}")
    assert info["tokenExpires"] == b64(secret, "expiration")
    now = datetime.datetime.now(datetime.UTC)
    assert parse_rfc3339(info["tokenExpires"]) > now + datetime.timedelta(hours=20)
    assert parse_rfc3339(info["certificateKeyExpires"]) > now


def test_join_command_prints_the_command(cluster: LocalCluster) -> None:
    res = cluster.kubeinit("join-command")
    assert res.returncode == 0, res.stderr
    info = cluster.join_file()
    assert res.stdout.startswith(f"kubeadm join {info['server']} --token {info['token']} ")
    res = cluster.kubeinit("join-command", "--control-plane")
    assert res.returncode == 0, res.stderr
    assert f"--control-plane --certificate-key {info['certificateKey']}" in res.stdout
    assert info["token"] not in res.stderr


def test_refresh_mints_a_new_token_and_key_that_work(cluster: LocalCluster,
                                                     tmp_path: Path) -> None:
    old = cluster.join_file()
    res = cluster.kubeinit("join-command", "--refresh", "--control-plane", timeout=300)
    assert res.returncode == 0, res.stderr
    new = cluster.join_file()
    assert new["token"] != old["token"]
    assert new["certificateKey"] != old["certificateKey"]
    assert new["token"] not in res.stderr and new["certificateKey"] not in res.stderr
    assert decrypted_certs(cluster, new["certificateKey"])["ca.key"] == (
        cluster.root / "etc/kubernetes/pki/ca.key").read_bytes()
    with pytest.raises(InvalidTag):
        decrypted_certs(cluster, old["certificateKey"])
    for control_plane in (False, True):
        r = kubeadm_join_dry_run(cluster, tmp_path / f"join-{control_plane}",
                                 control_plane=control_plane, node=f"refresh-{control_plane}")
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
