"""Render the profile: everything first boot needs that depends only on the configuration, the
pinned version and the image, made by the same renderers first boot uses.

Node identity is not known at build time. The renderers run with a sentinel identity (a node
name and an address from the documentation ranges, RFC 5737 / RFC 3849) and every sentinel in
their output is then replaced by a placeholder (`kubeinit.profile`). Kubeconfig templates are
rendered the same way with sentinel certificate bytes: no key, certificate or token is ever made
at build time.

The renderers read a few facts of the target under a root directory (which CA-trust
directories exist, whether systemd-resolved will run). For `--root` that is the tree itself; for
an image, `mirror_facts` copies just those facts from the image into a scratch directory.
"""

from __future__ import annotations

import base64
import importlib.metadata
import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from builder.target import Target, resolve
from kubeinit import goyaml, kubeconfig, kubelet, manifests, paths, preflight
from kubeinit import profile as prof
from kubeinit.api import addons
from kubeinit.config import Config
from kubeinit.errors import InvalidInput
from kubeinit.fs import write_file
from kubeinit.identity import Identity

SENTINEL_NAME = "kubeinit-sentinel-node-7f3a"
SENTINEL_V4 = "192.0.2.213"
SENTINEL_V6 = "2001:db8:7f3a::d5"
_SENTINEL_CERT = b"kubeinit-sentinel-client-certificate"
_SENTINEL_KEY = b"kubeinit-sentinel-client-key"
_SENTINEL_CA = b"kubeinit-sentinel-ca-certificate"
_SECRET_KEYS = re.compile(r"\b(certificateKey|token)\s*:\s*\S")

# Node paths whose existence the renderers look at (manifests: CA-trust volumes; kubelet:
# systemd-resolved), mirrored from an image into a scratch root.
FACT_PATHS = (
    "/etc/ssl/certs",
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
)
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def kubeinit_version() -> str:
    try:
        return importlib.metadata.version("kubeinit")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def check_config_has_no_secrets(config: Config, text: str) -> None:
    """A bootstrap token or certificate key in the configuration would be baked into every
    clone of the image (field lessons #11)."""
    init = config.init
    if (
        any(t.token for t in init.bootstrap_tokens)
        or init.certificate_key
        or _SECRET_KEYS.search(text)
    ):
        raise InvalidInput(
            f"{config.source}: the configuration holds a bootstrap token or a"
            " certificate key; every clone of the image would share it",
            hint="remove bootstrapTokens[].token and certificateKey: first boot"
            " generates them on each node",
        )


def sentinel_identity(config: Config) -> Identity:
    configured = config.init.local_api_endpoint.advertise_address
    v6 = bool(configured) and ipaddress.ip_address(configured).version == 6
    return Identity(node_name=SENTINEL_NAME, advertise_address=SENTINEL_V6 if v6 else SENTINEL_V4)


def _placeholders(text: str, identity: Identity) -> str:
    out = text.replace(identity.node_name, prof.NODE_NAME)
    ip = ipaddress.ip_address(identity.advertise_address)
    # Whole addresses only: not 192.0.2.2130, not a longer IPv6 address that starts alike.
    if ip.version == 4:
        pattern = rf"(?<![0-9.]){re.escape(str(ip))}(?![0-9]|\.[0-9])"
    else:
        pattern = rf"(?<![0-9A-Fa-f:]){re.escape(str(ip))}(?![0-9A-Fa-f:])"
    return re.sub(pattern, prof.ADVERTISE_ADDRESS, out)


def _check_collision(config_text: str) -> None:
    for s in (SENTINEL_NAME, SENTINEL_V4, SENTINEL_V6, "${KUBEINIT_"):
        if s in config_text:
            raise InvalidInput(
                f"the configuration contains {s!r}, which kubeinit-build uses as a placeholder",
                hint="use another node name or address",
            )


