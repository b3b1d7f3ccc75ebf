"""The static Pod manifests kubeadm writes to /etc/kubernetes/manifests, as pure functions.

Ported from kubeadm (k8s.io/kubernetes cmd/kubeadm/app, tags v1.35.4, v1.36.3, v1.37.2):
phases/controlplane/manifests.go (GetStaticPodSpecs: probes, resources, ports, annotations),
phases/controlplane/volumes.go (hostPath volumes), phases/etcd/local.go (GetEtcdPodSpec),
util/staticpod/utils.go (ComponentPod, probes, probe addresses, file modes) and util/env.go
(proxy variables). The command lines are in `kubeinit.flags`; what differs by version is in
`kubeinit.versions.Minor`.

Nothing here writes files: `render_*` return the bytes kubeadm would write (its API codec's
JSON turned into YAML, see `kubeinit.goyaml`); the phases and the image builder write them.
Host facts are read only under `root`: which CA-trust directories exist (extra volumes) and
whether the cluster CA key is absent (external CA). Node identity enters only through
`Identity`; the *_proxy variables kubeadm copies from its own environment through `environ`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from kubeinit import goyaml, paths
from kubeinit.config import Config, EnvVar, ExternalEtcd, HostPathMount, arg_value
from kubeinit.errors import InvalidInput
from kubeinit.flags import (
    ETCD,
    ETCD_CLIENT_PORT,
    ETCD_METRICS_PORT,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    advertise_ip,
    apiserver_command,
    controller_manager_command,
    etcd_command,
    etcd_image,
    exists_on_target,
    go_clean,
    is_ipv6,
    join_host_port,
    scheduler_command,
)
from kubeinit.identity import Identity

CONTROL_PLANE_COMPONENTS = (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER)

# constants.go
PROBE_PORT = "probe-port"
KUBE_CONTROLLER_MANAGER_PORT = 10257
KUBE_SCHEDULER_PORT = 10259
SYSTEM_NODE_CRITICAL_PRIORITY = 2000001000
APISERVER_ENDPOINT_ANNOTATION = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
ETCD_CLIENT_URLS_ANNOTATION = "kubeadm.kubernetes.io/etcd.advertise-client-urls"
# staticpod.WriteStaticPodToDisk: os.MkdirAll(manifestDir, 0700), os.WriteFile(..., 0600).
MANIFEST_MODE = 0o600
MANIFESTS_DIR_MODE = 0o700
# etcdutil.CreateDataDirectory: os.MkdirAll(dataDir, 0700).
ETCD_DATA_DIR_MODE = 0o700

# volumes.go: mounted into kube-apiserver and kube-controller-manager when present on the host,
# because /etc/ssl/certs may hold symlinks into them.
CA_CERTS_VOLUME = ("ca-certs", "/etc/ssl/certs")
CA_CERTS_EXTRA_PATHS = (
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
)
FLEXVOLUME_DEFAULT_DIR = str(paths.FLEXVOLUME_DIR)

_DIRECTORY_OR_CREATE = "DirectoryOrCreate"
_FILE_OR_CREATE = "FileOrCreate"


def manifest_path(component: str) -> PurePosixPath:
    """kubeadmconstants.GetStaticPodFilepath."""
    return paths.MANIFESTS_DIR / f"{component}.yaml"


def _probe_address(address: str) -> str:
    """staticpod getProbeAddress: an unspecified bind address cannot be probed; an empty host
    makes the kubelet probe the Pod IP."""
    return "" if address in ("0.0.0.0", "::") else address


def proxy_env(environ: Mapping[str, str]) -> list[EnvVar]:
    """util/env.go GetProxyEnvVars: every variable whose name ends in _proxy, any case, with a
    non-empty value."""
    return [
        EnvVar(name=k, value=v) for k, v in environ.items() if k.lower().endswith("_proxy") and v
    ]


def _env_var(env: EnvVar) -> dict[str, Any]:
    out: dict[str, Any] = {"name": env.name}
    if env.value:
        out["value"] = env.value
    if env.value_from:
        value_from = {
            k: dict(v) if isinstance(v, Mapping) else v for k, v in env.value_from.items()
        }
        field_ref = value_from.get("fieldRef")
        if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"  # v1beta4 SetDefaults_EnvVar
        out["valueFrom"] = value_from
    return out


def merge_env(*lists: Sequence[EnvVar]) -> list[dict[str, Any]]:
    """util/env.go MergeKubeadmEnvVars: later lists win by name; sorted by name."""
    merged: dict[str, EnvVar] = {}
    for envs in lists:
        for env in envs:
            merged[env.name] = env
    return [_env_var(merged[name]) for name in sorted(merged)]


def _check_supported(config: Config) -> None:
    if config.cluster.feature_gates.get("RootlessControlPlane"):
        raise InvalidInput(
            f"{config.source}: featureGates: RootlessControlPlane is not supported by kubeinit",
            hint="remove the gate; kubeadm's alpha rootless mode creates users at init time",
        )
    if config.init.patches is not None and config.init.patches.directory:
        raise InvalidInput(
            f"{config.source}: patches.directory: kubeadm patches are not supported by kubeinit",
            hint="put the change into extraArgs, extraVolumes or extraEnvs instead",
        )


# --- probes --------------------------------------------------------------------------------------


def _probe(
    host: str, path: str, scheme: str, *, initial_delay: int, failure_threshold: int, period: int
) -> dict[str, Any]:
    """staticpod createHTTPProbe; zero-valued int fields are omitted (omitempty)."""
    http_get: dict[str, Any] = {"path": path, "port": PROBE_PORT, "scheme": scheme}
    if host:
        http_get["host"] = host
    probe: dict[str, Any] = {
        "httpGet": http_get,
        "timeoutSeconds": 15,
        "periodSeconds": period,
        "failureThreshold": failure_threshold,
    }
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def liveness_probe(host: str, path: str, scheme: str) -> dict[str, Any]:
    return _probe(host, path, scheme, initial_delay=10, failure_threshold=8, period=10)


def readiness_probe(host: str, path: str, scheme: str) -> dict[str, Any]:
    return _probe(host, path, scheme, initial_delay=0, failure_threshold=3, period=1)


def startup_probe(host: str, path: str, scheme: str, config: Config) -> dict[str, Any]:
    """failureThreshold covers timeouts.controlPlaneComponentHealthCheck at a 10 s period."""
    timeout = config.init.timeouts.control_plane_component_health_check.total_seconds()
    threshold = math.ceil(timeout / 10)
    return _probe(host, path, scheme, initial_delay=10, failure_threshold=threshold, period=10)


def _go_url_host_port(url: str) -> tuple[str, str, str] | None:
    """(scheme, hostname, port) as Go's url.Parse + Hostname() + Port() see them; None where
    url.Parse fails."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", url)
    if not m:
        return None if ":" in url.split("/", 1)[0] else ("", "", "")
    scheme, rest = m.group(1).lower(), m.group(2)
    if not rest.startswith("//"):
        return scheme, "", ""
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    hostport = authority.rsplit("@", 1)[-1]
    host, port = hostport, ""
    colon = hostport.rfind(":")
    if colon != -1 and (hostport.startswith("[") is False or hostport.rfind("]") < colon):
        host, port = hostport[:colon], hostport[colon + 1 :]
        if not port.isdigit() and port != "":
            return None  # url.Parse: invalid port
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return scheme, host, port


