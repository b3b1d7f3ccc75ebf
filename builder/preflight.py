"""Build-time checks of the target system, offline, before anything is written (field lessons
#5: catch at build time what would otherwise hang first boot).

Every check reads files of the target through `builder.target` (both `--image` and `--root`);
only a binary whose embedded Go build information carries no version is run with `--version`
(inside the libguestfs appliance for images). Each failure is one line with a hint; all of them
are reported together, as kubeadm's preflight does, and the build stops with exit code 2.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from builder import elfinfo
from builder.target import Target, is_dir, is_file, resolve, which
from kubeinit.config import Config
from kubeinit.errors import InvalidInput

MIN_PYTHON = (3, 11)
# The oldest containerd the kubelet of each minor supports. Kubernetes 1.35 was the last
# release to support containerd 1.x (1.7 implements the CRI RuntimeConfig call kubeadm's
# ContainerRuntimeVersion check asks for: cmd/kubeadm/app/preflight/checks.go:132); 1.36 and
# later need containerd 2.0 or newer.
MIN_CONTAINERD = {35: (1, 7, 0), 36: (2, 0, 0), 37: (2, 0, 0)}
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
SYSTEMD_BINARIES = ("/usr/lib/systemd/systemd", "/lib/systemd/systemd")
CONTAINERD_DEFAULT_SOCKET = "/run/containerd/containerd.sock"
CRIO_DEFAULT_SOCKET = "/run/crio/crio.sock"
# A node that ran `kubeadm init` or kubeinit: never a template for clones (field lessons #11).
NODE_STATE = (
    "/etc/kubernetes/pki/ca.key",
    "/etc/kubernetes/pki/sa.key",
    "/etc/kubernetes/admin.conf",
    "/var/lib/etcd/member",
    "/var/lib/kubeinit/init.done",
    "/var/lib/kubelet/pki/kubelet-client-current.pem",
)
_PY_NAME = re.compile(r"python(\d+)\.(\d+)\Z")
_GLIBC = re.compile(rb"GNU C Library[^\n\0]*?version (\d+)\.(\d+)")


@dataclass(frozen=True)
class Finding:
    check: str
    message: str
    hint: str
    fatal: bool = True


@dataclass(frozen=True)
class Facts:
    """What the checks learnt about the target; the payload is rendered for it."""

    arch: str
    python: tuple[int, int]
    glibc: tuple[int, int]
    kubelet_version: str
    runtime: str  # "containerd" or "cri-o"
    runtime_version: str
    sandbox_image: str  # from the runtime's configuration, "" when not set
    unit_dir: str  # where the distribution keeps its units
    warnings: tuple[Finding, ...] = ()


class ImageCheckFailed(InvalidInput):
    """The target cannot run kubeinit's first boot; `findings` says every reason."""

    def __init__(self, findings: list[Finding]) -> None:
        n = len(findings)
        super().__init__(
            f"{n} check{'s' if n > 1 else ''} of the target system failed:"
            f" {', '.join(f.check for f in findings)}",
            hint="fix the base image (each failure above names what is missing);"
            " nothing was written",
        )
        self.findings = findings


@dataclass
class _Checks:
    t: Target
    config: Config
    failures: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    def fail(self, check: str, message: str, hint: str) -> None:
        self.failures.append(Finding(check, message, hint))

    def warn(self, check: str, message: str, hint: str) -> None:
        self.warnings.append(Finding(check, message, hint, fatal=False))


def check_target(t: Target, config: Config) -> Facts:
    """Run every check; raise ImageCheckFailed listing all failures, or return the facts."""
    c = _Checks(t, config)
    systemd = _check_systemd(c)
    python, arch = _check_python(c)
    glibc = _check_glibc(c)
    kubelet = _check_kubelet(c)
    runtime, runtime_version, sandbox = _check_runtime(c)
    _check_units(c, runtime)
    _check_tools(c)
    _check_node_state(c)
    if c.failures:
        raise ImageCheckFailed(c.failures)
    return Facts(
        arch=arch,
        python=python,
        glibc=glibc,
        kubelet_version=kubelet,
        runtime=runtime,
        runtime_version=runtime_version,
        sandbox_image=sandbox,
        unit_dir=systemd,
        warnings=tuple(c.warnings),
    )


def _check_systemd(c: _Checks) -> str:
    if not any(is_file(c.t, p) for p in SYSTEMD_BINARIES):
        c.fail(
            "systemd",
            "no systemd in the target (no /usr/lib/systemd/systemd)",
            "kubeinit runs as a systemd unit: install systemd (Debian: systemd systemd-sysv)",
        )
    return (
        "/usr/lib/systemd/system"
        if is_dir(c.t, "/usr/lib/systemd/system")
        else "/lib/systemd/system"
    )


