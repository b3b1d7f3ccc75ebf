"""The comparison can fail: fed real kubeadm output that differs in known ways, it reports those
differences and the allow-list does not hide them."""

from __future__ import annotations

import pytest

from tests.oracle.compare import Allowlist, diff_facts
from tests.oracle.facts import ORDER, file_facts, find_authorities, flags, flatten, tree_facts
from tests.oracle.oracle import Oracle

pytestmark = [pytest.mark.real]


def _fields(diffs: list) -> set[str]:  # type: ignore[type-arg]
    return {d.field for d in diffs}


def test_other_configs_certificate_differs_in_sans(oracle: Oracle, allowlist: Allowlist) -> None:
    a = oracle.kubeadm("default").facts("/etc/kubernetes/pki/apiserver.crt")
    b = oracle.kubeadm("custom-network").facts("/etc/kubernetes/pki/apiserver.crt")
    bad, _ = allowlist.split(diff_facts("x", "apiserver.crt", a, b))
    assert {"san"} <= _fields(bad)


def test_ecdsa_keys_differ_from_rsa(oracle: Oracle, allowlist: Allowlist) -> None:
    a = oracle.kubeadm("default").facts("/etc/kubernetes/pki/ca.key")
    b = oracle.kubeadm("ecdsa").facts("/etc/kubernetes/pki/ca.key")
    bad, _ = allowlist.split(diff_facts("x", "ca.key", a, b))
    assert {"pem.blocks", "key.algorithm"} <= _fields(bad)


def test_certificate_from_another_ca_fails_the_chain(oracle: Oracle) -> None:
    mine, other = oracle.kubeadm("default"), oracle.kubeadm("ecdsa")
    path = "/etc/kubernetes/pki/apiserver.crt"
    foreign_cas = find_authorities(other.capture.root, other.capture.layout.trees)
    f = file_facts(mine.capture.path(path), path, cas=foreign_cas, window=mine.window,
                   public_keys={})
    assert f["chain"] == "signature does not verify against /etc/kubernetes/pki/ca.crt"


def test_manifest_flag_values_and_order_are_compared(oracle: Oracle,
                                                     allowlist: Allowlist) -> None:
    path = "/etc/kubernetes/manifests/kube-apiserver.yaml"
    a = oracle.kubeadm("default").facts(path)
    b = oracle.kubeadm("custom-network").facts(path)
    bad, _ = allowlist.split(diff_facts("x", path, a, b))
    cmd = "spec.containers[kube-apiserver].command"
    assert {f"{cmd}[--secure-port]", f"{cmd}[--service-cluster-ip-range]", "text"} <= _fields(
        bad)


def test_reordered_flags_are_an_order_difference_only() -> None:
    a = flags(["etcd", "--a=1", "--b=2"], "cmd", {})
    b = flags(["etcd", "--b=2", "--a=1"], "cmd", {})
    assert _fields(diff_facts("x", "y", a, b)) == {"cmd" + ORDER}


def test_yaml_key_order_is_compared() -> None:
    a = flatten({"kind": "Pod", "apiVersion": "v1"})
    b = flatten({"apiVersion": "v1", "kind": "Pod"})
    assert _fields(diff_facts("x", "y", a, b)) == {ORDER}


def test_bool_and_string_are_different_values() -> None:
    assert _fields(diff_facts("x", "y", {"a": True}, {"a": "true"})) == {"a"}
    assert _fields(diff_facts("x", "y", {"a": 1}, {"a": True})) == {"a"}


def test_file_modes_are_compared(oracle: Oracle, allowlist: Allowlist) -> None:
    r = oracle.kubeadm("default")
    a = tree_facts(r.capture.root, r.capture.layout.trees)
    b = dict(a)
    b["/etc/kubernetes/pki/ca.key"] = "file 0644 0:0"
    del b["/var/lib/etcd"]
    bad, _ = allowlist.split(diff_facts("x", "files", a, b))
    assert _fields(bad) == {"/etc/kubernetes/pki/ca.key", "/var/lib/etcd"}