def mirror_facts(t: Target, dest: Path, config: Config) -> Path:
    """A scratch root holding the target's facts the renderers look at."""
    for node_path in FACT_PATHS:
        real = resolve(t, node_path)
        if real is not None and t.kind(real) == "dir":
            (dest / node_path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    cert_dir = PurePosixPath(config.cluster.certificates_dir)
    for name in ("ca.crt", "ca.key"):
        real = resolve(t, str(cert_dir / name))
        if real is not None and t.kind(real) == "file" and name == "ca.crt":
            write_file(dest / str(cert_dir / name).lstrip("/"), t.read(real), 0o644)
    for unit_dir in UNIT_DIRS:
        if resolve(t, unit_dir) is None or t.kind(unit_dir) != "dir":
            continue
        for sub in t.listdir(unit_dir):
            wants = f"{unit_dir}/{sub}"
            if (
                sub.endswith(".wants")
                and t.kind(wants) == "dir"
                and "systemd-resolved.service" in t.listdir(wants)
            ):
                link = dest / wants.lstrip("/") / "systemd-resolved.service"
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to("/usr/lib/systemd/system/systemd-resolved.service")
    masked = "/etc/systemd/system/systemd-resolved.service"
    if t.kind(masked) == "link" and t.readlink(masked) == "/dev/null":
        p = dest / masked.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.unlink(missing_ok=True)
        p.symlink_to("/dev/null")
    return dest


def render_profile(
    config: Config, config_text: str, facts_root: Path, preload: tuple[prof.Preload, ...] = ()
) -> prof.Profile:
    """The profile for `config` (as given in `config_text`) on the target seen in
    `facts_root`."""
    check_config_has_no_secrets(config, config_text)
    _check_collision(config_text)
    ident = sentinel_identity(config)
    family = ipaddress.ip_address(ident.advertise_address).version

    static_pods = {
        str(manifests.manifest_path(component)): _placeholders(data.decode(), ident)
        for component, data in manifests.render_static_pods(
            config, ident, facts_root, environ={}
        ).items()
    }
    kubelet_files = kubelet.render_kubelet_files(
        config,
        ident,
        hostname=ident.node_name,
        systemd_resolved=kubelet.systemd_resolved_active(facts_root, live=False),
    )
    # kubeadm-flags.env depends on the node's hostname (--hostname-override): rendered at boot.
    kubelet_map = {
        str(p): _placeholders(data.decode(), ident)
        for p, data in kubelet_files.items()
        if p != paths.KUBELET_FLAGS_ENV
    }

    kubeconfigs: dict[str, str] = {}
    for spec in kubeconfig.kubeconfig_specs(config, ident):
        text = kubeconfig.render(
            server=spec.server,
            cluster_name=config.cluster.cluster_name,
            user=spec.client_name,
            ca_pem=_SENTINEL_CA,
            client_cert_pem=_SENTINEL_CERT,
            client_key_pem=_SENTINEL_KEY,
        ).decode()
        for sentinel, placeholder in (
            (_SENTINEL_CA, prof.CA_DATA),
            (_SENTINEL_CERT, prof.CLIENT_CERTIFICATE_DATA),
            (_SENTINEL_KEY, prof.CLIENT_KEY_DATA),
        ):
            text = text.replace(base64.b64encode(sentinel).decode(), placeholder)
        kubeconfigs[str(spec.path)] = _placeholders(text, ident)

    addons = render_addons(config, ident)
    rendered = [
        *static_pods.values(),
        *kubelet_map.values(),
        *kubeconfigs.values(),
        *addons.values(),
    ]
    for text in rendered:
        if ident.node_name in text or SENTINEL_V4 in text or SENTINEL_V6 in text:
            raise AssertionError("a sentinel identity survived placeholder substitution")
    return prof.Profile(
        kubeinit_version=kubeinit_version(),
        kubernetes_version=config.release.version,
        address_family=family,
        images=preflight.control_plane_images(config),
        static_pods=static_pods,
        addons=addons,
        kubeconfigs=kubeconfigs,
        kubelet=kubelet_map,
        preflight=preflight.profile_for(config, preflight.Target.NODE),
        config=config_text,
        preload=preload,
    )


def render_addons(config: Config, ident: Identity) -> dict[str, str]:
    """The addon objects `kubeadm init phase addon` creates (kubeinit.api.addons), as YAML
    documents in kubeadm's creation order, identity as placeholders. The node's *_proxy
    variables are not known at build time: first boot re-renders kube-proxy when it has any."""
    out: dict[str, str] = {}
    if not config.cluster.dns.disabled:
        out["coredns"] = _documents(addons.coredns_objects(config).values())
    if not config.cluster.proxy.disabled:
        objects = addons.kube_proxy_objects(config, ident.advertise_address, environ={})
        out["kube-proxy"] = _documents(objects.values())
    return {name: _placeholders(text, ident) for name, text in out.items()}


def _documents(objects: Iterable[Mapping[str, Any]]) -> str:
    return "---\n".join(goyaml.dumps(dict(o)) for o in objects)
