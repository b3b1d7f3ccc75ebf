"""The API-object comparison (tests/apiobjects.py) treats every value as a value, and the
allow-list excuses only the fields its API entries name."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.apiobjects import allowlist, diff_objects

BASE: dict[str, Any] = {
    "kind": "DaemonSet", "metadata": {"name": "x", "namespace": "kube-system"},
    "spec": {"template": {"spec": {
        "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False}}],
        "volumes": [{"name": "v", "emptyDir": {}}], "nodeSelector": {}, "tolerations": []}}},
    "data": {"empty": ""},
}


@pytest.mark.parametrize("path", [
    ("spec", "template", "spec", "containers", 0, "securityContext",
     "allowPrivilegeEscalation"),
    ("spec", "template", "spec", "volumes", 0, "emptyDir"),
    ("spec", "template", "spec", "nodeSelector"),
    ("spec", "template", "spec", "tolerations"),
    ("data", "empty"),
], ids=["false", "empty-mapping-volume-source", "empty-mapping", "empty-list", "empty-string"])
def test_a_dropped_empty_or_false_value_is_a_difference(path: tuple[Any, ...]) -> None:
    mutated = copy.deepcopy(BASE)
    node: Any = mutated
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    (d,) = diff_objects("c", "api:DaemonSet/kube-system/x", BASE, mutated)
    assert d.field.split(".")[-1].endswith(str(path[-1]))
    assert repr(d.kubeinit) == "<absent>"
    assert not diff_objects("c", "a", BASE, BASE)


def test_list_items_and_null_count() -> None:
    a = {"l": [1, 2], "n": None}
    b = {"l": [1], "n": None}
    assert [d.field for d in diff_objects("c", "a", a, b)] == ["l[1]"]
    assert [d.field for d in diff_objects("c", "a", {"n": None}, {})] == ["n"]
    assert [d.field for d in diff_objects("c", "a", {"b": True}, {"b": 1})] == ["b"]


def test_api_entries_excuse_only_what_they_name() -> None:
    token = "api:Secret/kube-system/bootstrap-token-abcdef"
    a = {"data": {"token-secret": "1", "usage-bootstrap-signing": "dHJ1ZQ=="},
         "metadata": {"name": "bootstrap-token-abcdef"}}
    b = {"data": {"token-secret": "2", "usage-bootstrap-signing": "ZmFsc2U="},
         "metadata": {"name": "bootstrap-token-ghijkl"}}
    bad, ok = allowlist().split(diff_objects("c", token, a, b))
    assert [d.field for d in ok] == ["data.token-secret", "metadata.name"]
    assert [d.field for d in bad] == ["data.usage-bootstrap-signing"]
    # live-only entries do not excuse the same field in the as-stored comparison
    status = [*diff_objects("c", "api:Deployment/kube-system/coredns", {}, {"status": {"r": 1}}),
              *diff_objects("c", "live:Deployment/kube-system/coredns", {}, {"status": {"r": 1}})]
    bad, ok = allowlist().split(status)
    assert [d.artifact for d in bad] == ["api:Deployment/kube-system/coredns"]
    assert [d.artifact for d in ok] == ["live:Deployment/kube-system/coredns"]
