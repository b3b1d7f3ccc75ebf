"""mark-control-plane: the labels and taints kubeadm puts on the control-plane Node.

Source: app/phases/markcontrolplane/markcontrolplane.go and app/util/apiclient/idempotency.go
(PatchNodeOnce: a strategic two-way merge patch computed from the node before and after).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubeinit.config import Taint

LABEL_CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
LABEL_EXCLUDE_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
LABELS_TO_ADD = (LABEL_CONTROL_PLANE, LABEL_EXCLUDE_LB)
LABEL_HOSTNAME = "kubernetes.io/hostname"


def taint_json(t: Taint) -> dict[str, Any]:
    d: dict[str, Any] = {"key": t.key}
    if t.value:
        d["value"] = t.value
    d["effect"] = str(t.effect)
    if t.time_added:
        d["timeAdded"] = t.time_added
    return d


def taint_string(t: Mapping[str, Any]) -> str:
    """v1.Taint.ToString: key[=value]:effect."""
    kv = t["key"] + (f"={t['value']}" if t.get("value") else "")
    return f"{kv}:{t.get('effect', '')}"


def control_plane_patch(node: Mapping[str, Any], taints: Sequence[Taint]) -> dict[str, Any]:
    """The patch markControlPlaneNode produces: both labels set to "", and the node's taints
    replaced by the configured ones followed by every existing taint not among them
    (Node.spec.taints has no patch strategy, so the list is sent whole). Empty when the node
    already carries everything."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    patch: dict[str, Any] = {}
    add = {k: "" for k in LABELS_TO_ADD if labels.get(k) != ""}
    if add:
        patch["metadata"] = {"labels": add}
    existing = list((node.get("spec") or {}).get("taints") or [])
    wanted = [taint_json(t) for t in taints]
    merged = wanted + [t for t in existing if t not in wanted]
    if merged != existing:
        patch["spec"] = {"taints": merged}
    return patch
