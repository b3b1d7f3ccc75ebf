"""mark-control-plane: label and taint this node as a control-plane node
(app/cmd/phases/init/markcontrolplane.go, app/phases/markcontrolplane).

Like kubeadm's PatchNode, it waits (timeouts.kubernetesAPICall) for the kubelet to register the
Node with its `kubernetes.io/hostname` label, then sends one strategic-merge patch.
"""

from __future__ import annotations

from typing import Any

from firstboot.apiclient import object_path
from firstboot.context import InitContext
from firstboot.phase import Phase
from kubeinit.api.mark import (
    LABEL_HOSTNAME,
    LABELS_TO_ADD,
    control_plane_patch,
    taint_json,
    taint_string,
)
from kubeinit.errors import PhaseFailed


def run(ctx: InitContext) -> None:
    client = ctx.client()
    name = ctx.identity.node_name
    taints = ctx.config.taints
    node: dict[str, Any] = {}

    def registered() -> bool:
        current = client.get(object_path("Node", name))
        if current is None or LABEL_HOSTNAME not in (current["metadata"].get("labels") or {}):
            return False
        node.update(current)
        return True

    try:
        client.poll(f"Node {name} was not registered", registered, ctx.api_timeout)
    except PhaseFailed as e:
        raise PhaseFailed(
            e.message,
            hint="the kubelet registers the Node: check `journalctl -u"
            " kubelet` and that nodeRegistration.name matches the kubelet's node"
            " name",
        ) from None
    patch = control_plane_patch(node, taints)

    def apply() -> bool:
        if patch:
            client.patch("Node", name, patch)
        return True

    client.poll(f"cannot patch Node {name}", apply, ctx.api_timeout)
    shown = [taint_string(taint_json(t)) for t in taints]
    ctx.notes.append(
        f"labels {', '.join(LABELS_TO_ADD)}"
        + (f"; taints {', '.join(shown)}" if shown else "")
        + ("" if patch else " (already set)")
    )


PHASE = Phase(
    name="mark-control-plane", summary="Mark a node as a control-plane", run=run, needs_api=True
)