def etcd_probe_endpoint(config: Config, ipv6: bool) -> tuple[str, int, str]:
    """staticpod GetEtcdProbeEndpoint: from the first --listen-metrics-urls the user gives."""
    localhost = "::1" if ipv6 else "127.0.0.1"
    default = (localhost, ETCD_METRICS_PORT, "HTTP")
    local = config.cluster.etcd.local
    urls = arg_value(local.extra_args, "listen-metrics-urls") if local else None
    if urls is None:
        return default
    parsed = _go_url_host_port(urls.split(",")[0])
    if parsed is None:
        return default
    scheme, host, port_text = parsed
    port = ETCD_METRICS_PORT
    if port_text and port_text.isdigit() and 1 <= int(port_text) <= 65535:
        port = int(port_text)
    return host or localhost, port, "HTTPS" if scheme == "https" else "HTTP"


# --- volumes -------------------------------------------------------------------------------------


def _volume(name: str, host_path: str, path_type: str) -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": host_path, "type": path_type}}


def _mount(name: str, mount_path: str, read_only: bool) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": name, "mountPath": mount_path}
    if read_only:
        mount["readOnly"] = True
    return mount


class _Mounts:
    """volumes.go controlPlaneHostPathMounts: one volume and one mount per name and component;
    a later mount of the same name replaces the earlier one."""

    def __init__(self) -> None:
        self.volumes: dict[str, dict[str, dict[str, Any]]] = {}
        self.mounts: dict[str, dict[str, dict[str, Any]]] = {}

    def add(
        self,
        component: str,
        name: str,
        path: str,
        *,
        read_only: bool,
        path_type: str,
        mount_path: str | None = None,
    ) -> None:
        """NewHostPathMount; the mount path is the host path unless given."""
        host_path, mount_path = path, path if mount_path is None else mount_path
        self.volumes.setdefault(component, {})[name] = _volume(name, host_path, path_type)
        self.mounts.setdefault(component, {})[name] = _mount(name, mount_path, read_only)

    def add_extra(self, component: str, extra: Sequence[HostPathMount]) -> None:
        for v in extra:
            self.add(
                component,
                v.name,
                v.host_path,
                mount_path=v.mount_path,
                read_only=v.read_only,
                path_type=str(v.path_type),
            )

    def volume_list(self, component: str) -> list[dict[str, Any]]:
        vols = self.volumes.get(component, {})
        return [vols[n] for n in sorted(vols)]

    def mount_list(self, component: str) -> list[dict[str, Any]]:
        mounts = self.mounts.get(component, {})
        return [mounts[n] for n in sorted(mounts)]


