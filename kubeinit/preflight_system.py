"""kubeadm's SystemVerification pre-flight check: k8s.io/system-validators v1.12.1 (the version
every pinned kubeadm requires), run as SystemVerificationCheck.Check does on Linux: the kubelet
version first (no kubelet, no verification), then KernelValidator, OSValidator and
CgroupsValidator against validators/types_unix.go's DefaultSysSpec.

Every fact comes from the live machine, read through `Host` so tests can point it at a prepared
tree; the kernel config module is only loaded (modprobe configs) when the host is `/`.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from pathlib import Path

from kubeinit.errors import PhaseFailed
from kubeinit.preflight_checks import Check, CheckError, Host, Outcome, Version, kubelet_version
from kubeinit.run import run

# DefaultSysSpec (validators/types_unix.go)
KERNEL_VERSIONS = (
    r"^5\.4.*$",
    r"^5\.10.*$",
    r"^5\.15.*$",
    r"^([6-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$",
)
KERNEL_VERSIONS_NOTE = (
    "Supported LTS versions from the 5.x series are 5.4, 5.10 and 5.15. Any"
    " 6.x version is also supported. For cgroups v2 support, the recommended"
    " version is 5.10 or newer"
)
# (name, aliases)
REQUIRED = (
    ("NAMESPACES", ()),
    ("NET_NS", ()),
    ("PID_NS", ()),
    ("IPC_NS", ()),
    ("UTS_NS", ()),
    ("CPUSETS", ()),
    ("MEMCG", ()),
    ("INET", ()),
    ("EXT4_FS", ()),
    ("PROC_FS", ()),
    ("NETFILTER_XT_TARGET_REDIRECT", ("IP_NF_TARGET_REDIRECT",)),
    ("NETFILTER_XT_MATCH_COMMENT", ()),
    ("FAIR_GROUP_SCHED", ()),
)
REQUIRED_CGROUPS_V1 = (
    ("CGROUPS", ()),
    ("CGROUP_CPUACCT", ()),
    ("CGROUP_DEVICE", ()),
    ("CGROUP_FREEZER", ()),
    ("CGROUP_PIDS", ()),
    ("CGROUP_SCHED", ()),
)
REQUIRED_CGROUPS_V2 = (
    ("CGROUPS", ()),
    ("CGROUP_BPF", ()),
    ("CGROUP_PIDS", ()),
    ("CGROUP_SCHED", ()),
)
OPTIONAL = (
    ("OVERLAY_FS", ("OVERLAYFS_FS",)),
    ("AUFS_FS", ()),
    ("BLK_DEV_DM", ()),
    ("CFS_BANDWIDTH", ()),
    ("SECCOMP", ()),
    ("SECCOMP_FILTER", ()),
)
CGROUPS_V1 = ("cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids")
CGROUPS_V1_OPTIONAL = ("hugetlb", "blkio")
CGROUPS_V2 = ("cpu", "cpuset", "devices", "freezer", "memory", "pids")
CGROUPS_V2_OPTIONAL = ("hugetlb", "io")
UNIFIED_MOUNTPOINT = "/sys/fs/cgroup"
_KCONFIG_LINE = re.compile(r"^CONFIG_[A-Z0-9_]+=[myn]")
CGROUP_V1_ERROR = (
    "cgroups v1 support is deprecated and will be removed in a future release. Please migrate"
    " to cgroups v2. To explicitly enable cgroups v1 support for kubelet v1.35 or newer, you"
    " must set the kubelet configuration option 'FailCgroupV1' to 'false'. You must also"
    " explicitly skip this validation. For more information, see"
    " https://git.k8s.io/enhancements/keps/sig-node/5573-remove-cgroup-v1"
)


def uname(host: Host) -> tuple[str, str]:
    """(sysname, release). A prepared host tree may carry its own in proc/sys/kernel."""
    if host.root == Path("/"):
        u = os.uname()
        return u.sysname, u.release
    ostype = host.path("/proc/sys/kernel/ostype")
    release = host.path("/proc/sys/kernel/osrelease")
    return ostype.read_text().strip(), release.read_text().strip()


def unified_mountpoint(host: Host) -> tuple[str, bool]:
    """getUnifiedMountpoint: (mount point, is cgroup v2) from /proc/mounts."""
    text = host.path("/proc/mounts").read_text()
    v1 = ""
    for line in text.splitlines():
        if "cgroup" not in line:
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        if fields[1] == UNIFIED_MOUNTPOINT:
            if fields[2] == "tmpfs":
                return UNIFIED_MOUNTPOINT, not host.path(f"{UNIFIED_MOUNTPOINT}/memory").is_dir()
            return UNIFIED_MOUNTPOINT, fields[2] == "cgroup2"
        if fields[2] == "cgroup2":
            return fields[1], True
        if fields[2] == "cgroup" and not v1:
            v1 = fields[1]
    if v1:
        return v1, False
    raise CheckError(f'cannot get a cgroupfs mount point from "{host.path("/proc/mounts")}"')


def kernel_config(host: Host, release: str) -> dict[str, str]:
    candidates = [
        "/proc/config.gz",
        f"/boot/config-{release}",
        f"/usr/src/linux-{release}/.config",
        "/usr/src/linux/.config",
        f"/usr/lib/modules/{release}/config",
        f"/usr/lib/ostree-boot/config-{release}",
        f"/usr/lib/kernel/config-{release}",
        f"/usr/src/linux-headers-{release}/.config",
        f"/lib/modules/{release}/build/.config",
    ]

    def find() -> bytes | None:
        for c in candidates:
            p = host.path(c)
            if p.exists():
                data = p.read_bytes()
                return gzip.decompress(data) if c.endswith(".gz") else data
        return None

    data = find()
    if data is None and host.root == Path("/"):
        try:
            res = run(["modprobe", "configs"], check=False, timeout=60)
        except PhaseFailed as e:
            raise CheckError(f'unable to load kernel module: "configs", err: {e}') from None
        if res.returncode != 0:
            raise CheckError(
                f'unable to load kernel module: "configs", output:'
                f' "{res.stdout + res.stderr}", err: exit status {res.returncode}'
            )
        try:
            data = find()
        finally:
            run(["modprobe", "-r", "configs"], check=False, timeout=60)
    if data is None:
        raise CheckError(f"no config path in [{' '.join(candidates)}] is available")
    out = {}
    for raw in data.decode(errors="replace").splitlines():
        line = raw.strip()
        if _KCONFIG_LINE.match(line):
            name, value = line.split("=", 1)
            out[name] = value[0]
    return out


def kernel_validator(host: Host) -> Outcome:
    _, release = uname(host)
    warnings, errors = [], []
    if not any(re.search(r, release) for r in KERNEL_VERSIONS):
        warnings.append(f"kernel release {release} is unsupported. {KERNEL_VERSIONS_NOTE}")
    try:
        config = kernel_config(host, release)
        _, v2 = unified_mountpoint(host)
    except (CheckError, OSError) as e:
        return warnings, [f"failed to parse kernel config: {e}"]
    bad = []

    def validate(name: str, aliases: tuple[str, ...], required: bool) -> None:
        opt = None
        for n in (name, *aliases):
            key = "CONFIG_" + n
            if key in config:
                opt = config[key]
                break
        if opt in ("y", "m"):
            return
        if required:  # missing, disabled or unknown: bad; optional ones are only reported
            bad.append(key)

    for name, aliases in REQUIRED:
        validate(name, aliases, True)
    for name, aliases in REQUIRED_CGROUPS_V2 if v2 else REQUIRED_CGROUPS_V1:
        validate(name, aliases, True)
    for name, aliases in OPTIONAL:
        validate(name, aliases, False)
    if bad:
        errors.append("unexpected kernel config: " + " ".join(bad))
    return warnings, errors


def os_validator(host: Host) -> Outcome:
    sysname, _ = uname(host)
    if sysname != "Linux":
        return [], [f"unsupported operating system: {sysname}"]
    return [], []


def _cgroup_v2_freezer(host: Host, mountpoint: str) -> tuple[bool, str]:
    """checkCgroupV2Freeze: a child cgroup that has cgroup.freeze means the freezer works."""
    base = host.path(mountpoint)
    try:
        tmp = Path(tempfile.mkdtemp(prefix="freezer-test", dir=base))
    except OSError as e:
        return False, f"mkdir {base}/freezer-test: {e.strerror or e}"
    warn = ""
    supported = False
    try:
        if (tmp / "cgroup.freeze").exists():
            supported = True
    finally:
        try:
            tmp.rmdir()
        except OSError as e:
            warn = f'error removing directory "{tmp}": {e.strerror or e}'
    return supported, warn


def cgroups_validator(host: Host, kubelet: Version) -> Outcome:
    try:
        mountpoint, v2 = unified_mountpoint(host)
    except (CheckError, OSError) as e:
        return [], [f"cannot get a cgroup mount point: {e}"]
    warnings: list[str] = []
    errors: list[str] = []
    required: tuple[str, ...]
    optional: tuple[str, ...]
    if v2:
        freezer, warn = _cgroup_v2_freezer(host, mountpoint)
        if warn:
            warnings.append(warn)
        try:
            controllers = host.path(f"{mountpoint}/cgroup.controllers").read_text().split()
        except OSError as e:
            return [], [f"failed to get cgroups v2 subsystems: {e}"]
        subsystems = ["devices", *(["freezer"] if freezer else []), *controllers]
        required, optional = CGROUPS_V2, CGROUPS_V2_OPTIONAL
    else:
        if not kubelet.less_than(Version(1, 35, 0, "0")):
            errors.append(CGROUP_V1_ERROR)
        else:
            warnings.append(CGROUP_V1_ERROR)
        try:
            lines = host.path("/proc/cgroups").read_text().splitlines()
        except OSError as e:
            return [], [f"failed to get cgroups v1 subsystems: {e}"]
        subsystems = [
            p[0]
            for p in (ln.split() for ln in lines if ln and ln[0] != "#")
            if len(p) >= 4 and p[3] != "0"
        ]
        required, optional = CGROUPS_V1, CGROUPS_V1_OPTIONAL
    missing = [c for c in required if c not in subsystems]
    if missing:
        # As in the validator: this error replaces the cgroup v1 one instead of adding to it.
        errors = ["missing required cgroups: " + " ".join(missing)]
    missing_optional = [c for c in optional if c not in subsystems]
    if missing_optional:
        warnings.append("missing optional cgroups: " + " ".join(missing_optional))
    return warnings, errors


def system_verification_check(host: Host) -> Check:
    def check() -> Outcome:
        try:
            kubelet = kubelet_version()
        except CheckError as e:
            return [], [f"couldn't get kubelet version: {e}"]
        warnings: list[str] = []
        errors: list[str] = []
        for w, errs in (
            kernel_validator(host),
            os_validator(host),
            cgroups_validator(host, kubelet),
        ):
            warnings += w
            errors += errs
        return warnings, errors

    return Check("SystemVerification", check, live=True)
