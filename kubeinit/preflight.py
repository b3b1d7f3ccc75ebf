"""kubeadm's pre-flight checks for `init` of the first control-plane node, driven by a profile.

Mirrors cmd/kubeadm/app/preflight/checks.go (InitNodeChecks, addCommonChecks, RunChecks,
RunRootCheckOnly, RunPullImagesCheck), checks_linux.go, checks_unix.go and utils.go of the
pinned kubeadm, and cmd/kubeadm/app/cmd/phases/init/preflight.go for the order of the three
stages (the root check alone, the node checks, then the images). Check names are kubeadm's, as
used by --ignore-preflight-errors (case-insensitive, or 'all'); errors and warnings are kubeadm's.

`Profile` holds everything the checks need that comes from the configuration; the image builder
renders it to JSON at build time (`Profile.to_json`) and first boot reads it back
(`Profile.from_json`). What only the booted machine knows (node name, advertise address) comes
from `Identity` when the checks run.

Targets (an explicit choice, never a silent skip; the runner prints what it did not check):
- `Target.NODE`: the machine that will run the control plane. Every check runs. File checks
  (FileAvailable-*, DirAvailable-*, FileContent-*, ExternalEtcdClientCertificates) look under the
  root; everything else looks at the live machine (ports, CPUs, memory, swap, kernel, cgroups,
  the CRI, the kubelet and other binaries on PATH, services, proxy settings).
- `Target.IMAGE`: rendering into a directory on a build host. Only checks whose answer holds for
  the node too run: the configured Kubernetes version, and the files under the root that kubeadm
  refuses to overwrite (manifests, the etcd data directory, external etcd client certificates).
  Every check of the live machine is "not applicable": the build host's ports, CPUs, kernel,
  CRI, proxy environment and binaries say nothing about the node that will boot the image, and
  /proc/sys under an image tree is not a procfs. ImagePull is not applicable either: the builder
  preloads the images; first boot (Target.NODE) imports the image's archives into the CRI
  (kubeinit.preload) and checks that every image is there. Nothing is ever pulled.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import TextIO

from kubeinit import paths, schema
from kubeinit.config import Config, arg_value
from kubeinit.errors import PhaseFailed, StateUnreadable
from kubeinit.identity import Identity
from kubeinit.preflight_checks import (
    Check,
    CheckError,
    Host,
    Report,
    dir_available,
    file_available,
    file_content,
    file_existing,
    firewalld_check,
    hostname_check,
    in_path,
    is_privileged_user,
    kubelet_version_check,
    kubernetes_version_check,
    mem,
    num_cpu,
    port_open,
    service_check,
    swap,
)
from kubeinit.preflight_net import (
    cri_check,
    cri_version_check,
    external_etcd_version_check,
    http_proxy_check,
    http_proxy_cidr_check,
    image_pull_check,
)
from kubeinit.preflight_system import system_verification_check
from kubeinit.preload import ImageStore, Preload

PROFILE_SCHEMA = 1
LIVE = Host()  # this machine

# constants.go
CONTROL_PLANE_NUM_CPU = 2
CONTROL_PLANE_MEM_MB = 1700
KUBELET_PORT = 10250
KUBE_SCHEDULER_PORT = 10259
KUBE_CONTROLLER_MANAGER_PORT = 10257
ETCD_LISTEN_CLIENT_PORT = 2379
ETCD_LISTEN_PEER_PORT = 2380
IPV4_FORWARD = "/proc/sys/net/ipv4/ip_forward"
IPV6_DEFAULT_FORWARDING = "/proc/sys/net/ipv6/conf/default/forwarding"


class Target(StrEnum):
    NODE = "node"
    IMAGE = "image"


@dataclass(frozen=True)
class Profile:
    """The configuration-derived inputs of kubeadm's init pre-flight checks. Plain data: it is
    rendered to JSON at image build time and read back on first boot."""

    target: Target
    kubeadm_version: str  # kubeinit plays the kubeadm of the release it deploys
    kubernetes_version: str
    bind_port: int
    cri_socket: str
    images: tuple[str, ...]
    image_pull_policy: str = "IfNotPresent"
    min_cpus: int = CONTROL_PLANE_NUM_CPU
    min_memory_mb: int = CONTROL_PLANE_MEM_MB
    # kubeadm >= 1.37 listens on the bind-address extraArgs of each component (and on the
    # advertise address for etcd) instead of on every address.
    port_addresses: bool = True
    api_server_bind_address: str = ""
    scheduler_bind_address: str = ""
    controller_manager_bind_address: str = ""
    api_server_advertise_address: str = ""  # apiServer.extraArgs advertise-address, if any
    manifests_dir: str = str(paths.MANIFESTS_DIR)
    service_subnets: tuple[str, ...] = ("10.96.0.0/12",)
    pod_subnets: tuple[str, ...] = ("",)
    local_etcd_data_dir: str = str(paths.DEFAULT_ETCD_DATA_DIR)  # "" with external etcd
    external_etcd: bool = False
    external_etcd_http_endpoints: tuple[str, ...] = ()
    external_etcd_ca_file: str = ""
    external_etcd_cert_file: str = ""
    external_etcd_key_file: str = ""
    ignore_preflight_errors: tuple[str, ...] = ()

    def to_json(self) -> str:
        data = {"schema": PROFILE_SCHEMA, "preflight": schema.encode(self, omitempty=False)}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "<profile>") -> Profile:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise StateUnreadable(
                f"{source}: not JSON: {e}", hint="rebuild the image with this kubeinit"
            ) from None
        if not isinstance(data, dict) or data.get("schema") != PROFILE_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else None
            raise StateUnreadable(
                f"{source}: preflight profile schema {found!r} is not {PROFILE_SCHEMA}",
                hint="the image was built by an older or newer kubeinit; rebuild it",
            )
        try:
            return schema.decode(cls, data.get("preflight"))
        except (schema.DecodeError, TypeError) as e:
            raise StateUnreadable(
                f"{source}: preflight profile: {e}", hint="rebuild the image with this kubeinit"
            ) from None


def control_plane_images(config: Config) -> tuple[str, ...]:
    """images.GetControlPlaneImages: the images `kubeadm config images list` prints."""
    c, release = config.cluster, config.release
    out = [
        release.image(n) for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    if not c.proxy.disabled:
        out.append(release.image("kube-proxy"))
    if not c.dns.disabled:
        default = release.image("coredns")
        repo = c.dns.image_repository or c.image_repository
        if repo == "registry.k8s.io":
            repo += "/coredns"
        out.append(
            f"{repo}/coredns:{c.dns.image_tag or default.rsplit(':', 1)[1]}"
            if c.dns.image_repository or c.dns.image_tag
            else default
        )
    out.append(release.image("pause"))
    if c.etcd.local is not None:
        local = c.etcd.local
        tag = local.image_tag or release.major_minor.etcd_tag
        out.append(f"{local.image_repository or c.image_repository}/etcd:{tag}")
    return tuple(out)


def pause_image(images: Sequence[str]) -> str:
    """The pause image of an image list (images.GetPauseImage: <imageRepository>/pause:<tag>)."""
    for image in images:
        name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
        if name == "pause":
            return image
    return ""


def profile_for(config: Config, target: Target) -> Profile:
    c, init = config.cluster, config.init
    v137 = config.release.minor >= 37
    ext = c.etcd.external
    return Profile(
        target=target,
        kubeadm_version=config.release.version,
        kubernetes_version=c.kubernetes_version,
        bind_port=init.local_api_endpoint.bind_port,
        cri_socket=init.node_registration.cri_socket,
        images=control_plane_images(config),
        image_pull_policy=str(init.node_registration.image_pull_policy),
        port_addresses=v137,
        api_server_bind_address=arg_value(c.api_server.extra_args, "bind-address") or "",
        scheduler_bind_address=arg_value(c.scheduler.extra_args, "bind-address") or "",
        controller_manager_bind_address=arg_value(c.controller_manager.extra_args, "bind-address")
        or "",
        api_server_advertise_address=arg_value(c.api_server.extra_args, "advertise-address") or "",
        service_subnets=tuple(c.networking.service_subnet.split(",")),
        pod_subnets=tuple(c.networking.pod_subnet.split(",")),
        local_etcd_data_dir=c.etcd.local.data_dir if c.etcd.local else "",
        external_etcd=ext is not None,
        external_etcd_http_endpoints=ext.http_endpoints if ext else (),
        external_etcd_ca_file=ext.ca_file if ext else "",
        external_etcd_cert_file=ext.cert_file if ext else "",
        external_etcd_key_file=ext.key_file if ext else "",
        ignore_preflight_errors=tuple(
            s.lower() for s in init.node_registration.ignore_preflight_errors
        ),
    )


def _families(cidrs: Iterable[str]) -> set[int]:
    out: set[int] = set()
    for c in cidrs:
        try:
            out.add(ipaddress.ip_network(c, strict=False).version)
        except ValueError:
            continue
    return out


def init_node_checks(
    profile: Profile, identity: Identity, root: Path, host: Host = LIVE
) -> list[Check]:
    """InitNodeChecks(isSecondaryControlPlane=false, downloadCerts=false), in kubeadm's order."""

    def addr(a: str) -> str:
        return a if profile.port_addresses else ""

    manifests = PurePosixPath(profile.manifests_dir)
    checks = [
        num_cpu(profile.min_cpus),
        mem(profile.min_memory_mb, host),
        kubernetes_version_check(profile.kubeadm_version, profile.kubernetes_version),
        firewalld_check([profile.bind_port, KUBELET_PORT]),
        port_open(profile.bind_port, addr(profile.api_server_bind_address)),
        port_open(KUBE_SCHEDULER_PORT, addr(profile.scheduler_bind_address)),
        port_open(KUBE_CONTROLLER_MANAGER_PORT, addr(profile.controller_manager_bind_address)),
        *(
            file_available(str(manifests / f"{c}.yaml"), root)
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
        ),
        http_proxy_check(identity.advertise_address),
    ]
    checks += [http_proxy_cidr_check(c) for c in profile.service_subnets]
    checks += [http_proxy_cidr_check(c) for c in profile.pod_subnets]
    families = _families(profile.service_subnets) | _families(profile.pod_subnets)
    # addCommonChecks
    checks += [
        cri_check(profile.cri_socket),
        cri_version_check(profile.cri_socket),
        swap(host),
        # conntrack only for Kubernetes < 1.32, never in the version table
        in_path("losetup"),
        in_path("mount"),
        in_path("cp"),
        system_verification_check(host),
        hostname_check(identity.node_name),
        kubelet_version_check(profile.kubeadm_version, profile.kubernetes_version),
        service_check("kubelet"),
        port_open(KUBELET_PORT),
    ]
    families.add(ipaddress.ip_address(identity.advertise_address).version)
    if 4 in families:
        checks.append(file_content(IPV4_FORWARD, b"1", root))
    if 6 in families:
        checks.append(file_content(IPV6_DEFAULT_FORWARDING, b"1", root))
    if profile.external_etcd:
        checks.append(
            external_etcd_version_check(
                profile.external_etcd_http_endpoints,
                root,
                ca_file=profile.external_etcd_ca_file,
                cert_file=profile.external_etcd_cert_file,
                key_file=profile.external_etcd_key_file,
            )
        )
    if profile.local_etcd_data_dir:
        etcd_addr = addr(profile.api_server_advertise_address or identity.advertise_address)
        checks += [
            port_open(ETCD_LISTEN_CLIENT_PORT, etcd_addr),
            port_open(ETCD_LISTEN_PEER_PORT, etcd_addr),
            dir_available(profile.local_etcd_data_dir, root),
        ]
    if profile.external_etcd:
        checks += [
            file_existing(f, root, label="ExternalEtcdClientCertificates")
            for f in (
                profile.external_etcd_ca_file,
                profile.external_etcd_cert_file,
                profile.external_etcd_key_file,
            )
            if f
        ]
    return checks


