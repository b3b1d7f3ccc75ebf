"""The API-side reference, captured from the real kubeadm at test time (never hand-copied).

`kubeadm init --dry-run --config F --skip-phases=preflight` runs every init phase against a fake
clientset (app/cmd/init.go:541 getDryRunClient) that prints each request
(app/util/apiclient/dryrun.go:294 LogAction):

    [dryrun] Would perform action CREATE on resource "configmaps" in API group "core/v1"
    [dryrun] Resource name "cp1", namespace ""          (actions that carry a name)
    [dryrun] Attached object:                           (actions that carry an object)
    <the object as YAML>

and writes the node files into /etc/kubernetes/tmp/kubeadm-init-dryrun<N>/ (app/constants
GetDryRunDir), printing some of them as `[dryrun] Would write file "<node path>" with content:`.

What makes it work on a bare machine (no container runtime, no kubelet, no systemd):
- `--skip-phases=preflight`: preflight is the only phase that needs the CRI socket, a kubelet
  binary, ip_forward=1 and free ports 2379/2380/6443/10250/... (it fails with ERROR CRI,
  ContainerRuntimeVersion, SystemVerification, KubeletVersion, FileContent--proc-sys-net-ipv4-
  ip_forward, Port-*). Every later phase is dry-run aware: wait-control-plane uses a no-op
  waiter, kubelet-start does not touch services in dry-run, image pulls are skipped.
- the empty network namespace of hack/kubeadm-oracle: the fake client first tries each GET/LIST
  against the real endpoint of admin.conf (dryrun.go:232 handleGetAction); without a network
  those fail at once and the fake tracker answers (else each waits for a TCP timeout).

Limits of the capture (kubeadm's, not ours):
- PATCHes of the Node are printed as a canned Node (dryrun.go:355 PatchNodeReactor prints
  getNode(name), not the patch); the labels and taints mark-control-plane would add are taken
  from its own log lines instead.
- `kubeadm:cluster-admins` (ClusterRoleBinding) is never shown: it is created by
  EnsureAdminClusterRoleBinding, which only the real client path calls (app/cmd/init.go:563).
- The bootstrap token is random per run; its Secret is keyed as `bootstrap-token-<id>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.oracle import sandbox
from tests.oracle.sandbox import Capture

ObjectKey = tuple[str, str, str]  # (kind, namespace or "", name)
DRY_RUN_ARGS = ("--skip-phases=preflight",)

_ACTION = re.compile(r'\[dryrun\] Would perform action (\w+) on resource "([^"]+)" '
                     r'in API group "([^"]*)/([^"]*)"\Z')
_NAME = re.compile(r'\[dryrun\] Resource name "([^"]*)", namespace "([^"]*)"\Z')
_FILE = re.compile(r'\[dryrun\] Would write file "([^"]+)" with content:\Z')
_LOG_LINE = re.compile(r"\[[a-z-]+\] ")
_LABELS = re.compile(r"\[mark-control-plane\] Marking the node (\S+) as control-plane by adding "
                     r"the labels: \[(.*)\]\Z")
_TAINTS = re.compile(r"\[mark-control-plane\] Marking the node (\S+) as control-plane by adding "
                     r"the taints \[(.*)\]\Z")


@dataclass(frozen=True)
class ApiAction:
    verb: str  # CREATE, GET, LIST, PATCH, UPDATE, DELETE
    resource: str  # plural resource, e.g. "configmaps"
    group: str  # "core" for the legacy group, as kubeadm prints it
    version: str
    name: str | None
    namespace: str | None
    obj: dict[str, Any] | None


@dataclass(frozen=True)
class DryRunCapture:
    capture: Capture
    actions: tuple[ApiAction, ...]
    # Every object kubeadm would create or update, by (kind, namespace, name); last write wins.
    objects: dict[ObjectKey, dict[str, Any]]
    # "[dryrun] Would write file" blocks: node path -> content
    would_write: dict[str, str]
    node_labels: tuple[str, ...]
    node_taints: tuple[str, ...]
    # node path of the directory kubeadm wrote the node files into (inside capture.root)
    dry_run_dir: str

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        key = (kind, namespace, name)
        assert key in self.objects, f"kubeadm --dry-run created no {kind} {namespace}/{name}"
        return self.objects[key]

    def keys(self, *, normalize_token: bool = True) -> set[ObjectKey]:
        """The objects' keys; the random bootstrap token id becomes `<id>`."""
        out = set()
        for kind, ns, name in self.objects:
            token = normalize_token and kind == "Secret" and name.startswith("bootstrap-token-")
            out.add((kind, ns, "bootstrap-token-<id>" if token else name))
        return out


def parse_output(stdout: str) -> tuple[list[ApiAction], dict[str, str], tuple[str, ...],
                                        tuple[str, ...]]:
    """(actions, would-write files, node labels, node taints) from kubeadm's dry-run stdout."""
    lines = stdout.splitlines()
    actions: list[ApiAction] = []
    files: dict[str, str] = {}
    labels: tuple[str, ...] = ()
    taints: tuple[str, ...] = ()

    def block(i: int) -> tuple[str, int]:
        """Lines from i up to the next kubeadm log line."""
        j = i
        while j < len(lines) and not _LOG_LINE.match(lines[j]):
            j += 1
        return "\n".join(lines[i:j]) + "\n", j

    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _ACTION.match(line):
            verb, resource, group, version = m.groups()
            name = namespace = None
            obj = None
            i += 1
            if i < len(lines) and (n := _NAME.match(lines[i])):
                name, namespace = n.groups()
                i += 1
            if i < len(lines) and lines[i] == "[dryrun] Attached object:":
                text, i = block(i + 1)
                obj = yaml.safe_load(text)
            actions.append(ApiAction(verb, resource, group, version, name, namespace, obj))
            continue
        if m := _FILE.match(line):
            files[m.group(1)], i = block(i + 1)
            continue
        if m := _LABELS.match(line):
            labels = tuple(m.group(2).split())
        elif m := _TAINTS.match(line):
            taints = tuple(m.group(2).split())
        i += 1
    return actions, files, labels, taints


def objects_of(actions: list[ApiAction]) -> dict[ObjectKey, dict[str, Any]]:
    out: dict[ObjectKey, dict[str, Any]] = {}
    for a in actions:
        if a.verb in ("CREATE", "UPDATE") and a.obj is not None:
            meta = a.obj.get("metadata") or {}
            out[(a.obj["kind"], meta.get("namespace") or "", meta["name"])] = a.obj
    return out


def capture_dryrun(kubeadm: Path, config: Path, out: Path, *, name: str) -> DryRunCapture:
    """Run the real `kubeadm init --dry-run` for `config` in the oracle sandbox and parse it."""
    cap = sandbox.run_kubeadm(kubeadm, config, out, name=name, dry_run=True, extra=DRY_RUN_ARGS)
    assert cap.ok, f"kubeadm init --dry-run failed for {name}:\n{cap.failures()}"
    actions, files, labels, taints = parse_output(cap.runs[0].stdout)
    tmp = cap.path("/etc/kubernetes/tmp")
    dirs = sorted(p for p in tmp.glob("kubeadm-init-dryrun*") if p.is_dir())
    assert len(dirs) == 1, f"expected one dry-run directory under {tmp}, found {dirs}"
    return DryRunCapture(capture=cap, actions=tuple(actions), objects=objects_of(actions),
                         would_write=files, node_labels=labels, node_taints=taints,
                         dry_run_dir="/" + str(dirs[0].relative_to(cap.root)))
