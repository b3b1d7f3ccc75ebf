"""The version table: the one source of truth for everything that differs by Kubernetes version.

Manifests, addons, the kubelet files and the image preload list all read `release_for()`. Values
were read from kubeadm's own source at the pinned tags (cmd/kubeadm/app/constants/constants.go,
phases/certs/certlist.go, features/features.go of k8s.io/kubernetes v1.35.4, v1.36.3, v1.37.2) and
are checked against the real kubeadm binary by tests/oracle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubeinit.errors import InvalidInput

DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io"


@dataclass(frozen=True)
class Minor:
    """What one Kubernetes minor release of kubeadm writes."""

    minor: int
    newest_patch: int  # the pinned default patch for this minor
    etcd_tag: str  # kubeadm's SupportedEtcdVersion / DefaultEtcdVersion
    coredns_tag: str  # CoreDNSVersion
    pause_tag: str  # PauseVersion
    # apiserver-kubelet-client.crt carries O=kubeadm:cluster-admins up to and including this
    # patch; later patches have no O and bind the user through RBAC (kubernetes#138957).
    # -1: no patch of this minor carries the O.
    kubelet_client_org_until_patch: int
    # NodeLocalCRISocket: the CRI socket goes to instance-config.yaml, not a kubelet flag.
    node_local_cri_socket: bool = True
    # ...and the NodeLocalCRISocket feature gate can still switch that off (Beta, default on, in
    # v1.35.4 features/features.go; GA and locked in v1.36; gone in v1.37). Off: kubeadm writes
    # --container-runtime-endpoint to kubeadm-flags.env and no instance-config.yaml
    # (phases/kubelet/flags.go, cmd/phases/init/kubelet.go, phases/kubelet/config.go).
    node_local_cri_socket_gate: bool = False
    # kube-controller-manager mounts the flexvolume plugin dir (read-write, honouring
    # --flex-volume-plugin-dir): phases/controlplane/volumes.go up to v1.35.4, removed in v1.36.
    flexvolume_mount: bool = False
    # etcd flag names follow the etcd image tag: below 3.6.0 the --experimental-* forms
    # (phases/etcd/local.go getEtcdCommand in v1.35.4); v1.36+ always use the 3.6 names.
    etcd_flags_by_image_tag: bool = False
    # The kubeadm feature gates this minor knows (features/features.go InitFeatureGates); any
    # other name in ClusterConfiguration.featureGates is invalid input, as in kubeadm.
    feature_gates: tuple[str, ...] = ("RootlessControlPlane",)


MINORS: dict[int, Minor] = {
    m.minor: m
    for m in (
        Minor(
            35,
            4,
            etcd_tag="3.6.6-0",
            coredns_tag="v1.13.1",
            pause_tag="3.10.1",
            kubelet_client_org_until_patch=4,
            node_local_cri_socket_gate=True,
            flexvolume_mount=True,
            etcd_flags_by_image_tag=True,
            feature_gates=(
                "RootlessControlPlane",
                "ControlPlaneKubeletLocalMode",
                "NodeLocalCRISocket",
                "PublicKeysECDSA",
            ),
        ),
        Minor(
            36,
            3,
            etcd_tag="3.6.8-0",
            coredns_tag="v1.14.2",
            pause_tag="3.10.2",
            kubelet_client_org_until_patch=-1,
            feature_gates=("RootlessControlPlane", "NodeLocalCRISocket", "PublicKeysECDSA"),
        ),
        Minor(
            37,
            2,
            etcd_tag="3.7.0-0",
            coredns_tag="v1.14.6",
            pause_tag="3.10.2",
            kubelet_client_org_until_patch=-1,
        ),
    )
}
DEFAULT_MINOR = max(MINORS)

_VERSION_RE = re.compile(r"\Av?1\.(\d+)\.(\d+)\Z")


@dataclass(frozen=True)
class Release:
    """A concrete Kubernetes version and the images kubeadm uses for it."""

    major_minor: Minor
    patch: int
    image_repository: str = DEFAULT_IMAGE_REPOSITORY

    @property
    def version(self) -> str:
        return f"v1.{self.major_minor.minor}.{self.patch}"

    @property
    def minor(self) -> int:
        return self.major_minor.minor

    def image(self, component: str) -> str:
        """Image of a control-plane component or addon, as `kubeadm config images list`."""
        repo = self.image_repository
        m = self.major_minor
        if component in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
        ):
            return f"{repo}/{component}:{self.version}"
        if component == "etcd":
            return f"{repo}/etcd:{m.etcd_tag}"
        if component == "pause":
            return f"{repo}/pause:{m.pause_tag}"
        if component == "coredns":
            # kubeadm adds the coredns/ path segment only for the default registry
            # (images.GetDNSImage).
            sub = "coredns/" if repo == DEFAULT_IMAGE_REPOSITORY else ""
            return f"{repo}/{sub}coredns:{m.coredns_tag}"
        raise KeyError(component)

    @property
    def kubelet_client_has_org(self) -> bool:
        return self.patch <= self.major_minor.kubelet_client_org_until_patch


def parse_version(text: str, *, field: str = "kubernetesVersion") -> tuple[int, int]:
    """`v1.37.2` -> (37, 2); rejects versions outside the table with the accepted ones."""
    match = _VERSION_RE.match(text.strip())
    supported = ", ".join(f"v1.{m}.x" for m in sorted(MINORS))
    if not match:
        raise InvalidInput(
            f"{field}: {text!r} is not a Kubernetes release version",
            hint=f"use a version like v1.{DEFAULT_MINOR}.{MINORS[DEFAULT_MINOR].newest_patch}"
            f" (supported: {supported})",
        )
    minor, patch = int(match.group(1)), int(match.group(2))
    if minor not in MINORS:
        raise InvalidInput(
            f"{field}: Kubernetes {text} is not supported",
            hint=f"supported minors: {supported}",
        )
    return minor, patch


def release_for(
    version: str | None = None, image_repository: str = DEFAULT_IMAGE_REPOSITORY
) -> Release:
    """The release for a version string, or the pinned default."""
    if version is None:
        minor = MINORS[DEFAULT_MINOR]
        return Release(minor, minor.newest_patch, image_repository)
    m, patch = parse_version(version)
    return Release(MINORS[m], patch, image_repository)


def default_version() -> str:
    return release_for().version