def external_etcd_cert_dirs(external: ExternalEtcd, cert_dir: str) -> list[str]:
    """volumes.go getEtcdCertVolumes: directories of the external etcd CA/cert/key that are not
    already mounted, with parents absorbing children; returned sorted (sets.List)."""
    dirs: set[str] = set()
    for cert_path in (external.ca_file, external.cert_file, external.key_file):
        d = os.path.dirname(cert_path) or "."
        d = go_clean(d)
        if (
            d == "."
            or any(d.startswith(p) for p in CA_CERTS_EXTRA_PATHS)
            or d.startswith(CA_CERTS_VOLUME[1])
            or d.startswith(cert_dir)
        ):
            continue
        already = False
        for existing in sorted(dirs):
            if existing.startswith(d):
                dirs.discard(existing)
            elif d.startswith(existing):
                already = True
        if not already:
            dirs.add(d)
    return sorted(dirs)


def control_plane_mounts(config: Config, root: Path) -> _Mounts:
    """volumes.go getHostPathVolumesForTheControlPlane."""
    c = config.cluster
    pki = c.certificates_dir
    m = _Mounts()
    ca_name, ca_path = CA_CERTS_VOLUME
    m.add(KUBE_APISERVER, "k8s-certs", pki, read_only=True, path_type=_DIRECTORY_OR_CREATE)
    m.add(KUBE_APISERVER, ca_name, ca_path, read_only=True, path_type=_DIRECTORY_OR_CREATE)
    if c.etcd.external is not None:
        for i, d in enumerate(external_etcd_cert_dirs(c.etcd.external, pki)):
            m.add(
                KUBE_APISERVER, f"etcd-certs-{i}", d, read_only=True, path_type=_DIRECTORY_OR_CREATE
            )
    m.add(KUBE_CONTROLLER_MANAGER, "k8s-certs", pki, read_only=True, path_type=_DIRECTORY_OR_CREATE)
    m.add(KUBE_CONTROLLER_MANAGER, ca_name, ca_path, read_only=True, path_type=_DIRECTORY_OR_CREATE)
    kcm_conf = str(paths.CONTROLLER_MANAGER_CONF)
    m.add(
        KUBE_CONTROLLER_MANAGER, "kubeconfig", kcm_conf, read_only=True, path_type=_FILE_OR_CREATE
    )
    if config.release.major_minor.flexvolume_mount:
        flex = arg_value(c.controller_manager.extra_args, "flex-volume-plugin-dir")
        flex = FLEXVOLUME_DEFAULT_DIR if flex is None else flex
        m.add(
            KUBE_CONTROLLER_MANAGER,
            "flexvolume-dir",
            flex,
            read_only=False,
            path_type=_DIRECTORY_OR_CREATE,
        )
    sched_conf = str(paths.SCHEDULER_CONF)
    m.add(KUBE_SCHEDULER, "kubeconfig", sched_conf, read_only=True, path_type=_FILE_OR_CREATE)
    for extra_path in CA_CERTS_EXTRA_PATHS:
        if exists_on_target(root, extra_path):
            name = extra_path.replace("/", "-")[1:]
            for component in (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER):
                m.add(component, name, extra_path, read_only=True, path_type=_DIRECTORY_OR_CREATE)
    m.add_extra(KUBE_APISERVER, c.api_server.extra_volumes)
    m.add_extra(KUBE_CONTROLLER_MANAGER, c.controller_manager.extra_volumes)
    m.add_extra(KUBE_SCHEDULER, c.scheduler.extra_volumes)
    return m


