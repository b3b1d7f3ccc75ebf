"""Fixtures of the kubeadm oracle: the real kubeadm binary, one lazily-filled `Oracle` per
session (kubeadm and kubeinit each run once per config) and the allow-list.

Runtime: about 2 s of kubeadm per config for the node-local phases, 2 s per config for
`kubeadm init --dry-run`, plus kubeinit's own runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oracle import compare, sandbox
from tests.oracle.compare import Allowlist
from tests.oracle.kubeadm_dryrun import DryRunCapture, capture_dryrun
from tests.oracle.oracle import Oracle, config_file

_ALLOWLIST: list[Allowlist] = []
_ORACLES: list[Oracle] = []


@pytest.fixture(scope="session")
def kubeadm_bin() -> Path:
    """The real kubeadm of the pinned version, from hack/k8s-binaries' cache.

    Only kubeadm is needed here, so this does not wait for the whole binaries build the way
    `k8s_bin` does; a missing kubeadm is a failure that says how to build it."""
    path = sandbox.cache_dir() / "kubeadm"
    assert path.is_file() and os.access(path, os.X_OK), (
        f"{path} missing: run hack/k8s-binaries --only kubernetes")
    return path


@pytest.fixture(scope="session")
def root_user() -> None:
    assert os.geteuid() == 0, "the kubeadm oracle needs root (mount namespace + overlay)"


@pytest.fixture(scope="session")
def oracle(kubeadm_bin: Path, root_user: None,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    o = Oracle(kubeadm_bin=kubeadm_bin, workdir=tmp_path_factory.mktemp("oracle"))
    _ORACLES.append(o)
    yield o


@pytest.fixture(scope="session")
def allowlist() -> Allowlist:
    a = Allowlist.load()
    _ALLOWLIST.append(a)
    return a


class DryRuns:
    """`kubeadm init --dry-run` per config, run once each."""

    def __init__(self, kubeadm: Path, workdir: Path) -> None:
        self.kubeadm, self.workdir = kubeadm, workdir
        self._cache: dict[str, DryRunCapture] = {}

    def __call__(self, config: str) -> DryRunCapture:
        if config not in self._cache:
            cfg = config_file(config)
            self._cache[config] = capture_dryrun(sandbox.judge_for(cfg, self.kubeadm), cfg,
                                                 self.workdir / config, name=config)
        return self._cache[config]


@pytest.fixture(scope="session")
def kubeadm_dryrun(kubeadm_bin: Path, root_user: None,
                   tmp_path_factory: pytest.TempPathFactory) -> DryRuns:
    return DryRuns(kubeadm_bin, tmp_path_factory.mktemp("dryrun"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _ALLOWLIST or (not compare.SESSION_FINDINGS and not sum(_ALLOWLIST[0].used.values())):
        return
    tr = terminalreporter
    tr.section("kubeadm oracle")
    found = compare.SESSION_FINDINGS
    fields = sorted({(d.artifact.rsplit("/", 1)[-1], d.field) for d in found})
    tr.write_line(f"{len(found)} unexplained difference(s) in {len(fields)} distinct "
                  f"(file, field) pair(s)")
    used = _ALLOWLIST[0].used
    for e in _ALLOWLIST[0].entries:
        tr.write_line(f"  allow-list {e.id}: {used.get(e.id, 0)} difference(s) excused")
