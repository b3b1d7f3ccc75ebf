"""Every /etc/kubernetes/*.conf against real kubeadm's: clusters, users, contexts,
current-context, server URLs, the embedded CA and client certificate (subject, issuer chain,
usages, validity) and key, and the YAML key structure and order."""

from __future__ import annotations

import pytest

from tests.oracle.compare import Allowlist, judge
from tests.oracle.oracle import CONFIGS, KUBECONFIGS, Oracle

pytestmark = [pytest.mark.real]


@pytest.mark.parametrize("name", KUBECONFIGS)
@pytest.mark.parametrize("config", CONFIGS)
def test_kubeconfig_matches_kubeadm(oracle: Oracle, allowlist: Allowlist, config: str,
                                    name: str) -> None:
    judge(allowlist, oracle.compare_file(config, f"/etc/kubernetes/{name}.conf"))
