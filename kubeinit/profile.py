"""The build-time/boot-time contract: /usr/lib/kubeinit/profile.json (house style §11).

`kubeinit-build` renders everything that depends only on the configuration and the pinned
Kubernetes version into one schema-versioned JSON file; first boot reads it through
`load_profile(root)` and nothing else. What makes one clone differ from another (node name,
advertise address, keys, certificates) is never in it: those spots hold the placeholders below,
filled at boot by `Profile.fill` (field lessons #6, #11).

Schema 1, every key required (unknown keys are rejected):
  schema              1
  kubeinitVersion     the kubeinit that built the image
  kubernetesVersion   the pinned version, e.g. "v1.37.2"
  addressFamily       4 or 6: the family the templates were rendered for (loopback and URL
                      forms differ); a node of the other family renders live instead
  images              the pinned image list (`kubeadm config images list` for this config)
  staticPods          node path -> static Pod manifest, placeholders for node identity
  addons              addon name -> manifests (YAML documents), placeholders for node identity
  kubeconfigs         node path -> kubeconfig template; also placeholders for the CA and the
                      client certificate and key made at boot
  kubelet             node path -> kubelet file (config.yaml, ...), placeholders as above
  preflight           kubeinit.preflight.Profile, encoded (the init pre-flight inputs)
  config              the user's kubeadm configuration file as given ("" = kubeadm defaults)
  preload             OCI archives in the image: {image, archive (node path), digest}
  imageStore          how the images are carried (kubeinit.preload.ImageStore): mode
                      "unpacked" (in containerd's store already) or "archives" (preload,
                      imported at first boot), each image's digest in containerd, and the
                      snapshotter/containerd that unpacked them or why not; optional ({} in
                      images built before it: presence checks only)
  built               when the image was built, RFC 3339 UTC ("2026-12-05T08:00:00Z"):
                      SOURCE_DATE_EPOCH when set (reproducible builds), else the newest file
                      the build ships; first boot does not mint certificates while the clock
                      is behind it (firstboot.timegate). Optional ("" in older profiles)
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeinit import hostfs, paths, schema
from kubeinit.errors import StateUnreadable
from kubeinit.identity import Identity
from kubeinit.preflight import Profile as PreflightProfile
from kubeinit.preload import MODES, ImageStore, Preload

__all__ = ["ImageStore", "Preload", "Profile", "load_profile", "to_data"]  # part of the schema

SCHEMA = 1

# Placeholders. `${...}` is plain text in YAML and JSON, never valid in a node name, an IP
# address or base64, so a filled file can be checked for leftovers.
NODE_NAME = "${KUBEINIT_NODE_NAME}"
ADVERTISE_ADDRESS = "${KUBEINIT_ADVERTISE_ADDRESS}"
CA_DATA = "${KUBEINIT_CA_DATA}"
CLIENT_CERTIFICATE_DATA = "${KUBEINIT_CLIENT_CERTIFICATE_DATA}"
CLIENT_KEY_DATA = "${KUBEINIT_CLIENT_KEY_DATA}"
IDENTITY_PLACEHOLDERS = (NODE_NAME, ADVERTISE_ADDRESS)
ALL_PLACEHOLDERS = (*IDENTITY_PLACEHOLDERS, CA_DATA, CLIENT_CERTIFICATE_DATA, CLIENT_KEY_DATA)


@dataclass(frozen=True)
class Profile:
    kubeinit_version: str
    kubernetes_version: str
    address_family: int
    images: tuple[str, ...]
    static_pods: Mapping[str, str]
    addons: Mapping[str, str]
    kubeconfigs: Mapping[str, str]
    kubelet: Mapping[str, str]
    preflight: PreflightProfile
    config: str
    preload: tuple[Preload, ...] = field(default=())
    image_store: ImageStore = field(default_factory=ImageStore)
    built: str = ""

    def to_json(self) -> str:
        """Deterministic text: sorted keys, fixed indentation, trailing newline."""
        data = {"schema": SCHEMA, **schema.encode(self, omitempty=False)}
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def fill(self, text: str, identity: Identity) -> str:
        """`text` (one of this profile's templates) with the node identity filled in.

        Raises StateUnreadable when the node's address family is not the one the templates
        were rendered for: the caller then renders that file live."""
        address = ipaddress.ip_address(identity.advertise_address)
        if address.version != self.address_family:
            raise StateUnreadable(
                f"the profile's templates are for IPv{self.address_family} nodes, this node"
                f" advertises {identity.advertise_address}",
                hint="render this node's files at boot instead of from the profile",
            )
        return text.replace(NODE_NAME, identity.node_name).replace(ADVERTISE_ADDRESS, str(address))

    def fill_kubeconfig(
        self,
        text: str,
        identity: Identity,
        *,
        ca_pem: bytes,
        client_cert_pem: bytes,
        client_key_pem: bytes,
    ) -> str:
        """A kubeconfig template with the node identity and the credentials made at boot
        (base64, as clientcmd writes byte fields)."""
        out = self.fill(text, identity)
        for placeholder, data in (
            (CA_DATA, ca_pem),
            (CLIENT_CERTIFICATE_DATA, client_cert_pem),
            (CLIENT_KEY_DATA, client_key_pem),
        ):
            out = out.replace(placeholder, base64.b64encode(data).decode())
        return out


def to_data(profile: Profile) -> dict[str, Any]:
    return dict(json.loads(profile.to_json()))


def load_profile(root: Path) -> Profile:
    """The one way first boot reads the profile. Anything but a readable schema-1 profile is a
    StateUnreadable error naming the file and what to do."""
    path = paths.under(root, paths.PROFILE)
    hint = "rebuild the image with the kubeinit-build that matches this kubeinit"
    try:
        text = hostfs.read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise StateUnreadable(
            f"{path}: no kubeinit profile in this image", hint="build the image with kubeinit-build"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise StateUnreadable(f"{path}: cannot read the kubeinit profile: {e}", hint=hint) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        raise StateUnreadable(f"{path}: the kubeinit profile is not JSON: {e}", hint=hint) from None
    if not isinstance(data, dict):
        raise StateUnreadable(f"{path}: the kubeinit profile is not a JSON object", hint=hint)
    version = data.pop("schema", None)
    if version != SCHEMA:
        raise StateUnreadable(
            f"{path}: kubeinit profile schema {version!r} is not supported (this kubeinit reads"
            f" schema {SCHEMA})",
            hint=hint,
        )
    try:
        profile = schema.decode(Profile, data)
    except (schema.DecodeError, TypeError, ValueError) as e:
        raise StateUnreadable(f"{path}: invalid kubeinit profile: {e}", hint=hint) from None
    if profile.image_store.mode not in MODES:
        raise StateUnreadable(
            f"{path}: invalid kubeinit profile: imageStore.mode"
            f" {profile.image_store.mode!r} is not one of {', '.join(m for m in MODES if m)}",
            hint=hint,
        )
    if profile.address_family not in (4, 6):
        raise StateUnreadable(
            f"{path}: invalid kubeinit profile: addressFamily"
            f" {profile.address_family} is not 4 or 6",
            hint=hint,
        )
    return profile