# --- running --------------------------------------------------------------------------------


def run_checks(
    checks: Sequence[Check], *, target: Target, ignore: Iterable[str], out: TextIO
) -> Report:
    """RunChecks: every applicable check runs; errors of ignored checks become warnings.
    Warnings and errors are printed as kubeadm prints them; nothing is raised here."""
    ignored = {s.lower() for s in ignore}
    report = Report()
    for c in checks:
        if target is Target.IMAGE and c.live:
            if c.name not in report.not_applicable:
                report.not_applicable.append(c.name)
            continue
        try:
            warnings, errors = c.check()
        except CheckError as err:
            warnings, errors = [], [str(err)]
        report.ran.append(c.name)
        if "all" in ignored or c.name.lower() in ignored:
            warnings, errors = warnings + errors, []
        for w in warnings:
            report.warnings.append((c.name, w))
            print(f"[preflight] [WARNING {c.name}]: {w}", file=out, flush=True)
        for msg in errors:
            report.errors.append((c.name, msg))
            print(f"[preflight] [ERROR {c.name}]: {msg}", file=out, flush=True)
    return report


def raise_for(report: Report) -> None:
    """One PhaseFailed naming every failed check, with the ignore hint."""
    if not report.errors:
        return
    names = list(dict.fromkeys(n for n, _ in report.errors))
    detail = "; ".join(f"[{n}] {' '.join(m.split())}" for n, m in report.errors)
    raise PhaseFailed(
        f"{len(names)} preflight check{'s' if len(names) > 1 else ''} failed: {detail}",
        hint="fix them or pass --ignore-preflight-errors=" + ",".join(names),
    )


