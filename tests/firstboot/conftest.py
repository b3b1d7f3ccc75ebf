"""Session fixtures for the API-side phases: one real local control plane brought up by
`hack/local-up` (kubeinit's whole first boot, inside a private journald), and the real
`kubeadm init --dry-run --upload-certs` for the same configuration to compare it with."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import localcluster
from tests.conftest import config_path
from tests.localcluster import LocalCluster
from tests.oracle import sandbox
from tests.oracle.kubeadm_dryrun import objects_of, parse_output

SESSION_PORT_BASE = 36000


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """kubeinit's first boot against a real control plane, left running for the session."""
    base = tmp_path_factory.mktemp("local-up")
    c = localcluster.start(base / "root", port_base=SESSION_PORT_BASE,
                           journal_scratch=base / "journal")
    try:
        assert c.ready.get("kubeinitExit") == 0, (
            f"hack/local-up did not complete first boot:\n{c.log.read_text()[-6000:]}")
        yield c
    finally:
        rc = localcluster.stop(c)
        pids = c.ready.get("pids", {})
        left = [n for n, pid in pids.items() if localcluster.alive(pid)]
        assert not left, f"local-up left {left} running"
        assert rc == 0, f"local-up exited {rc}:\n{c.log.read_text()[-3000:]}"


@dataclass(frozen=True)
class KubeadmObjects:
    """What real `kubeadm init --dry-run` would create in the API for the cluster's config."""

    objects: dict[tuple[str, str, str], dict[str, Any]]
    labels: tuple[str, ...]
    taints: tuple[str, ...]
    stdout: str

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        key = (kind, namespace, name)
        assert key in self.objects, f"kubeadm --dry-run created no {kind} {namespace}/{name}"
        return self.objects[key]

    def named(self, kind: str, pattern: str) -> list[dict[str, Any]]:
        return [o for (k, _, n), o in self.objects.items()
                if k == kind and re.fullmatch(pattern, n)]


# kubeadm reads a loopback advertise address as "pick an address of lo" (app/util/config/
# initconfiguration.go SetAPIEndpointDynamicDefaults), so it is given a documentation address
# instead. The config sets controlPlaneEndpoint, so the advertise address appears in no API
# object either tool creates: the objects stay comparable.
KUBEADM_ADVERTISE_ADDRESS = "192.0.2.10"


@pytest.fixture(scope="session")
def kubeadm_dryrun(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
                   ) -> KubeadmObjects:

    work = tmp_path_factory.mktemp("kubeadm-dryrun")
    text = cluster.config.read_text()
    addr = re.search(r"advertiseAddress: (\S+)", text)
    assert addr
    config = work / "config.yaml"
    config.write_text(text.replace(f"advertiseAddress: {addr.group(1)}",
                                   f"advertiseAddress: {KUBEADM_ADVERTISE_ADDRESS}"))
    cap = sandbox.run_kubeadm(localcluster.bin_dir() / "kubeadm", config, work / "out",
                              name="local-up", dry_run=True,
                              extra=("--skip-phases=preflight", "--upload-certs"))
    assert cap.ok, f"kubeadm init --dry-run failed:\n{cap.failures()}"
    actions, _, labels, taints = parse_output(cap.runs[0].stdout)
    return KubeadmObjects(objects=objects_of(actions), labels=labels, taints=taints,
                          stdout=cap.runs[0].stdout)


def kubeadm_for(config: Path) -> Path:
    """The real kubeadm of the config's Kubernetes minor (hack/k8s-binaries' cache; the
    previous minor's kubeadm is built by hack/test for the oracle)."""
    m = re.search(r"kubernetesVersion: (v1\.(\d+)\.\d+)", config.read_text())
    assert m, config
    minor = int(m.group(2))
    if minor == 37:
        return localcluster.bin_dir() / "kubeadm"
    path = localcluster.bin_dir().parent / {36: "v1.36.3", 35: "v1.35.4"}[minor] / "kubeadm"
    assert path.is_file(), f"{path} missing: hack/k8s-binaries --version ... --only kubeadm"
    return path


class KubeadmDryRuns:
    """Real `kubeadm init --dry-run --upload-certs` per test config, run once each."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.cache: dict[str, KubeadmObjects] = {}

    def __call__(self, name: str) -> KubeadmObjects:
        if name not in self.cache:

            kubeadm = kubeadm_for(config_path(name))
            cap = sandbox.run_kubeadm(kubeadm, config_path(name),
                                      self.work / name, name=name, dry_run=True,
                                      extra=("--skip-phases=preflight", "--upload-certs"))
            assert cap.ok, f"kubeadm init --dry-run failed for {name}:\n{cap.failures()}"
            actions, _, labels, taints = parse_output(cap.runs[0].stdout)
            self.cache[name] = KubeadmObjects(objects=objects_of(actions), labels=labels,
                                              taints=taints, stdout=cap.runs[0].stdout)
        return self.cache[name]


@pytest.fixture(scope="session")
def kubeadm_dryruns(tmp_path_factory: pytest.TempPathFactory) -> KubeadmDryRuns:
    return KubeadmDryRuns(tmp_path_factory.mktemp("kubeadm-dryruns"))
