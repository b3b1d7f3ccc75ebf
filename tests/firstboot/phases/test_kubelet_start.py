"""The kubelet-start phase: kubeadm's three files with their modes (phases/kubelet: os.MkdirAll
0700, os.WriteFile 0644), the note when services are not managed, and the systemctl sequence
of cmd/phases/init/kubelet.go when they are.

Where services are managed, `systemctl` is a FAKE: a script on PATH that records its
arguments. A real systemd cannot run as PID 1 in this test environment; the booted-image tests
exercise the real one."""

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
from firstboot.phases.kubelet_start import PHASE
from kubeinit.config import load_config
from kubeinit.errors import PhaseFailed
from kubeinit.identity import Identity
from tests.conftest import REPO, config_path

FILES = ("kubeadm-flags.env", "instance-config.yaml", "config.yaml")


def _ctx(root: Path, *, manage: bool = False) -> InitContext:
    return InitContext(
        config=load_config(config_path("default")),
        root=root,
        identity=Identity("cp1", "192.0.2.10"),
        start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        manage_services=manage,
    )


def _run(ctx: InitContext) -> None:
    assert PHASE.run is not None
    PHASE.run(ctx)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FAKE systemctl on PATH: logs argv; `is-active systemd-resolved` answers from a file;
    `restart` fails when told to."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    log = tmp_path / "systemctl.log"
    script = bindir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'if [ "$1" = is-active ]; then cat ' + str(tmp_path / "resolved-state") + "; exit 3; fi\n"
        'if [ "$1" = restart ] && [ -e ' + str(tmp_path / "fail-restart") + " ]; then\n"
        '  echo "Unit kubelet.service not found." >&2; exit 5; fi\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    (tmp_path / "resolved-state").write_text("inactive\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


def test_writes_kubeadms_files_and_notes_the_kubelet_was_not_started(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path / "root")
    _run(ctx)
    kubelet_dir = tmp_path / "root/var/lib/kubelet"
    assert _mode(kubelet_dir) == 0o700
    assert sorted(p.name for p in kubelet_dir.iterdir()) == sorted(FILES)
    for name in FILES:
        assert _mode(kubelet_dir / name) == 0o644
    assert (kubelet_dir / "instance-config.yaml").read_text() == (
        'containerRuntimeEndpoint: "unix:///var/run/containerd/containerd.sock"\n'
    )
    config = yaml.safe_load((kubelet_dir / "config.yaml").read_text())
    assert config["kind"] == "KubeletConfiguration"
    assert config["containerRuntimeEndpoint"] == "unix:///var/run/containerd/containerd.sock"
    assert "resolvConf" not in config  # no systemd-resolved enabled under this root
    assert any("skipped starting the kubelet" in note for note in ctx.notes)


def test_resolv_conf_when_resolved_is_enabled_in_the_target(tmp_path: Path) -> None:
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "systemd-resolved.service").symlink_to(
        "/usr/lib/systemd/system/systemd-resolved.service"
    )
    _run(_ctx(tmp_path))
    config = yaml.safe_load((tmp_path / "var/lib/kubelet/config.yaml").read_text())
    assert config["resolvConf"] == "/run/systemd/resolve/resolv.conf"


def test_managed_services_stop_write_reload_restart(tmp_path: Path, fake_systemctl: Path) -> None:
    """TryStopKubelet, the files, then TryStartKubelet: daemon-reload and restart. The live
    systemd-resolved question is kubeadm's `systemctl is-active systemd-resolved`."""
    (tmp_path / "resolved-state").write_text("active\n")
    root = tmp_path / "root"
    ctx = _ctx(root, manage=True)
    _run(ctx)
    assert fake_systemctl.read_text().splitlines() == [
        "is-active systemd-resolved",
        "stop kubelet",
        "daemon-reload",
        "restart kubelet",
    ]
    config = yaml.safe_load((root / "var/lib/kubelet/config.yaml").read_text())
    assert config["resolvConf"] == "/run/systemd/resolve/resolv.conf"
    assert not ctx.notes


def test_managed_services_inactive_resolved_means_no_resolv_conf(
    tmp_path: Path, fake_systemctl: Path
) -> None:
    root = tmp_path / "root"
    _run(_ctx(root, manage=True))
    assert "resolvConf" not in yaml.safe_load((root / "var/lib/kubelet/config.yaml").read_text())


def test_a_kubelet_that_cannot_start_fails_the_phase(tmp_path: Path, fake_systemctl: Path) -> None:
    (tmp_path / "fail-restart").write_text("")
    with pytest.raises(PhaseFailed, match="could not start the kubelet") as err:
        _run(_ctx(tmp_path / "root", manage=True))
    assert "journalctl -u kubelet" in err.value.hint
    assert (tmp_path / "root/var/lib/kubelet/config.yaml").is_file()  # written before


def test_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "firstboot",
            "init",
            "phase",
            "kubelet-start",
            "--root",
            str(tmp_path),
            "--config",
            str(config_path("extra-sans-args")),
        ],
        capture_output=True,
        check=False,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    flags = (tmp_path / "var/lib/kubelet/kubeadm-flags.env").read_text()
    assert flags.startswith('KUBELET_KUBEADM_ARGS="')
    assert flags.endswith('--node-labels=tier=control --v=2"\n')
    assert "skipped starting the kubelet" in result.stdout + result.stderr
