"""Running the two renderers: real kubeadm (through hack/kubeadm-oracle) and kubeinit.

Both get the same config file, a clean environment (no HTTP(S)_PROXY: kubeadm copies those into
the static Pods), umask 022 and the same host facts:

- kubeadm runs chrooted into a copy-on-write overlay of this host, so its conditional CA-trust
  volumes (app/phases/controlplane/volumes.go:41, `os.Stat` of /etc/pki/ca-trust,
  /etc/pki/tls/certs, /etc/ca-certificates, /usr/share/ca-certificates,
  /usr/local/share/ca-certificates) follow the host's directories;
- kubeinit looks for those directories under its --root, so `prepare_kubeinit_root` creates
  exactly the ones that exist on this host (and nothing else) before kubeinit runs. They are
  inputs, not output, and are left out of the comparison;
- both see the same hostname (kubeadm-flags.env gets --hostname-override when the node name
  differs from it, app/phases/kubelet/flags.go:91);
- neither sees an init system: the oracle masks systemctl, kubeinit only manages services when
  --root is / (firstboot/cli.py). So kubeadm's systemd-resolved probe cannot add resolvConf.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

REPO = Path(__file__).resolve().parents[2]
ORACLE_SCRIPT = REPO / "hack" / "kubeadm-oracle"
KUBEADM_VERSION = "v1.37.2"
# The venv's console script: the same entry point an operator runs.
KUBEINIT = Path(sys.executable).parent / "kubeinit"

CA_TRUST_DIRS = ("/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/ca-certificates",
                 "/usr/share/ca-certificates", "/usr/local/share/ca-certificates")
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME": "/root", "LANG": "C.UTF-8"}
# The node-local phases, in kubeadm's order (app/cmd/init.go AppendPhase calls).
LOCAL_PHASES = (("certs",), ("kubeconfig",), ("etcd",), ("control-plane",), ("kubelet-start",))
TIMEOUT = 300


def cache_dir(version: str = KUBEADM_VERSION) -> Path:
    """hack/k8s-binaries' output directory for a version (same rule as the script)."""
    base = os.environ.get("KUBEINIT_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubeinit")
    return Path(base) / "binaries" / version


def kubernetes_version(config: Path) -> str:
    for doc in yaml.safe_load_all(config.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "ClusterConfiguration":
            return str(doc.get("kubernetesVersion") or KUBEADM_VERSION)
    return KUBEADM_VERSION


def judge_for(config: Path, default: Path) -> Path:
    """The kubeadm that judges `config`: the one of the config's own Kubernetes version when
    that is another pinned release (kubeinit's version table models "kubeadm vX deploying vX",
    kubeinit/versions.py), else `default` (v1.37.2). Missing is a failure with the command that
    builds it, never a silent fallback."""
    version = kubernetes_version(config)
    if version == KUBEADM_VERSION:
        return default
    path = cache_dir(version) / "kubeadm"
    assert path.is_file(), (
        f"{config.name} targets {version}: its judge is kubeadm {version}, missing at {path};"
        f" build it with: hack/k8s-binaries --version {version} --only kubeadm")
    return path


@dataclass(frozen=True)
class NodeLayout:
    """Where a config puts its node-local output (kubeadm constants + the config's overrides)."""

    cert_dir: str
    data_dir: str

    @property
    def trees(self) -> tuple[str, ...]:
        """The node paths whose whole content is compared."""
        paths = {p.rstrip("/") or "/" for p in
                 ("/etc/kubernetes", "/var/lib/kubelet", self.cert_dir, self.data_dir)}
        return tuple(sorted(p for p in paths
                            if not any(p.startswith(q + "/") for q in paths if q != p)))


def layout_of(config: Path) -> NodeLayout:
    cert_dir, data_dir = "/etc/kubernetes/pki", "/var/lib/etcd"
    for doc in yaml.safe_load_all(config.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "ClusterConfiguration":
            cert_dir = doc.get("certificatesDir") or cert_dir
            local = (doc.get("etcd") or {}).get("local") or {}
            data_dir = local.get("dataDir") or data_dir
    return NodeLayout(cert_dir=cert_dir, data_dir=data_dir)


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    start: datetime.datetime
    end: datetime.datetime
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        tail = "\n".join((self.stderr.strip() or self.stdout.strip()).splitlines()[-8:])
        return f"`{' '.join(self.argv)}` exited {self.returncode}:\n{tail}"


@dataclass(frozen=True)
class Capture:
    """What one renderer wrote for one config: files under `root` at their node paths."""

    tool: str
    config: str
    root: Path
    layout: NodeLayout
    runs: tuple[Run, ...]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.returncode == 0 for r in self.runs)

    @property
    def window(self) -> tuple[datetime.datetime, datetime.datetime]:
        """From the start of the first process to the end of the last one."""
        return self.runs[0].start, self.runs[-1].end

    def path(self, node_path: str | PurePosixPath) -> Path:
        return self.root / str(node_path).lstrip("/")

    def failures(self) -> str:
        return "\n".join(r.describe() for r in self.runs if r.returncode != 0)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ns(value: str) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(value) / 1e9, datetime.UTC)


