"""kubelet-start under other hostnames: kubeadm passes --hostname-override only when the node name
differs from the lower-cased hostname (app/phases/kubelet/flags.go:44 GetNodeNameAndHostname,
component-helpers nodeutil.GetHostname). Both renderers run in a private UTS namespace that
carries the hostname; the kubelet files must match."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import config_path
from tests.oracle import sandbox
from tests.oracle.compare import Allowlist, diff_facts, judge
from tests.oracle.facts import kubelet_flags_env_facts, yaml_facts

pytestmark = [pytest.mark.real]

CASES = [  # (config, hostname)
    ("default", "cp1"),  # node name == hostname: no override
    ("default", "CP1"),  # hostnames are compared lower-cased
    ("extra-sans-args", "cp-extra"),  # kubeletExtraArgs only
    ("custom-network", "node-a"),  # a short hostname is not the FQDN node name
]


@pytest.mark.parametrize(("config", "hostname"), CASES, ids=[f"{c}-{h}" for c, h in CASES])
def test_kubelet_files_match_kubeadm_under_hostname(kubeadm_bin: Path, root_user: None,
                                                    allowlist: Allowlist, tmp_path: Path,
                                                    config: str, hostname: str) -> None:
    cfg = config_path(config)
    want = sandbox.run_kubeadm(kubeadm_bin, cfg, tmp_path / "kubeadm", name=config,
                               hostname=hostname)
    assert want.ok, want.failures()
    got = sandbox.run_kubeinit_local(cfg, tmp_path / "kubeinit", name=config, hostname=hostname)
    assert got.ok, got.failures()
    diffs = []
    for name, parse in (("kubeadm-flags.env", kubelet_flags_env_facts),
                        ("config.yaml", yaml_facts), ("instance-config.yaml", yaml_facts)):
        node = f"/var/lib/kubelet/{name}"
        diffs += diff_facts(f"{config}@{hostname}", node, parse(want.path(node).read_bytes()),
                            parse(got.path(node).read_bytes()))
    judge(allowlist, diffs)


def test_override_depends_on_hostname(kubeadm_bin: Path, root_user: None,
                                      tmp_path: Path) -> None:
    """The judge's own behaviour, so the cases above are not vacuous."""
    cfg = config_path("default")
    same = sandbox.run_kubeadm(kubeadm_bin, cfg, tmp_path / "a", name="default", hostname="CP1")
    other = sandbox.run_kubeadm(kubeadm_bin, cfg, tmp_path / "b", name="default",
                                hostname="elsewhere")
    env = "/var/lib/kubelet/kubeadm-flags.env"
    assert same.path(env).read_text() == 'KUBELET_KUBEADM_ARGS=""\n'
    assert other.path(env).read_text() == 'KUBELET_KUBEADM_ARGS="--hostname-override=cp1"\n'
