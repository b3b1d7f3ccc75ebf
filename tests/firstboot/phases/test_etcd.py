"""The etcd phase: kubeadm's files and modes (etcdutil.CreateDataDirectory 0700,
staticpod.WriteStaticPodToDisk 0600 in a 0700 directory), nothing for external etcd, and a
REAL etcd started with the command line of the generated etcd.yaml and kubeinit's own
certificates (from `kubeinit init phase certs`)."""

from __future__ import annotations

import datetime
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from firstboot.context import InitContext
from firstboot.phases.etcd import PHASE
from kubeinit.config import load_config, parse_config
from kubeinit.identity import Identity
from kubeinit.versions import default_version
from tests.conftest import REPO, config_path


def _ctx(root: Path, config: str = "default") -> InitContext:
    return InitContext(
        config=load_config(config_path(config)),
        root=root,
        identity=Identity("cp1", "192.0.2.10"),
        start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )


def _run_local(ctx: InitContext) -> None:
    (local,) = PHASE.children
    assert local.name == "local" and local.run is not None
    local.run(ctx)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_the_manifest_and_the_data_dir_with_kubeadms_modes(tmp_path: Path) -> None:
    _run_local(_ctx(tmp_path, "extra-sans-args"))  # etcd.local.dataDir: /data/etcd
    manifest = tmp_path / "etc/kubernetes/manifests/etcd.yaml"
    assert _mode(manifest) == 0o600
    assert _mode(manifest.parent) == 0o700
    assert _mode(tmp_path / "data/etcd") == 0o700
    assert _mode(tmp_path / "data") == 0o700  # os.MkdirAll gives new parents the same mode
    pod = yaml.safe_load(manifest.read_text())
    assert "--data-dir=/data/etcd" in pod["spec"]["containers"][0]["command"]


def test_external_etcd_writes_nothing(tmp_path: Path) -> None:
    text = config_path("default").read_text() + (
        "etcd:\n  external:\n    endpoints: [https://10.0.0.1:2379]\n"
    )
    ctx = InitContext(
        config=parse_config(text),
        root=tmp_path,
        identity=Identity("cp1", "192.0.2.10"),
        start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )
    _run_local(ctx)
    assert list(tmp_path.iterdir()) == []
    assert ctx.notes == ["external etcd: no local etcd manifest to write"]


# --- a real etcd ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtcdBinaries:
    etcd: Path
    etcdctl: Path
    version: tuple[int, int]


def _cache_dir() -> Path:
    """hack/k8s-binaries' output directory for the pinned version (the script's rule)."""
    base = os.environ.get("KUBEINIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubeinit"
    )
    return Path(base) / "binaries" / default_version()


@pytest.fixture(scope="module")
def etcd_binaries() -> EtcdBinaries:
    """The etcd that hack/k8s-binaries built for the pinned version (3.7, what the manifest is
    for), else Debian's etcd-server/etcd-client 3.4. Neither is a failure, not a skip."""
    for directory in (_cache_dir(), Path("/usr/bin")):
        etcd, etcdctl = directory / "etcd", directory / "etcdctl"
        if etcd.is_file() and etcdctl.is_file():
            out = subprocess.run(
                [str(etcd), "--version"], capture_output=True, text=True, check=True, timeout=30
            ).stdout
            major, minor = out.split("etcd Version:")[1].split()[0].split(".")[:2]
            return EtcdBinaries(etcd, etcdctl, (int(major), int(minor)))
    pytest.fail(
        "no etcd: run hack/k8s-binaries --only etcd, or install etcd-server and etcd-client"
    )


# etcd before 3.6 (Debian's 3.4) has neither flag kubeadm v1.36+ passes; it has the
# --experimental-* forms that kubeadm v1.35 still used for etcd 3.5 (phases/etcd/local.go).
LEGACY_FLAGS = {
    "--feature-gates=InitialCorruptCheck=true": "--experimental-initial-corrupt-check=true",
    "--watch-progress-notify-interval=5s": "--experimental-watch-progress-notify-interval=5s",
}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _kubeinit(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "firstboot", *args],
        capture_output=True,
        check=False,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass(frozen=True)
