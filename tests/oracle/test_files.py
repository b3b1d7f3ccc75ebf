"""The set of files and directories kubeinit writes, with modes and owners, against the set
real kubeadm writes (the sandbox's overlay upper layer is kubeadm's exact write set), and the
product path `kubeinit init --local-only` itself."""

from __future__ import annotations

import pytest

from tests.oracle.compare import Allowlist, judge
from tests.oracle.oracle import CONFIGS, Oracle

pytestmark = [pytest.mark.real]


@pytest.mark.parametrize("config", CONFIGS)
def test_same_files_and_modes_as_kubeadm(oracle: Oracle, allowlist: Allowlist,
                                         config: str) -> None:
    judge(allowlist, oracle.compare_tree(config))


@pytest.mark.parametrize("config", CONFIGS)
def test_kubeinit_local_only_succeeds(oracle: Oracle, config: str) -> None:
    """The comparisons fall back to phase-by-phase runs while phases are unfinished; the
    one-process product path must work too."""
    cap = oracle.kubeinit_local_only(config)
    assert cap.ok, cap.failures()
