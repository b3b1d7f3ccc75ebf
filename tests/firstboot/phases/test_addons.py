"""addon/coredns and addon/kube-proxy: every object equals what real `kubeadm init --dry-run`
sends, for every test config, both as the real API server stores them (tests/apiobjects.py:
no value is dropped by shape); on the live cluster the objects are kubeadm's but for what the
controllers wrote since; reruns follow EnsureDNSAddon (replicas kept, a modified Corefile
retained). A deliberately dropped `false`, `""` or volume source is caught."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeinit.api.addons import (
    KUBE_PROXY_CONFIGURATION,
    _zero_kube_proxy_configuration,
    coredns_objects,
    kube_proxy_objects,
)
from kubeinit.api.upload_config import addon_disabled
from kubeinit.config import load_config, parse_config
from kubeinit.kubelet import unknown_fields
from tests.apiobjects import API_CONFIGS, as_stored, compare_as_stored, compare_live, live
from tests.conftest import config_path
from tests.firstboot.conftest import KubeadmDryRuns, KubeadmObjects, kubeadm_for
from tests.localcluster import LocalCluster
from tests.oracle import sandbox
from tests.oracle.kubeadm_dryrun import objects_of, parse_output

pytestmark = pytest.mark.real

CLEAN_ENV: dict[str, str] = {}  # the oracle runs kubeadm without *_proxy variables
KEYS = [("ConfigMap", "kube-system", "coredns"), ("ClusterRole", "", "system:coredns"),
        ("ClusterRoleBinding", "", "system:coredns"),
        ("ServiceAccount", "kube-system", "coredns"),
        ("Deployment", "kube-system", "coredns"), ("Service", "kube-system", "kube-dns"),
        ("ConfigMap", "kube-system", "kube-proxy"),
        ("DaemonSet", "kube-system", "kube-proxy"),
        ("ServiceAccount", "kube-system", "kube-proxy"),
        ("ClusterRoleBinding", "", "kubeadm:node-proxier"),
        ("Role", "kube-system", "kube-proxy"), ("RoleBinding", "kube-system", "kube-proxy")]


def _rendered(name: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    config = load_config(config_path(name))
    text = config_path(name).read_text()
    addr = text.split("advertiseAddress:")[1].split()[0]
    objs = list(coredns_objects(config).values()) + list(
        kube_proxy_objects(config, addr, CLEAN_ENV).values())
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for o in objs}


@pytest.mark.parametrize("name", API_CONFIGS)
def test_addon_objects_equal_kubeadm(cluster: LocalCluster, kubeadm_dryruns: KubeadmDryRuns,
                                     name: str) -> None:
    want = kubeadm_dryruns(name)
    rendered = _rendered(name)
    assert sorted(rendered) == sorted(KEYS)
    compare_as_stored(cluster.admin_conf, name,
                      [(want.get(*key), obj) for key, obj in rendered.items()])
    # byte-identical payload, so the component-config hash matches too
    assert rendered[("ConfigMap", "kube-system", "kube-proxy")]["data"] == want.get(
        "ConfigMap", "kube-system", "kube-proxy")["data"]


def test_live_objects_are_kubeadms(cluster: LocalCluster,
                                   kubeadm_dryrun: KubeadmObjects) -> None:
    compare_live(cluster, "local-up", [kubeadm_dryrun.get(*key) for key in KEYS])


def _drop_allow_privilege_escalation(objs: dict[Any, Any]) -> str:
    dep = objs[("Deployment", "kube-system", "coredns")]
    sc = dep["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    del sc["allowPrivilegeEscalation"]
    return "securityContext.allowPrivilegeEscalation"


def _empty_string_to_absent(objs: dict[Any, Any]) -> str:
    cm = objs[("ConfigMap", "kube-system", "kube-proxy")]
    cm["data"]["extra"] = ""
    return "data.extra"


def _drop_a_volume_source(objs: dict[Any, Any]) -> str:
    ds = objs[("DaemonSet", "kube-system", "kube-proxy")]
    vol = ds["spec"]["template"]["spec"]["volumes"][0]
    (source,) = (k for k in vol if k != "name")
    del vol[source]  # the server defaults a volume without a source to emptyDir: {}
    return "volumes[0]"


def _empty_a_mapping(objs: dict[Any, Any]) -> str:
    ds = objs[("DaemonSet", "kube-system", "kube-proxy")]
    container = ds["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": True}
    container["securityContext"] = {}
    return "securityContext"


@pytest.mark.parametrize("mutate", [_drop_allow_privilege_escalation, _empty_string_to_absent,
                                    _drop_a_volume_source, _empty_a_mapping],
                         ids=["dropped-false", "added-empty-string", "dropped-volume-source",
                              "emptied-mapping"])
def test_a_dropped_false_or_empty_value_is_caught(cluster: LocalCluster,
                                                  kubeadm_dryruns: KubeadmDryRuns,
                                                  mutate: Any) -> None:
    """The comparison fails when one kubeinit object loses (or gains) a value that a
    shape-based filter would have dropped: false, "", a volume source, {}."""
    want = kubeadm_dryruns("default")
    rendered = copy.deepcopy(_rendered("default"))
    where = mutate(rendered)
    with pytest.raises(AssertionError, match="not explained by") as err:
        compare_as_stored(cluster.admin_conf, "default",
                          [(want.get(*key), obj) for key, obj in rendered.items()])
    assert where in str(err.value), str(err.value)[:3000]


def test_server_form_keeps_false_and_empty_values(cluster: LocalCluster) -> None:
    """What the comparison relies on: the server keeps `false` in a *bool field and "" in
    ConfigMap data; it is not the comparison that would hide them."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "probe", "namespace": "default"}, "data": {"empty": ""}}
    (got,) = as_stored(cluster.admin_conf, [cm])
    assert got["data"] == {"empty": ""}
    dep = _rendered("default")[("Deployment", "kube-system", "coredns")]
    (got,) = as_stored(cluster.admin_conf, [dep])
    sc = got["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False


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


# --- KubeProxyConfiguration fields: the Go source's, unknown ones dropped as kubeadm drops them ---

GO_MOD = Path.home() / "go" / "pkg" / "mod" / "k8s.io"
_GO_FIELD = re.compile(r'^\t(?:(\w+)\s+)?([\w.*\[\]]+)\s+`json:"([^",]*)')


def _go_structs(*files: Path) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """Struct types (name -> [(json name, Go type)], "" for an inlined embedded struct) and
    named slice types (name -> element type) of Go source files."""
    structs: dict[str, list[tuple[str, str]]] = {}
    slices: dict[str, str] = {}
    for f in files:
        assert f.is_file(), f"{f} missing: hack/k8s-binaries fills the Go module cache"
        current: list[tuple[str, str]] | None = None
        for line in f.read_text().splitlines():
            if m := re.match(r"^type (\w+) struct \{", line):
                assert m.group(1) not in structs, m.group(1)
                current = structs[m.group(1)] = []
            elif m := re.match(r"^type (\w+) \[\]([\w.]+)$", line):
                slices[m.group(1)] = m.group(2)
            elif line == "}":
                current = None
            elif current is not None and (m := _GO_FIELD.match(line)) and m.group(3) != "-":
                current.append((m.group(3), m.group(2)))
    return structs, slices


def _go_tree(structs: dict[str, list[tuple[str, str]]], slices: dict[str, str],
             name: str) -> dict[str, Any]:
    """The JSON field tree of a Go struct: a subtree for a struct (direct, pointer or slice
    element), None for anything else (scalars, maps, types with their own JSON form)."""
    out: dict[str, Any] = {}
    for field_name, go_type in structs[name]:
        base = go_type.lstrip("*")
        base = slices.get(base.split(".")[-1], base).removeprefix("[]").split(".")[-1]
        sub = _go_tree(structs, slices, base) if base in structs and not go_type.startswith(
            "map[") and base != "TimeOrMetaDuration" else None  # it has its own UnmarshalJSON
        if field_name == "":
            out.update(sub or {})  # embedded: inlined (metav1.TypeMeta is not parsed here)
        else:
            out[field_name] = sub
    return out


def _shape_tree(shape: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in shape.items():
        struct = kind[1] if isinstance(kind, tuple) else kind  # ("*" or "[]", struct)
        out[name] = _shape_tree(struct) if isinstance(struct, dict) else None
    return out


def test_kube_proxy_fields_are_the_go_types() -> None:
    """kubeinit's KubeProxyConfiguration field list is k8s.io/kube-proxy v1alpha1 types.go of
    the pinned version (with component-base's ClientConnectionConfiguration and logs API),
    read from the Go module cache: every field, at every depth, no more."""
    structs, slices = _go_structs(
        GO_MOD / "kube-proxy@v0.37.2/config/v1alpha1/types.go",
        GO_MOD / "component-base@v0.37.2/config/v1alpha1/types.go",
        GO_MOD / "component-base@v0.37.2/logs/api/v1/types.go",
    )
    go = _go_tree(structs, slices, "KubeProxyConfiguration")
    assert go["conntrack"]["tcpEstablishedTimeout"] is None  # the parser sees nested structs
    assert go["logging"]["options"]["text"] == {"splitStream": None, "infoBufferSize": None}
    assert _shape_tree(KUBE_PROXY_CONFIGURATION) == go
    # and the zero struct kubeinit renders from holds no field the type lacks
    zero = {k: v for k, v in _zero_kube_proxy_configuration().items()
            if k not in ("apiVersion", "kind")}
    assert not unknown_fields(zero, shape=KUBE_PROXY_CONFIGURATION)


PROXY_DOC = """\
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
zeta: 1
Mode: ipvs
mode: nftables
iptables:
  bogus: 1
  masqueradeAll: true
clientConnection:
  qpsx: 2
  qps: 7
detectLocal:
  x: 1
  bridgeInterface: br0
conntrack:
  tcpEstablishedTimeout: 1s
  zz: 2
"""


def test_unknown_kube_proxy_fields_are_dropped_as_kubeadm_drops_them(tmp_path: Path) -> None:
    """Real `kubeadm init --dry-run` with unknown KubeProxyConfiguration fields (top level,
    nested, a case variant of a known one): the kube-proxy ConfigMap kubeinit renders is
    byte for byte kubeadm's: the unknown fields are gone, the known ones applied."""
    config_file = tmp_path / "proxy-unknown.yaml"
    config_file.write_text(config_path("default").read_text() + PROXY_DOC)
    cap = sandbox.run_kubeadm(kubeadm_for(config_file), config_file, tmp_path / "kubeadm",
                              name="proxy-unknown", dry_run=True,
                              extra=("--skip-phases=preflight",))
    assert cap.ok, f"kubeadm init --dry-run failed:\n{cap.failures()}"
    actions, *_ = parse_output(cap.runs[0].stdout)
    want = objects_of(actions)[("ConfigMap", "kube-system", "kube-proxy")]["data"]
    config = load_config(config_file)
    assert len(config.warnings) == 1 and '"conntrack.zz"' in config.warnings[0]
    got = kube_proxy_objects(config, "192.0.2.10", CLEAN_ENV)["ConfigMap"]["data"]
    assert got == want
    conf = yaml.safe_load(got["config.conf"])
    assert conf["mode"] == "nftables" and conf["clientConnection"]["qps"] == 7
    assert "zeta" not in conf and "Mode" not in conf and "zz" not in conf["conntrack"]
