"""kubeinit/profile.py: the one door through which first boot reads the build's profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubeinit import paths
from kubeinit import profile as prof
from kubeinit.config import load_config
from kubeinit.errors import StateUnreadable
from kubeinit.identity import Identity
from kubeinit.preflight import Target, profile_for


def _profile() -> prof.Profile:
    config = load_config(None)
    return prof.Profile(
        kubeinit_version="0.1.0", kubernetes_version="v1.37.2", address_family=4,
        images=("registry.k8s.io/pause:3.10.2",),
        static_pods={"/etc/kubernetes/manifests/etcd.yaml":
                     f"- --name={prof.NODE_NAME}\n- --listen-client-urls=https://"
                     f"{prof.ADVERTISE_ADDRESS}:2379\n"},
        addons={}, kubeconfigs={}, kubelet={},
        preflight=profile_for(config, Target.NODE), config="",
        preload=(prof.Preload("registry.k8s.io/pause:3.10.2",
                              "/usr/lib/kubeinit/images/pause.tar", "sha256:" + "0" * 64),))


def _write(root: Path, text: str) -> None:
    p = paths.under(root, paths.PROFILE)
    p.parent.mkdir(parents=True)
    p.write_text(text)


def test_round_trip(tmp_path: Path) -> None:
    p = _profile()
    _write(tmp_path, p.to_json())
    assert prof.load_profile(tmp_path) == p
    assert json.loads(p.to_json())["schema"] == prof.SCHEMA == 1
    assert p.to_json() == _profile().to_json()  # deterministic text


def test_fill_puts_the_node_in(tmp_path: Path) -> None:
    p = _profile()
    text = p.fill(p.static_pods["/etc/kubernetes/manifests/etcd.yaml"],
                  Identity("node-a", "10.0.0.7"))
    assert text == "- --name=node-a\n- --listen-client-urls=https://10.0.0.7:2379\n"
    with pytest.raises(StateUnreadable, match="IPv4 nodes"):
        p.fill("x", Identity("node-a", "fd00::7"))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(schema=2), "schema 2 is not supported"),
    (lambda d: d.pop("schema"), "schema None is not supported"),
    (lambda d: d.update(surprise=True), "surprise"),
    (lambda d: d.pop("images"), "images"),
    (lambda d: d.update(addressFamily=5), "addressFamily 5"),
], ids=["newer-schema", "no-schema", "unknown-field", "missing-field", "bad-family"])
def test_unreadable_profiles_are_rejected_clearly(tmp_path: Path, mutate, message: str) -> None:
    data = json.loads(_profile().to_json())
    mutate(data)
    _write(tmp_path, json.dumps(data))
    with pytest.raises(StateUnreadable, match=message) as e:
        prof.load_profile(tmp_path)
    assert str(paths.PROFILE) in str(e.value) and e.value.hint


def test_missing_and_garbled(tmp_path: Path) -> None:
    with pytest.raises(StateUnreadable, match="no kubeinit profile"):
        prof.load_profile(tmp_path)
    _write(tmp_path, "{not json")
    with pytest.raises(StateUnreadable, match="not JSON"):
        prof.load_profile(tmp_path)