def _check_python(c: _Checks) -> tuple[tuple[int, int], str]:
    exe = resolve(c.t, "/usr/bin/python3")
    if exe is None or c.t.kind(exe) != "file":
        c.fail(
            "python3",
            "no /usr/bin/python3 in the target",
            f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer (Debian: python3)",
        )
        return (0, 0), "unknown"
    arch = "unknown"
    with contextlib.suppress(elfinfo.NotElf):
        arch = elfinfo.read_elf(lambda off, n: c.t.read(exe, off, n)).arch
    version = _python_version(c.t, exe)
    if version is None:
        c.fail(
            "python3",
            f"cannot tell the version of {exe}",
            "/usr/bin/python3 should lead to a pythonX.Y binary with /usr/lib/pythonX.Y",
        )
        return (0, 0), arch
    if version < MIN_PYTHON:
        c.fail(
            "python3",
            f"the target's Python is {version[0]}.{version[1]}; kubeinit needs"
            f" {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer",
            "use a newer base image (Debian 12, Ubuntu 24.04, Fedora 38 or later)",
        )
    stdlib = f"/usr/lib/python{version[0]}.{version[1]}"
    if not is_file(c.t, f"{stdlib}/os.py"):
        c.fail(
            "python3",
            f"the Python standard library ({stdlib}) is missing",
            "install the full python3 package, not only the interpreter",
        )
    journal = [
        "/usr/lib/python3/dist-packages/systemd/journal.py",
        f"{stdlib}/site-packages/systemd/journal.py",
        f"/usr/lib64/python{version[0]}.{version[1]}/site-packages/systemd/journal.py",
        f"/usr/local/lib/python{version[0]}.{version[1]}/dist-packages/systemd/journal.py",
    ]
    if not any(is_file(c.t, j) for j in journal):
        c.fail(
            "python3-systemd",
            "the target's Python has no systemd module (python3-systemd):"
            " kubeinit's journal records need it",
            "install python3-systemd in the image (Debian/Ubuntu/Fedora: python3-systemd)",
        )
    return version, arch


def _python_version(t: Target, exe: str) -> tuple[int, int] | None:
    m = _PY_NAME.search(PurePosixPath(exe).name)
    if m:
        return int(m.group(1)), int(m.group(2))
    # /usr/bin/python3 as a real file: the newest /usr/lib/pythonX.Y with a standard library
    found = []
    for name in t.listdir("/usr/lib") if is_dir(t, "/usr/lib") else []:
        m = _PY_NAME.match(name)
        if m and is_file(t, f"/usr/lib/{name}/os.py"):
            found.append((int(m.group(1)), int(m.group(2))))
    return max(found) if found else None


def _check_glibc(c: _Checks) -> tuple[int, int]:
    for d in (
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib",
    ):
        libc = resolve(c.t, f"{d}/libc.so.6")
        if libc is not None and c.t.kind(libc) == "file":
            m = _GLIBC.search(c.t.read(libc))
            if m:
                return int(m.group(1)), int(m.group(2))
    c.fail(
        "glibc",
        "no GNU C library (libc.so.6) found in the target",
        "kubeinit's Python dependencies are manylinux wheels: use a glibc-based image",
    )
    return (0, 0)


def _binary_version(c: _Checks, path: str, modules: tuple[str, ...]) -> str | None:
    """A Go binary's version: the module version in its build information, else what
    `--version` prints."""
    try:
        elf = elfinfo.read_elf(lambda off, n: c.t.read(path, off, n))
    except elfinfo.NotElf:
        return None
    info = elfinfo.go_buildinfo(lambda off, n: c.t.read(path, off, n), elf)
    if info is not None:
        v = elfinfo.module_version(info, *modules)
        if v:
            return v
    out = c.t.version_output(path)  # None for a tree: its binaries never run on the host
    if out is None:
        raise _CannotTell(path)
    v3 = elfinfo.semver(out)
    return f"v{v3[0]}.{v3[1]}.{v3[2]}" if v3 else None


_UNKNOWN = "unknown"


