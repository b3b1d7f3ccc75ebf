"""The individual pre-flight checks of kubeadm (cmd/kubeadm/app/preflight/checks.go,
checks_linux.go, checks_unix.go, utils.go), each a `Check`: kubeadm's name, a function returning
kubeadm's (warnings, errors), and whether it looks at the live machine. Files are looked up under
a root; facts about the machine come from `Host`. The lists and their order are in
kubeinit.preflight; checks that talk to a runtime, a proxy or etcd are in kubeinit.preflight_net.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeinit import paths
from kubeinit.errors import PhaseFailed
from kubeinit.run import run

# --- the checks -----------------------------------------------------------------------------

Outcome = tuple[list[str], list[str]]  # (warnings, errors), as kubeadm's Checker.Check()


@dataclass(frozen=True)
class Check:
    name: str
    check: Callable[[], Outcome]
    live: bool  # looks at the live machine: not applicable when rendering into an image


@dataclass(frozen=True)
class Host:
    """Where facts about the live machine are read. Always `/` in production; tests point it at
    a prepared tree to control /proc/swaps, /proc/meminfo, /proc/mounts and the like."""

    root: Path = Path("/")

    def path(self, node_path: str) -> Path:
        return paths.under(self.root, node_path)


@dataclass
class Report:
    warnings: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)  # preloaded archives imported (ImagePull)


def _dashed(path: str) -> str:
    return path.replace("/", "-")


def file_available(node_path: str, root: Path) -> Check:
    def check() -> Outcome:
        p = paths.under(root, node_path)
        if p.exists():  # os.Stat: follows symlinks, a dangling one counts as absent
            return [], [f"{p} already exists"]
        return [], []

    return Check(f"FileAvailable-{_dashed(node_path)}", check, live=False)


def file_existing(node_path: str, root: Path, label: str = "") -> Check:
    def check() -> Outcome:
        p = paths.under(root, node_path)
        return ([], []) if p.exists() else ([], [f"{p} doesn't exist"])

    return Check(label or f"FileExisting-{_dashed(node_path)}", check, live=False)


def dir_available(node_path: str, root: Path) -> Check:
    def check() -> Outcome:
        p = paths.under(root, node_path)
        if not p.exists():
            return [], []
        try:
            with os.scandir(p) as it:
                empty = next(it, None) is None
        except OSError as e:
            return [], [f"unable to check if {p} is empty: {e.strerror or e}"]
        return ([], []) if empty else ([], [f"{p} is not empty"])

    return Check(f"DirAvailable-{_dashed(node_path)}", check, live=False)


def file_content(node_path: str, content: bytes, root: Path) -> Check:
    def check() -> Outcome:
        p = paths.under(root, node_path)
        try:
            with p.open("rb") as f:
                got = f.read(len(content))
        except FileNotFoundError:
            return [], [f"{p} does not exist"]
        except OSError:
            return [], [f"{p} could not be read"]
        if got != content:
            return [], [f"{p} contents are not set to {content.decode()}"]
        return [], []

    return Check(f"FileContent-{_dashed(node_path)}", check, live=True)


def in_path(executable: str) -> Check:
    def check() -> Outcome:
        if shutil.which(executable) is None:
            return [], [f"{executable} not found in system path"]
        return [], []

    return Check(f"FileExisting-{_dashed(executable)}", check, live=True)


def _listen(family: socket.AddressFamily, host: str, port: int, *, dual: bool) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's net.Listen
        if dual:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, port))
        s.listen(1)


def port_open(port: int, address: str = "") -> Check:
    """PortOpenCheck: Go's net.Listen("tcp", ":PORT" or "ADDRESS:PORT"). Without an address Go
    listens on the dual-stack IPv6 wildcard, or on 0.0.0.0 where the machine has no IPv6."""

    def check() -> Outcome:
        try:
            if address:
                fam = socket.AF_INET6 if ":" in address else socket.AF_INET
                _listen(fam, address, port, dual=False)
            else:
                try:
                    _listen(socket.AF_INET6, "::", port, dual=True)
                except OSError as e:
                    if e.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                        raise
                    _listen(socket.AF_INET, "0.0.0.0", port, dual=False)
        except OSError:
            return [], [f"Port {port} is in use"]
        return [], []

    return Check(f"Port-{port}", check, live=True)


def num_cpu(required: int) -> Check:
    def check() -> Outcome:
        n = len(os.sched_getaffinity(0))  # Go's runtime.NumCPU
        if n < required:
            return [], [f"the number of available CPUs {n} is less than the required {required}"]
        return [], []

    return Check("NumCPU", check, live=True)


def mem(required_mb: int, host: Host) -> Check:
    def check() -> Outcome:
        # sysinfo(2) totalram is MemTotal of /proc/meminfo.
        try:
            text = host.path("/proc/meminfo").read_text()
        except OSError as e:
            return [], [f"failed to get system info: {e}"]
        m = re.search(r"^MemTotal:\s+(\d+) kB", text, re.M)
        if m is None:
            return [], ["failed to get system info: no MemTotal in /proc/meminfo"]
        actual = int(m.group(1)) // 1024
        if actual < required_mb:
            return [], [f"the system RAM ({actual} MB) is less than the minimum {required_mb} MB"]
        return [], []

    return Check("Mem", check, live=True)


def swap(host: Host) -> Check:
    def check() -> Outcome:
        try:
            lines = host.path("/proc/swaps").read_text().splitlines()
        except OSError:
            return [], []  # /proc/swaps not available, thus no reasons to warn
        if len(lines) > 1:
            return [
                "swap is supported for cgroup v2 only. The kubelet must be properly"
                " configured to use swap. Please refer to https://kubernetes.io/docs/"
                "concepts/architecture/nodes/#swap-memory, or disable swap on the node"
            ], []
        return [], []

    return Check("Swap", check, live=True)


# --- versions -------------------------------------------------------------------------------

_SEMVER = re.compile(
    r"\Av?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\Z"
)


@dataclass(frozen=True)
class Version:
    """k8s.io/apimachinery/pkg/util/version, semantic versions only."""

    major: int
    minor: int
    patch: int
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _SEMVER.match(text.strip())
        if not m:
            raise ValueError(f"could not parse {text!r} as version")
        return cls(int(m[1]), int(m[2]), int(m[3]), m[4] or "")

    def _key(self) -> tuple[Any, ...]:
        pre: tuple[Any, ...] = (1,)
        if self.pre:
            pre = (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre.split(".")))
        return self.major, self.minor, self.patch, pre

    def less_than(self, other: Version) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")


_KUBELET_VERSION = re.compile(
    r"^\s*Kubernetes v((0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)([-\w.+]*)?)\s*$"
)


class CheckError(Exception):
    """A check could not get a fact it needs; the message is kubeadm's error text."""


