"""One session's renderings, run lazily and once per config: real kubeadm's and kubeinit's, and
the comparison of any rendered file between them."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ALL_CONFIGS, config_path
from tests.oracle import sandbox
from tests.oracle.compare import Difference, diff_facts
from tests.oracle.facts import (
    Authority,
    Facts,
    Window,
    describe_inode,
    file_facts,
    find_authorities,
    public_keys_in,
    tree_facts,
)
from tests.oracle.sandbox import Capture

# The oracle's own extra configs (tests/oracle/configs): code paths the shared configs do not
# reach (IPv6, dual-stack, ECDSA-P384, RSA-3072, custom certificatesDir and registry, extra
# volumes/envs/args, external etcd).
VARIANTS_DIR = Path(__file__).with_name("configs")
VARIANTS = sorted(p.stem for p in VARIANTS_DIR.glob("*.yaml"))
CONFIGS = [*ALL_CONFIGS, *VARIANTS]


def config_file(name: str) -> Path:
    """A config by name: tests/data/configs first, then the oracle's variants."""
    return config_path(name) if name in ALL_CONFIGS else VARIANTS_DIR / f"{name}.yaml"


# kubeadm's node-local files, relative to certificatesDir / /etc/kubernetes / /var/lib/kubelet.
# Lists from app/phases/certs/certlist.go (GetDefaultCertList), app/phases/kubeconfig
# (getKubeConfigSpecs), app/phases/controlplane + etcd, app/phases/kubelet.
CERTS = ("ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client",
         "etcd/ca", "etcd/server", "etcd/peer", "etcd/healthcheck-client",
         "apiserver-etcd-client")
KUBECONFIGS = ("admin", "super-admin", "kubelet", "controller-manager", "scheduler")
MANIFESTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBELET_FILES = ("config.yaml", "kubeadm-flags.env", "instance-config.yaml")


@dataclass
class Rendered:
    """One capture with its parsed-fact cache."""

    capture: Capture
    _facts: dict[str, Facts] = field(default_factory=dict)

    @functools.cached_property
    def window(self) -> Window:
        start, end = self.capture.window
        return Window(start, end)

    @functools.cached_property
    def authorities(self) -> list[Authority]:
        return find_authorities(self.capture.root, self.capture.layout.trees)

    @functools.cached_property
    def public_keys(self) -> dict[str, Any]:
        return public_keys_in(self.capture.root, self.capture.layout.trees)

    def exists(self, node_path: str) -> bool:
        return self.capture.path(node_path).is_file()

    def facts(self, node_path: str) -> Facts:
        if node_path not in self._facts:
            self._facts[node_path] = file_facts(
                self.capture.path(node_path), node_path, cas=self.authorities,
                window=self.window, public_keys=self.public_keys)
        return self._facts[node_path]


def cert_path(layout: sandbox.NodeLayout, name: str, ext: str) -> str:
    return f"{layout.cert_dir.rstrip('/')}/{name}.{ext}"


def phase_for(node_path: str) -> str:
    if node_path.endswith("/etcd.yaml"):
        return "etcd"
    if "/manifests/" in node_path:
        return "control-plane"
    if node_path.startswith("/var/lib/kubelet/"):
        return "kubelet-start"
    if node_path.endswith(".conf"):
        return "kubeconfig"
    return "certs"


@dataclass
class Oracle:
    kubeadm_bin: Path
    workdir: Path
    _kubeadm: dict[str, Rendered] = field(default_factory=dict)
    _kubeinit: dict[str, tuple[Capture, Rendered]] = field(default_factory=dict)

    def kubeadm(self, config: str) -> Rendered:
        if config not in self._kubeadm:
            out = self.workdir / "kubeadm" / config
            cfg = config_file(config)
            cap = sandbox.run_kubeadm(sandbox.judge_for(cfg, self.kubeadm_bin), cfg, out,
                                      name=config)
            self._kubeadm[config] = Rendered(cap)
        r = self._kubeadm[config]
        assert r.capture.ok, f"real kubeadm failed for {config}:\n{r.capture.failures()}"
        return r

    def kubeinit_local_only(self, config: str) -> Capture:
        return self._kubeinit_pair(config)[0]

    def kubeinit(self, config: str) -> Rendered:
        return self._kubeinit_pair(config)[1]

    def _kubeinit_pair(self, config: str) -> tuple[Capture, Rendered]:
        if config not in self._kubeinit:
            full, judged = sandbox.kubeinit_capture(config_file(config),
                                                    self.workdir / "kubeinit" / config,
                                                    name=config)
            self._kubeinit[config] = (full, Rendered(judged))
        return self._kubeinit[config]

    def compare_file(self, config: str, node_path: str) -> list[Difference]:
        """kubeadm's facts for `node_path` against kubeinit's. A file kubeadm does not write for
        this config (etcd files with external etcd) must be absent from kubeinit's output too."""
        expected = self.kubeadm(config)
        actual = self.kubeinit(config)
        if not expected.exists(node_path):
            assert not actual.capture.path(node_path).exists(), (
                f"kubeinit wrote {node_path}, which real kubeadm does not write for {config}")
            return []
        if not actual.exists(node_path):
            phase = phase_for(node_path)
            runs = [r for r in actual.capture.runs if r.returncode != 0]
            why = "\n".join(r.describe() for r in runs) or "(every kubeinit run exited 0)"
            raise AssertionError(f"kubeinit wrote no {node_path} (phase {phase}) for {config}:\n"
                                 f"{why}")
        return diff_facts(config, node_path, expected.facts(node_path),
                          actual.facts(node_path))

    def compare_tree(self, config: str) -> list[Difference]:
        """Files and directories with modes and owners: everything kubeadm wrote under the node
        trees against everything kubeinit wrote anywhere in its root (minus the inputs)."""
        expected = self.kubeadm(config)
        actual = self.kubeinit(config)
        trees = expected.capture.layout.trees
        a = tree_facts(expected.capture.root, trees)
        # not output: the CA-trust directories prepared as input, and the ancestors of the
        # trees that exist on the host (/etc, /var/lib: kubeadm's overlay only copied them up);
        # an ancestor kubeadm had to create (/data of dataDir /data/etcd) is compared
        inputs = {p for d in sandbox.host_ca_trust_dirs() for p in _self_and_parents(d)}
        above = {p for t in trees for p in _self_and_parents(t)[:-1] if os.path.exists(p)}
        for p in {p for t in trees for p in _self_and_parents(t)[:-1]} - above:
            if expected.capture.path(p).is_dir():
                a[p] = describe_inode(expected.capture.path(p))
        root = actual.capture.root
        b = {node: describe_inode(p) for p in sorted(root.rglob("*"))
             if (node := "/" + str(p.relative_to(root))) not in inputs | above}
        return diff_facts(config, "files", a, b)


def _self_and_parents(node_path: str) -> list[str]:
    """/a/b/c -> [/a, /a/b, /a/b/c]"""
    parts = node_path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
