"""First boot and the image's profile (kubeinit.profile, written by kubeinit-build): which
configuration first boot runs with, and the pre-rendered files filled with this node's identity.

The configuration, when `kubeinit init` gets no --config:
  1. /etc/kubeinit/config.yaml (kubeinit-build writes the profile's configuration there; an
     operator or cloud-init may replace it before first boot);
  2. the profile's configuration (its `config`; "" stands for kubeadm's defaults);
  3. kubeadm's defaults.
The node identity follows kubeinit.identity: kernel command line, systemd credentials, that
configuration, then the profile's configuration, then detection.

The profile's templates (static Pods, kubeconfigs, kubelet files) are written, filled with the
identity, when they are what a live render would produce: the run's configuration is the one
the image was built with (same text, same Kubernetes version), the advertise address has the
family the templates were rendered for, kubeinit's environment has no *_proxy variable (kubeadm
copies those into the static Pods; the builder rendered without), and the identity values are
plain YAML scalars (a node name such as `true` would need quotes in the files). Otherwise every
file is rendered live, and the reason is printed once. tests/firstboot/test_templates.py holds
the filled templates to a live render for the same identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kubeinit import paths
from kubeinit.config import Config, load_config, parse_config, read_config_text

if TYPE_CHECKING:
    from firstboot.context import InitContext
    from kubeinit.identity import Identity
    from kubeinit.profile import Profile

FROM_PROFILE = "from the image's profile"


@dataclass(frozen=True)
class BootConfig:
    config: Config
    text: str | None  # the configuration's text; None = kubeadm's defaults, no file
    profile: Profile | None  # the image's profile, when there is one
    baked: Config | None  # the profile's configuration when `config` came from elsewhere


def load_boot_config(root: Path, explicit: Path | None) -> BootConfig:
    """The configuration of this run and the image's profile (see the module docstring)."""
    profile = None
    if paths.under(root, paths.PROFILE).exists():
        from kubeinit.profile import load_profile

        profile = load_profile(root)
    path = explicit
    if path is None and paths.under(root, paths.NODE_CONFIG).exists():
        path = paths.under(root, paths.NODE_CONFIG)
    if path is not None:
        text = read_config_text(path)
        config = parse_config(text, source=str(path))
    elif profile is not None:
        text = profile.config
        source = str(paths.under(root, paths.PROFILE))
        config = parse_config(text, source=source) if text else load_config(None)
        return BootConfig(config, text, profile, None)
    else:
        return BootConfig(load_config(None), None, None, None)
    baked = None
    if profile is not None:
        source = str(paths.under(root, paths.PROFILE))
        baked = parse_config(profile.config, source=source) if profile.config else None
    return BootConfig(config, text, profile, baked)


def templates_decision(
    boot: BootConfig, identity: Identity, environ: Mapping[str, str]
) -> tuple[bool, str]:
    """(use the profile's templates, the line saying what first boot does)."""
    import ipaddress

    from kubeinit import goyaml, manifests

    profile = boot.profile
    if profile is None:
        return False, ""
    why = ""
    if (boot.text or "") != profile.config:
        why = f"{boot.config.source} is not the configuration the image was built with"
    elif boot.config.release.version != profile.kubernetes_version:
        why = (
            f"the configuration deploys {boot.config.release.version}, the profile was built"
            f" for {profile.kubernetes_version}"
        )
    elif ipaddress.ip_address(identity.advertise_address).version != profile.address_family:
        why = (
            f"the profile's templates are for IPv{profile.address_family} nodes, this node"
            f" advertises {identity.advertise_address}"
        )
    elif manifests.proxy_env(environ):
        why = "kubeinit's environment sets *_proxy variables, which the static Pods inherit"
    else:
        for value in (identity.node_name, identity.advertise_address):
            if goyaml.dumps({"v": value}) != f"v: {value}\n":
                why = f"{value!r} needs quoting in YAML"
                break
    head = f"profile: kubeinit {profile.kubeinit_version}, Kubernetes {profile.kubernetes_version}"
    if why:
        return False, f"{head}: rendering every file live ({why})"
    return True, (
        f"{head}: writing its pre-rendered files for node {identity.node_name},"
        f" {identity.advertise_address}"
    )


def template(ctx: InitContext, table: Mapping[str, str], node_path: PurePosixPath | str) -> str:
    """The profile's template for `node_path` in `table` (e.g. `ctx.profile.static_pods`)
    filled with the node identity, or "" when this run renders live."""
    if not ctx.use_templates or ctx.profile is None:
        return ""
    text = table.get(str(node_path))
    if text is None:
        return ""
    if _external_ca_controller_manager(ctx, table, node_path):
        # The builder rendered the controller-manager with the CA key present
        # (--cluster-signing-*); with an external CA kubeadm blanks those flags, so this one
        # file is rendered live (kubeinit.flags.controller_manager_command).
        ctx.notes.append(
            "external CA (ca.key absent): rendered live, without the image's"
            " --cluster-signing-* flags"
        )
        return ""
    return ctx.profile.fill(text, ctx.identity)


def _external_ca_controller_manager(
    ctx: InitContext, table: Mapping[str, str], node_path: PurePosixPath | str
) -> bool:
    from kubeinit import flags, manifests

    return (
        ctx.profile is not None
        and table is ctx.profile.static_pods
        and PurePosixPath(node_path) == manifests.manifest_path(flags.KUBE_CONTROLLER_MANAGER)
        and flags.using_external_ca(ctx.root, ctx.config.cluster.certificates_dir)
    )
