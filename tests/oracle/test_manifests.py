"""Every static Pod manifest against real kubeadm's, parsed: image, command flags (each flag's
value, and their order), volumes and mounts, probes, resources, labels, annotations, security
context, priority, hostNetwork, env, the key structure and order, and the exact text."""

from __future__ import annotations

import pytest

from tests.oracle.compare import Allowlist, judge
from tests.oracle.oracle import CONFIGS, MANIFESTS, Oracle

pytestmark = [pytest.mark.real]


@pytest.mark.parametrize("name", MANIFESTS)
@pytest.mark.parametrize("config", CONFIGS)
def test_static_pod_manifest_matches_kubeadm(oracle: Oracle, allowlist: Allowlist, config: str,
                                             name: str) -> None:
    judge(allowlist, oracle.compare_file(config, f"/etc/kubernetes/manifests/{name}.yaml"))