def kubelet_version() -> Version:
    """utils.go GetKubeletVersion: `kubelet --version`, through kubeinit.run."""
    if shutil.which(paths.KUBELET) is None:
        raise CheckError("cannot execute 'kubelet --version': executable file not found in $PATH")
    try:
        res = run([paths.KUBELET, "--version"], check=False, timeout=60)
    except PhaseFailed as e:
        raise CheckError(f"cannot execute 'kubelet --version': {e.message}") from None
    if res.returncode != 0:
        raise CheckError(f"cannot execute 'kubelet --version': exit status {res.returncode}")
    out = res.stdout.strip()
    subs = _KUBELET_VERSION.findall(out)
    if len(subs) != 1:
        raise CheckError(f"Unable to parse output from Kubelet: {json.dumps(out)}")
    try:
        return Version.parse(subs[0][0])
    except ValueError as e:
        raise CheckError(str(e)) from None


def kubernetes_version_check(kubeadm_version: str, kubernetes_version: str) -> Check:
    def check() -> Outcome:
        if kubeadm_version.startswith("v0.0.0"):
            return [], []
        try:
            kadm = Version.parse(kubeadm_version)
        except ValueError:
            return [], [f'couldn\'t parse kubeadm version "{kubeadm_version}"']
        try:
            k8s = Version.parse(kubernetes_version)
        except ValueError:
            return [], [f'couldn\'t parse Kubernetes version "{kubernetes_version}"']
        if not k8s.less_than(Version(kadm.major, kadm.minor + 1, 0, "0")):
            return [
                f"Kubernetes version is greater than kubeadm version. Please consider to"
                f" upgrade kubeadm. Kubernetes version: {k8s}. Kubeadm version:"
                f" {kadm.major}.{kadm.minor}.x"
            ], []
        return [], []

    return Check("KubernetesVersion", check, live=False)


