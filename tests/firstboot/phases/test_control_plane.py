"""The control-plane phase: one manifest per sub-phase, kubeadm's file and directory modes
(staticpod.WriteStaticPodToDisk: os.MkdirAll 0700, os.WriteFile 0600), host facts taken from
the target root, the process environment's proxy variables, and the real CLI."""

from __future__ import annotations

import datetime
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from firstboot.context import InitContext
from firstboot.phases.control_plane import PHASE
from kubeinit.config import load_config
from kubeinit.identity import Identity
from tests.conftest import REPO, config_path

COMPONENTS = {
    "apiserver": "kube-apiserver",
    "controller-manager": "kube-controller-manager",
    "scheduler": "kube-scheduler",
}


def _ctx(root: Path, config: str = "default") -> InitContext:
    return InitContext(
        config=load_config(config_path(config)),
        root=root,
        identity=Identity("cp1", "192.0.2.10"),
        start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _kubeinit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firstboot", *args],
        capture_output=True,
        check=False,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("sub", list(COMPONENTS))
def test_each_sub_phase_writes_only_its_manifest(tmp_path: Path, sub: str) -> None:
    (child,) = [p for p in PHASE.children if p.name == sub]
    assert child.run is not None
    child.run(_ctx(tmp_path))
    manifests_dir = tmp_path / "etc/kubernetes/manifests"
    assert sorted(p.name for p in manifests_dir.iterdir()) == [f"{COMPONENTS[sub]}.yaml"]
    pod = yaml.safe_load((manifests_dir / f"{COMPONENTS[sub]}.yaml").read_text())
    assert pod["metadata"]["name"] == COMPONENTS[sub]
    assert pod["spec"]["containers"][0]["command"][0] == COMPONENTS[sub]


def test_cli_writes_all_three_with_kubeadms_modes(tmp_path: Path) -> None:
    env = {**os.environ, "HTTPS_PROXY": "http://proxy.example:3128", "no_proxy": "10.0.0.0/8"}
    result = _kubeinit(
        "init",
        "phase",
        "control-plane",
        "all",
        "--root",
        str(tmp_path),
        "--config",
        str(config_path("custom-network")),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    manifests_dir = tmp_path / "etc/kubernetes/manifests"
    assert _mode(manifests_dir) == 0o700
    assert _mode(tmp_path / "etc/kubernetes") == 0o700  # os.MkdirAll: parents get 0700 too
    names = sorted(p.name for p in manifests_dir.iterdir())
    assert names == ["kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"]
    for name in names:
        assert _mode(manifests_dir / name) == 0o600
        pod = yaml.safe_load((manifests_dir / name).read_text())
        # kubeadm copies its own *_proxy variables into every control-plane container
        assert pod["spec"]["containers"][0]["env"] == [
            {"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"},
            {"name": "no_proxy", "value": "10.0.0.0/8"},
        ]
    api = yaml.safe_load((manifests_dir / "kube-apiserver.yaml").read_text())
    assert "--advertise-address=198.51.100.7" in api["spec"]["containers"][0]["command"]
    assert api["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "198.51.100.7:8443"
    }


def test_ca_trust_volumes_come_from_the_target_root_not_the_host(tmp_path: Path) -> None:
    (tmp_path / "usr/share/ca-certificates").mkdir(parents=True)
    assert PHASE.children[0].run is not None
    PHASE.children[0].run(_ctx(tmp_path))
    pod = yaml.safe_load((tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text())
    names = {v["name"] for v in pod["spec"]["volumes"]}
    assert names == {"ca-certs", "k8s-certs", "usr-share-ca-certificates"}


def test_rerun_replaces_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "etc/kubernetes/manifests/kube-scheduler.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("stale")
    path.chmod(0o644)
    (sched,) = [p for p in PHASE.children if p.name == "scheduler"]
    assert sched.run is not None
    sched.run(_ctx(tmp_path))
    assert yaml.safe_load(path.read_text())["kind"] == "Pod"
    assert _mode(path) == 0o600
