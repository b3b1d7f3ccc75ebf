"""/var/lib/kubelet/{config.yaml, kubeadm-flags.env, instance-config.yaml} against real
kubeadm's: config.yaml fully parsed (every field, key order) and textually, the flags file's
format and arguments, the instance config."""

from __future__ import annotations

import pytest

from tests.oracle.compare import Allowlist, judge
from tests.oracle.oracle import CONFIGS, KUBELET_FILES, Oracle

pytestmark = [pytest.mark.real]


@pytest.mark.parametrize("name", KUBELET_FILES)
@pytest.mark.parametrize("config", CONFIGS)
def test_kubelet_file_matches_kubeadm(oracle: Oracle, allowlist: Allowlist, config: str,
                                      name: str) -> None:
    judge(allowlist, oracle.compare_file(config, f"/var/lib/kubelet/{name}"))