def kubelet_version_check(kubeadm_version: str, kubernetes_version: str) -> Check:
    def check() -> Outcome:
        try:
            kubelet = kubelet_version()
        except CheckError as e:
            return [], [f"couldn't get kubelet version: {e}"]
        kadm = Version.parse(kubeadm_version)
        minimum = Version(kadm.major, kadm.minor - 3, 0)  # MinimumKubeletVersion
        if kubelet.less_than(minimum):
            return [], [
                f'Kubelet version "{kubelet}" is lower than kubeadm can support.'
                " Please upgrade kubelet"
            ]
        k8s = Version.parse(kubernetes_version)
        if kubelet.major > k8s.major or kubelet.minor > k8s.minor:
            return [], [
                "the kubelet version is higher than the control plane version. This is"
                " not a supported version skew and may lead to a malfunctional cluster."
                f' Kubelet version: "{kubelet}" Control plane version: "{k8s}"'
            ]
        return [], []

    return Check("KubeletVersion", check, live=True)


# --- init system ----------------------------------------------------------------------------


def _systemctl(*args: str) -> tuple[int, str] | None:
    if shutil.which(paths.SYSTEMCTL) is None:
        return None
    res = run([paths.SYSTEMCTL, *args], check=False, timeout=60)
    return res.returncode, res.stdout


_NO_INIT_SYSTEM = "no supported init system detected, skipping checking for services"


def service_check(service: str) -> Check:
    """ServiceCheck{Service: "kubelet", CheckIfActive: false} with initsystem_unix.go's
    systemd: `systemctl` on PATH is the whole detection, as in kubeadm. OpenRC is not
    supported by kubeinit images and counts as no init system."""

    def check() -> Outcome:
        status = _systemctl("status", service)
        if status is None:
            return [_NO_INIT_SYSTEM], []
        if "Loaded: not-found" in status[1] or "could not be found" in status[1]:
            return [f"{service} service does not exist"], []
        enabled = _systemctl("is-enabled", service)
        if enabled is None or enabled[0] != 0:
            return [
                f"{service} service is not enabled, please run 'systemctl enable {service}.service'"
            ], []
        return [], []

    return Check(f"Service-{service}", check, live=True)


def firewalld_check(ports: Sequence[int]) -> Check:
    def check() -> Outcome:
        status = _systemctl("status", "firewalld")
        if status is None:
            return [_NO_INIT_SYSTEM], []
        if "Loaded: not-found" in status[1] or "could not be found" in status[1]:
            return [], []
        active = _systemctl("is-active", "firewalld")
        if active is not None and active[1].strip() in ("active", "activating"):
            shown = "[" + " ".join(str(p) for p in ports) + "]"
            return [
                f"firewalld is active, please ensure ports {shown} are open or your cluster"
                " may not function correctly"
            ], []
        return [], []

    return Check("Firewalld", check, live=True)


def hostname_check(node_name: str) -> Check:
    def check() -> Outcome:
        warnings = []
        # validation.IsQualifiedName; config validation already made the name a DNS-1123
        # subdomain, so only the 63-byte limit of the name part can still fail.
        if len(node_name.encode()) > 63:
            warnings.append(
                f'invalid node name format "{node_name}": name part must be no more than 63 bytes'
            )
        try:
            socket.getaddrinfo(node_name, None)
        except (OSError, UnicodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            warnings.append(f'hostname "{node_name}" could not be reached')
            warnings.append(f'hostname "{node_name}": lookup {node_name}: {reason}')
        return warnings, []

    return Check("Hostname", check, live=True)


def is_privileged_user() -> Check:
    def check() -> Outcome:
        return ([], []) if os.geteuid() == 0 else ([], ["user is not running as root"])

    return Check("IsPrivilegedUser", check, live=True)