class RunningEtcd:
    root: Path
    client_url: str
    metrics_url: str
    binaries: EtcdBinaries
    log: Path

    def pki(self, name: str) -> str:
        return str(self.root / "etc/kubernetes/pki" / name)

    def etcdctl(self, *args: str, cert: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [
            str(self.binaries.etcdctl),
            f"--endpoints={self.client_url}",
            f"--cacert={self.pki('etcd/ca.crt')}",
            "--dial-timeout=3s",
            "--command-timeout=5s",
        ]
        if cert:
            argv += [f"--cert={self.pki(cert + '.crt')}", f"--key={self.pki(cert + '.key')}"]
        env = {**os.environ, "ETCDCTL_API": "3"}
        return subprocess.run(
            [*argv, *args], capture_output=True, check=False, text=True, env=env, timeout=30
        )


def _etcd_argv(
    root: Path, command: list[str], binaries: EtcdBinaries, data_dir: Path, ports: dict[str, int]
) -> list[str]:
    """The manifest's command with node paths rebased into the test root and the addresses
    moved to 127.0.0.1 and free ports; every other flag as the manifest has it."""
    client = f"https://127.0.0.1:{ports['client']}"
    peer = f"https://127.0.0.1:{ports['peer']}"
    rewrite = {
        "listen-client-urls": client,
        "advertise-client-urls": client,
        "listen-peer-urls": peer,
        "initial-advertise-peer-urls": peer,
        "initial-cluster": f"cp1={peer}",
        "listen-metrics-urls": f"http://127.0.0.1:{ports['metrics']}",
        "data-dir": str(data_dir),
    }
    rebase = (
        "cert-file",
        "key-file",
        "trusted-ca-file",
        "peer-cert-file",
        "peer-key-file",
        "peer-trusted-ca-file",
    )
    argv = [str(binaries.etcd)]
    for manifest_arg in command[1:]:
        arg = manifest_arg
        if binaries.version < (3, 6):
            arg = LEGACY_FLAGS.get(arg, arg)
        name, _, value = arg[2:].partition("=")
        if name in rewrite:
            arg = f"--{name}={rewrite[name]}"
        elif name in rebase:
            arg = f"--{name}={root}{value}"
        argv.append(arg)
    return argv


@pytest.fixture
def running_etcd(tmp_path: Path, etcd_binaries: EtcdBinaries) -> Iterator[RunningEtcd]:
    root = tmp_path / "root"
    config = str(config_path("default"))
    _kubeinit("init", "phase", "certs", "--root", str(root), "--config", config)
    _kubeinit("init", "phase", "etcd", "local", "--root", str(root), "--config", config)
    pod = yaml.safe_load((root / "etc/kubernetes/manifests/etcd.yaml").read_text())
    command = pod["spec"]["containers"][0]["command"]
    assert command[0] == "etcd"
    # what is about to be rewritten is kubeadm's (phases/etcd/local.go getEtcdCommand)
    assert "--listen-client-urls=https://127.0.0.1:2379,https://192.0.2.10:2379" in command
    assert "--client-cert-auth=true" in command and "--peer-client-cert-auth=true" in command
    ports = dict(zip(("client", "peer", "metrics"), _free_ports(3), strict=True))
    data_dir = root / "var/lib/etcd"  # created 0700 by the phase, as etcd insists
    argv = _etcd_argv(root, command, etcd_binaries, data_dir, ports)
    log = tmp_path / "etcd.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield RunningEtcd(
            root,
            f"https://127.0.0.1:{ports['client']}",
            f"http://127.0.0.1:{ports['metrics']}",
            etcd_binaries,
            log,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_healthy(etcd: RunningEtcd) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 30
    while True:
        result = etcd.etcdctl("endpoint", "health", cert="etcd/healthcheck-client")
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.real
@pytest.mark.slow
def test_real_etcd_runs_from_the_manifest_with_kubeinits_certificates(
    running_etcd: RunningEtcd,
) -> None:
    health = _wait_healthy(running_etcd)
    assert health.returncode == 0, health.stderr + running_etcd.log.read_text()[-3000:]
    assert "is healthy" in health.stdout + health.stderr

    # --client-cert-auth=true: a client with no certificate is refused
    anonymous = running_etcd.etcdctl("endpoint", "health")
    assert anonymous.returncode != 0
    assert "unhealthy" in anonymous.stdout + anonymous.stderr or ("certificate" in anonymous.stderr)

    # the API server's etcd client certificate can read and write
    put = running_etcd.etcdctl("put", "/registry/kubeinit-test", "ok", cert="apiserver-etcd-client")
    assert put.returncode == 0, put.stderr
    get = running_etcd.etcdctl(
        "get", "/registry/kubeinit-test", "--print-value-only", cert="apiserver-etcd-client"
    )
    assert get.stdout.strip() == "ok"

    if running_etcd.binaries.version >= (3, 6):
        # the manifest's probes: /livez and /readyz on the plain-HTTP metrics listener
        for path in ("/livez", "/readyz"):
            with urllib.request.urlopen(running_etcd.metrics_url + path, timeout=5) as resp:
                assert resp.status == 200
