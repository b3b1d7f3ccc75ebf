"""Shared fixtures. Real components come from the project's own tools: `hack/k8s-binaries`
(kubeadm, kubectl, kube-apiserver, etcd, ... built from Go modules, cached by version) and
Debian packages that `hack/install-deps` installs. A missing component is a test failure,
never a skip: CI installs everything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "tests" / "data" / "configs"


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    """Directory with the real Kubernetes binaries of the pinned default version."""
    out = subprocess.run([str(REPO / "hack" / "k8s-binaries")], check=True,
                         capture_output=True, text=True, timeout=5400)
    path = Path(out.stdout.strip().splitlines()[-1])
    for name in ("kubeadm", "kubectl", "kube-apiserver", "etcd"):
        assert (path / name).is_file(), f"{name} missing from {path}"
    return path


@pytest.fixture(scope="session")
def tool():
    """Path of a required host tool; fails (does not skip) when it is missing."""
    def find(name: str) -> str:
        found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        assert found, f"{name} is not installed: run hack/install-deps"
        return found
    return find


def config_path(name: str) -> Path:
    return CONFIGS / f"{name}.yaml"


ALL_CONFIGS = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