def run_preflight(
    profile: Profile,
    identity: Identity,
    root: Path,
    *,
    ignore: Iterable[str] = (),
    out: TextIO,
    host: Host = LIVE,
    preload: Sequence[Preload] = (),
    store: ImageStore | None = None,
) -> Report:
    """runPreflight: the root check alone (fail fast), the node checks, then the images; each
    stage raises PhaseFailed on errors before the next one starts, as in kubeadm. The image
    stage imports the `preload` archives first (kubeinit's air-gapped pull, kubeinit.preload)."""
    ignore = {*(s.lower() for s in ignore), *profile.ignore_preflight_errors}
    total = Report()

    def log(text: str) -> None:
        print(f"[preflight] {text}", file=out, flush=True)

    pull = image_pull_check(
        profile.cri_socket,
        profile.images,
        profile.image_pull_policy,
        preload=preload,
        store=store,
        root=root,
        sandbox_image=pause_image(profile.images),
        log=log,
        imported=total.imported,
    )
    stages = (
        [is_privileged_user()],
        init_node_checks(profile, identity, root, host),
        [pull],
    )
    for i, stage in enumerate(stages):
        if i == 2 and store and store.images and not preload and profile.target is Target.NODE:
            log(
                f"Verifying the {len(store.images)} images {store.mode or 'preloaded'} in this"
                " image's containerd store; nothing is imported or pulled"
            )
        if i == 2 and preload and profile.target is Target.NODE:
            # kubeadm prints "Pulling images required for setting up a Kubernetes cluster"
            log(
                f"Importing the {len(preload)} images preloaded in this image into the"
                " container runtime where missing; nothing is pulled"
            )
        report = run_checks(stage, target=profile.target, ignore=ignore, out=out)
        total.warnings += report.warnings
        total.errors += report.errors
        total.ran += report.ran
        total.not_applicable += [n for n in report.not_applicable if n not in total.not_applicable]
        raise_for(report)
    return total
