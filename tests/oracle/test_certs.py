"""Every certificate and key under certificatesDir against real kubeadm's: subject, issuer and
a verified chain, SANs in order, key usage, extended key usage, basic constraints, validity
relative to the run, key algorithm and size, SubjectKeyId/AuthorityKeyId, PEM block types."""

from __future__ import annotations

import pytest

from tests.oracle.compare import Allowlist, judge
from tests.oracle.oracle import CERTS, CONFIGS, Oracle, cert_path

pytestmark = [pytest.mark.real]


@pytest.mark.parametrize("name", CERTS)
@pytest.mark.parametrize("config", CONFIGS)
def test_certificate_matches_kubeadm(oracle: Oracle, allowlist: Allowlist, config: str,
                                     name: str) -> None:
    layout = oracle.kubeadm(config).capture.layout
    judge(allowlist, oracle.compare_file(config, cert_path(layout, name, "crt")))


@pytest.mark.parametrize("name", CERTS)
@pytest.mark.parametrize("config", CONFIGS)
def test_private_key_matches_kubeadm(oracle: Oracle, allowlist: Allowlist, config: str,
                                     name: str) -> None:
    layout = oracle.kubeadm(config).capture.layout
    judge(allowlist, oracle.compare_file(config, cert_path(layout, name, "key")))


@pytest.mark.parametrize("ext", ["key", "pub"])
@pytest.mark.parametrize("config", CONFIGS)
def test_service_account_key_pair_matches_kubeadm(oracle: Oracle, allowlist: Allowlist,
                                                  config: str, ext: str) -> None:
    layout = oracle.kubeadm(config).capture.layout
    judge(allowlist, oracle.compare_file(config, cert_path(layout, "sa", ext)))


@pytest.mark.parametrize("config", CONFIGS)
def test_kubeadm_certificates_all_chain_and_pair(oracle: Oracle, config: str) -> None:
    """The fact extraction works on the judge's own output: every certificate verifies against
    its issuer and every key pairs with its certificate (else comparisons would be vacuous)."""
    r = oracle.kubeadm(config)
    layout = r.capture.layout
    written = [n for n in CERTS if r.exists(cert_path(layout, n, "crt"))]
    assert len(written) >= 5, written  # the etcd ones are absent only with external etcd
    for name in written:
        crt = r.facts(cert_path(layout, name, "crt"))
        assert crt["chain"] == "self-signed" or crt["chain"].startswith("signed by "), name
        key = r.facts(cert_path(layout, name, "key"))
        assert key["pairs_with"] == [cert_path(layout, name, "crt")], name
    assert r.facts(cert_path(layout, "sa", "key"))["pairs_with"] == [
        cert_path(layout, "sa", "pub")]