class _CannotTell(Exception):
    """The version is not in the binary's build information, and running the binary to ask
    would execute the target's code on the build host."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _cannot_tell(c: _Checks, check: str, path: str, need: str) -> None:
    c.warn(
        check,
        f"cannot tell the version of {path}: its ELF has no Go build information, and"
        " kubeinit-build never runs a binary of the target tree on the build host",
        f"{need}; --image reads it inside the libguestfs appliance instead",
    )


def _check_kubelet(c: _Checks) -> str:
    release = c.config.release
    exe = which(c.t, "kubelet")
    if exe is None:
        c.fail(
            "kubelet",
            "no kubelet on the node's PATH",
            f"install kubelet {release.version} (or another v1.{release.minor}.x)",
        )
        return ""
    try:
        version = _binary_version(c, exe, ("k8s.io/kubernetes",))
    except _CannotTell:
        _cannot_tell(c, "kubelet", exe, f"make sure it is kubelet v1.{release.minor}.x")
        return ""
    parsed = elfinfo.semver(version or "")
    if parsed is None:
        c.fail(
            "kubelet",
            f"cannot tell the version of {exe}",
            f"install the kubelet of Kubernetes v1.{release.minor}",
        )
        return ""
    if parsed[:2] != (1, release.minor):
        c.fail(
            "kubelet",
            f"{exe} is {version}, the pinned Kubernetes is {release.version}",
            f"install kubelet v1.{release.minor}.x, or build with --kubernetes-version"
            f" v{parsed[0]}.{parsed[1]}.x if that minor is supported",
        )
    elif parsed[2] != release.patch:
        c.warn(
            "kubelet",
            f"{exe} is {version}, the control plane will run {release.version}",
            "same minor: supported, but matching patches are simpler to reason about",
        )
    return version or ""


def _check_runtime(c: _Checks) -> tuple[str, str, str]:
    release = c.config.release
    socket = _socket_path(c.config.init.node_registration.cri_socket)
    containerd, crio = which(c.t, "containerd"), which(c.t, "crio")
    if containerd is None and crio is None:
        c.fail(
            "container-runtime",
            "no container runtime (containerd or CRI-O) on the node's PATH",
            f"install containerd {_dotted(MIN_CONTAINERD[release.minor])} or newer",
        )
        return "", "", ""
    if containerd is not None:
        need = MIN_CONTAINERD[release.minor]
        try:
            version = (
                _binary_version(
                    c,
                    containerd,
                    ("github.com/containerd/containerd/v2", "github.com/containerd/containerd"),
                )
                or ""
            )
        except _CannotTell:
            _cannot_tell(c, "container-runtime", containerd, f"it must be {_dotted(need)} or newer")
            version = _UNKNOWN
        parsed = elfinfo.semver(version)
        if version == _UNKNOWN:
            pass
        elif parsed is None:
            c.fail(
                "container-runtime",
                f"cannot tell the version of {containerd}",
                f"install containerd {_dotted(need)} or newer",
            )
        elif parsed < need:
            c.fail(
                "container-runtime",
                f"containerd {version} is too old for Kubernetes"
                f" v1.{release.minor}: it needs {_dotted(need)} or newer",
                "install a newer containerd (Debian's containerd package is 1.6)",
            )
        if which(c.t, "runc") is None and which(c.t, "crun") is None:
            c.fail(
                "container-runtime",
                "containerd has no OCI runtime: neither runc nor crun is on the node's PATH",
                "install runc",
            )
        config = _toml(c.t, "/etc/containerd/config.toml")
        # config version 4 moved [grpc] to the io.containerd.server.v1.grpc plugin
        listen = _socket_path(
            str(
                _dig(config, "plugins", "io.containerd.server.v1.grpc", "address")
                or _dig(config, "grpc", "address")
                or CONTAINERD_DEFAULT_SOCKET
            )
        )
        sandbox = str(
            _dig(config, "plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox")
            or _dig(config, "plugins", "io.containerd.grpc.v1.cri", "sandbox_image")
            or ""
        )
        _check_socket(c, "containerd", listen, socket)
        _check_sandbox(c, sandbox)
        return "containerd", "" if version == _UNKNOWN else version, sandbox
    assert crio is not None
    try:
        version = _binary_version(c, crio, ("github.com/cri-o/cri-o",)) or ""
    except _CannotTell:
        _cannot_tell(c, "container-runtime", crio, f"it must be CRI-O v1.{release.minor}.x")
        version = _UNKNOWN
    parsed = elfinfo.semver(version)
    if version != _UNKNOWN and (parsed is None or parsed[:2] != (1, release.minor)):
        c.fail(
            "container-runtime",
            f"CRI-O {version or '(unknown version)'} does not match Kubernetes v1.{release.minor}",
            f"install CRI-O v1.{release.minor}.x",
        )
    config = _toml(c.t, "/etc/crio/crio.conf")
    listen = _socket_path(str(_dig(config, "crio", "api", "listen") or CRIO_DEFAULT_SOCKET))
    sandbox = str(_dig(config, "crio", "image", "pause_image") or "")
    _check_socket(c, "CRI-O", listen, socket)
    _check_sandbox(c, sandbox)
    return "cri-o", "" if version == _UNKNOWN else version, sandbox


def _check_socket(c: _Checks, runtime: str, listen: str, configured: str) -> None:
    if listen != configured:
        c.fail(
            "cri-socket",
            f"nodeRegistration.criSocket is unix://{configured}, but the"
            f" image's {runtime} listens on {listen}",
            f"set nodeRegistration.criSocket: unix://{listen} in the cluster configuration",
        )


def _check_sandbox(c: _Checks, sandbox: str) -> None:
    pause = c.config.release.image("pause")
    if c.config.cluster.image_repository != "registry.k8s.io":
        pause = f"{c.config.cluster.image_repository}/{pause.rsplit('/', 1)[1]}"
    if sandbox and sandbox != pause:
        c.warn(
            "sandbox-image",
            f"the container runtime's sandbox image is {sandbox}, kubeadm uses {pause}",
            "set the runtime's sandbox (pause) image to the pinned one so nothing is pulled",
        )


def _check_units(c: _Checks, runtime: str) -> None:
    units = ["kubelet.service"]
    if runtime:
        units.append("containerd.service" if runtime == "containerd" else "crio.service")
    for unit in units:
        if not any(resolve(c.t, f"{d}/{unit}") for d in UNIT_DIRS):
            c.fail(
                "units",
                f"no {unit} in the target",
                f"install the {unit.removesuffix('.service')} package's unit file",
            )


def _check_tools(c: _Checks) -> None:
    # kubeadm's addExecChecks (cmd/kubeadm/app/preflight/checks_linux.go:78): losetup, mount
    # and cp are mandatory; conntrack only before Kubernetes 1.32.
    mandatory = ["losetup", "mount", "cp"]
    if c.config.release.minor < 32:
        mandatory.append("conntrack")
    for tool in mandatory:
        if which(c.t, tool) is None:
            c.fail(
                "tools",
                f"{tool} is not on the node's PATH (kubeadm's preflight requires it)",
                f"install {tool} (Debian: util-linux, coreutils, conntrack)",
            )
    if which(c.t, "iptables") is None and which(c.t, "nft") is None:
        c.warn(
            "tools",
            "neither iptables nor nft is on the node's PATH",
            "CNI plugins and network policies usually need one: install iptables",
        )
    if which(c.t, "conntrack") is None:
        c.warn(
            "tools",
            "conntrack is not on the node's PATH",
            "install conntrack for debugging Service traffic",
        )


def _check_node_state(c: _Checks) -> None:
    found = [p for p in NODE_STATE if resolve(c.t, p) is not None]
    manifests = "/etc/kubernetes/manifests"
    if is_dir(c.t, manifests):
        found += [f"{manifests}/{n}" for n in c.t.listdir(manifests) if n.endswith(".yaml")]
    if found:
        c.fail(
            "node-state",
            f"the target already holds a Kubernetes node's state ({found[0]}"
            f"{f' and {len(found) - 1} more' if len(found) > 1 else ''})",
            "build from a clean base image: a template must carry no keys or cluster data",
        )


def check_space(t: Target, needs: dict[str, int], margin: int = 32 << 20) -> None:
    """Fail when a filesystem of the target has not room for what goes there (+ a margin)."""
    by_fs: dict[str, tuple[int, int, str]] = {}
    for path, size in needs.items():
        s = t.space(path)
        have, need, first = by_fs.get(s.filesystem, (s.available, 0, path))
        by_fs[s.filesystem] = (have, need + size, first)
    for have, need, path in by_fs.values():
        if have < need + margin:
            raise ImageCheckFailed(
                [
                    Finding(
                        "free-space",
                        f"the filesystem holding {path} has {have >> 20} MiB free; the"
                        f" build needs {(need + margin) >> 20} MiB",
                        "grow the image's filesystem (virt-resize, growpart + resize2fs)"
                        " or free space",
                    )
                ]
            )


def _socket_path(text: str) -> str:
    p = text.removeprefix("unix://")
    return "/run" + p[len("/var/run") :] if p.startswith("/var/run/") else p


def _toml(t: Target, path: str) -> dict[str, object]:
    real = resolve(t, path)
    if real is None or t.kind(real) != "file":
        return {}
    try:
        return tomllib.loads(t.read(real).decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return {}


def _dig(data: object, *keys: str) -> object:
    for k in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(k)
    return data


def _dotted(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))