def run_kubeadm(kubeadm: Path, config: Path, out: Path, *, name: str, dry_run: bool = False,
                extra: Sequence[str] = (), hostname: str | None = None) -> Capture:
    """The real kubeadm's node-local phases (or `init --dry-run`) for `config`, in the sandbox;
    with `hostname`, in a UTS namespace carrying that hostname."""
    layout = layout_of(config)
    argv = [str(ORACLE_SCRIPT), "--kubeadm", str(kubeadm), "--config", str(config),
            "--out", str(out)]
    for p in (layout.cert_dir, layout.data_dir):
        argv += ["--clean", p]
    if dry_run:
        argv.append("--dry-run")
    if hostname:
        argv += ["--hostname", hostname]
    argv += ["--", *extra]
    proc = subprocess.run(argv, env=CLEAN_ENV, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)
    runs = []
    tsv = out / "runs.tsv"
    if tsv.exists():
        for line in tsv.read_text().splitlines():
            idx, start, end, code, cmd = line.split("\t", 4)
            runs.append(Run(argv=tuple(cmd.split()), start=_ns(start), end=_ns(end),
                            returncode=int(code), stdout=(out / f"{idx}.out").read_text(),
                            stderr=(out / f"{idx}.err").read_text()))
    if not runs:  # the sandbox itself failed: report it as a failed run
        runs.append(Run(argv=tuple(argv), start=_now(), end=_now(), returncode=proc.returncode or 1,
                        stdout=proc.stdout, stderr=proc.stderr))
    return Capture(tool="kubeadm", config=name, root=out / "root", layout=layout,
                   runs=tuple(runs))


def host_ca_trust_dirs() -> tuple[str, ...]:
    """The CA-trust directories kubeadm would mount on this host (os.Stat succeeds)."""
    return tuple(p for p in CA_TRUST_DIRS if os.path.exists(p))


def prepare_kubeinit_root(root: Path) -> None:
    """An empty node root carrying this host's CA-trust directories (see the module docstring)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for p in host_ca_trust_dirs():
        (root / p.lstrip("/")).mkdir(parents=True)


def _run(argv: Sequence[str], hostname: str | None = None) -> Run:
    start = _now()
    # umask 022 as the oracle (a root shell's usual umask); directory modes depend on it.
    wrap = ["/bin/sh", "-c", 'umask 022 && exec "$0" "$@"']
    if hostname:  # a private UTS namespace, as hack/kubeadm-oracle --hostname
        wrap = ["unshare", "--uts", "--", "/bin/sh", "-c",
                'hostname "$0" && umask 022 && exec "$@"', hostname]
    proc = subprocess.run([*wrap, *argv], env=CLEAN_ENV, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    return Run(argv=tuple(argv), start=start, end=_now(), returncode=proc.returncode,
               stdout=proc.stdout, stderr=proc.stderr)


def run_kubeinit_local(config: Path, root: Path, *, name: str,
                       hostname: str | None = None) -> Capture:
    """The product path: one `kubeinit init --local-only` process."""
    prepare_kubeinit_root(root)
    run = _run([str(KUBEINIT), "init", "--local-only", "--root", str(root), "--config",
                str(config), "--skip-phases", "preflight"], hostname)
    return Capture(tool="kubeinit", config=name, root=root, layout=layout_of(config),
                   runs=(run,))


def run_kubeinit_phases(config: Path, root: Path, *, name: str) -> Capture:
    """One `kubeinit init phase P` per node-local phase, continuing past failures, so phases
    that work are judged while others are still being written."""
    prepare_kubeinit_root(root)
    runs = tuple(_run([str(KUBEINIT), "init", "phase", *p, "--root", str(root), "--config",
                       str(config)]) for p in LOCAL_PHASES)
    return Capture(tool="kubeinit", config=name, root=root, layout=layout_of(config), runs=runs)


def kubeinit_capture(config: Path, workdir: Path, *, name: str) -> tuple[Capture, Capture]:
    """(the `--local-only` run, the capture to judge): the latter is the same run when it
    succeeded, else a phase-by-phase rendering in a fresh root."""
    full = run_kubeinit_local(config, workdir / "local-only", name=name)
    if full.ok:
        return full, full
    return full, run_kubeinit_phases(config, workdir / "per-phase", name=name)