# --- Pods ----------------------------------------------------------------------------------------


def component_pod(
    container: dict[str, Any], volumes: list[dict[str, Any]], annotations: Mapping[str, str] | None
) -> dict[str, Any]:
    """staticpod ComponentPod, as the JSON the API codec writes (omitempty fields left out,
    `status: {}` kept; ObjectMeta.creationTimestamp is omitzero since apimachinery v0.34, so it
    is absent at every supported version)."""
    name = container["name"]
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "kube-system",
        "labels": {"component": name, "tier": "control-plane"},
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    spec: dict[str, Any] = {
        "containers": [container],
        "priority": SYSTEM_NODE_CRITICAL_PRIORITY,
        "priorityClassName": "system-node-critical",
        "hostNetwork": True,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": {}}


def _container(
    name: str,
    image: str,
    command: list[str],
    *,
    mounts: list[dict[str, Any]],
    probes: Mapping[str, dict[str, Any] | None],
    requests: Mapping[str, str],
    env: list[dict[str, Any]],
    port: int,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # hard-coded in kubeadm, not nodeRegistration's
        "command": command,
        "ports": [{"name": PROBE_PORT, "containerPort": port, "protocol": "TCP"}],
        "resources": {"requests": dict(requests)},
    }
    if mounts:
        container["volumeMounts"] = mounts
    if env:
        container["env"] = env
    for key, probe in probes.items():
        if probe is not None:
            container[key] = probe
    return container


def _probes(
    config: Config, host: str, scheme: str, *, live: str, ready: str | None, start: str
) -> dict[str, dict[str, Any] | None]:
    return {
        "livenessProbe": liveness_probe(host, live, scheme),
        "readinessProbe": readiness_probe(host, ready, scheme) if ready else None,
        "startupProbe": startup_probe(host, start, scheme, config),
    }


def control_plane_pod(
    component: str, config: Config, identity: Identity, root: Path, environ: Mapping[str, str]
) -> dict[str, Any]:
    """manifests.go GetStaticPodSpecs for one component, as the Pod object."""
    _check_supported(config)
    c = config.cluster
    mounts = control_plane_mounts(config, root)
    proxies = proxy_env(environ)
    image = config.release.image(component)
    if component == KUBE_APISERVER:
        address = advertise_ip(identity)
        bind_port = config.init.local_api_endpoint.bind_port
        container = _container(
            component,
            image,
            apiserver_command(config, identity),
            mounts=mounts.mount_list(component),
            probes=_probes(
                config,
                _probe_address(address),
                "HTTPS",
                live="/livez",
                ready="/readyz",
                start="/livez",
            ),
            requests={"cpu": "250m"},
            env=merge_env(proxies, c.api_server.extra_envs),
            port=bind_port,
        )
        annotations = {APISERVER_ENDPOINT_ANNOTATION: join_host_port(address, bind_port)}
        return component_pod(container, mounts.volume_list(component), annotations)
    if component == KUBE_CONTROLLER_MANAGER:
        bind = arg_value(c.controller_manager.extra_args, "bind-address")
        host = "127.0.0.1" if bind is None else _probe_address(bind)
        container = _container(
            component,
            image,
            controller_manager_command(config, root),
            mounts=mounts.mount_list(component),
            probes=_probes(config, host, "HTTPS", live="/healthz", ready=None, start="/healthz"),
            requests={"cpu": "200m"},
            env=merge_env(proxies, c.controller_manager.extra_envs),
            port=KUBE_CONTROLLER_MANAGER_PORT,
        )
        return component_pod(container, mounts.volume_list(component), None)
    if component == KUBE_SCHEDULER:
        bind = arg_value(c.scheduler.extra_args, "bind-address")
        host = "127.0.0.1" if bind is None else _probe_address(bind)
        container = _container(
            component,
            image,
            scheduler_command(config),
            mounts=mounts.mount_list(component),
            probes=_probes(config, host, "HTTPS", live="/livez", ready="/readyz", start="/livez"),
            requests={"cpu": "100m"},
            env=merge_env(proxies, c.scheduler.extra_envs),
            port=KUBE_SCHEDULER_PORT,
        )
        return component_pod(container, mounts.volume_list(component), None)
    raise KeyError(component)


def etcd_pod(config: Config, identity: Identity) -> dict[str, Any]:
    """local.go GetEtcdPodSpec for `init`. No proxy variables: etcd gets only its extraEnvs."""
    _check_supported(config)
    local = config.cluster.etcd.local
    if local is None:
        raise ValueError("etcd static Pod manifest cannot be generated for external etcd")
    address = advertise_ip(identity)
    etcd_certs = config.cluster.certificates_dir + "/etcd"  # string concatenation in kubeadm
    volumes = [
        _volume("etcd-certs", etcd_certs, _DIRECTORY_OR_CREATE),
        _volume("etcd-data", local.data_dir, _DIRECTORY_OR_CREATE),
    ]
    # The mounts keep kubeadm's literal order (data first), the volumes are sorted by name.
    mounts = [_mount("etcd-data", local.data_dir, False), _mount("etcd-certs", etcd_certs, False)]
    host, port, scheme = etcd_probe_endpoint(config, is_ipv6(address))
    container = _container(
        ETCD,
        etcd_image(config),
        etcd_command(config, identity),
        mounts=mounts,
        probes=_probes(config, host, scheme, live="/livez", ready="/readyz", start="/readyz"),
        requests={"cpu": "100m", "memory": "100Mi"},
        env=merge_env(local.extra_envs),
        port=port,
    )
    annotations = {
        ETCD_CLIENT_URLS_ANNOTATION: f"https://{join_host_port(address, ETCD_CLIENT_PORT)}"
    }
    return component_pod(container, volumes, annotations)


def render_control_plane_pod(
    component: str, config: Config, identity: Identity, root: Path, environ: Mapping[str, str]
) -> bytes:
    """The bytes of /etc/kubernetes/manifests/<component>.yaml. `root` is read for host facts
    (CA-trust directories, external CA); `environ` supplies the *_proxy variables kubeadm
    copies from its own environment (first boot passes os.environ)."""
    return goyaml.dumps(control_plane_pod(component, config, identity, root, environ)).encode()


def render_etcd_pod(config: Config, identity: Identity) -> bytes:
    """The bytes of /etc/kubernetes/manifests/etcd.yaml."""
    return goyaml.dumps(etcd_pod(config, identity)).encode()


def render_static_pods(
    config: Config, identity: Identity, root: Path, environ: Mapping[str, str]
) -> dict[str, bytes]:
    """Every manifest `kubeadm init` writes, keyed by component: etcd (local etcd only) and
    the three control-plane components."""
    out: dict[str, bytes] = {}
    if config.cluster.etcd.local is not None:
        out[ETCD] = render_etcd_pod(config, identity)
    for component in CONTROL_PLANE_COMPONENTS:
        out[component] = render_control_plane_pod(component, config, identity, root, environ)
    return out
