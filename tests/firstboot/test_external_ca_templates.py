"""firstboot/templates.py with an external CA (issue 9, finding 7): the image's pre-rendered
controller-manager was rendered with the CA key present and carries `--cluster-signing-*`
flags; when ca.key is absent at first boot kubeadm blanks them, so kubeinit renders that one
manifest live (and says so) instead of writing the template. The profile is made by the
builder's own renderer, as kubeinit-build makes it."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from builder.render import render_profile
from firstboot.context import InitContext
from firstboot.phases import control_plane
from firstboot.templates import FROM_PROFILE
from kubeinit import manifests
from kubeinit.config import parse_config
from kubeinit.identity import Identity
from tests.conftest import REPO

CONFIG = REPO / "tests" / "data" / "configs" / "default.yaml"
IDENTITY = Identity("node-a", "192.0.2.10")


def _ca(root: Path, *, with_key: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pki = root / "etc/kubernetes/pki"
    pki.mkdir(parents=True)
    (pki / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if with_key:
        (pki / "ca.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _write_controller_manager(tmp_path: Path, *, with_key: bool) -> tuple[str, list[str], str]:
    text = CONFIG.read_text()
    config = parse_config(text, source=str(CONFIG))
    facts = tmp_path / "facts"
    facts.mkdir()
    profile = render_profile(config, text, facts)
    root = tmp_path / "root"
    _ca(root, with_key=with_key)
    ctx = InitContext(
        config=config,
        root=root,
        identity=IDENTITY,
        start_time=datetime.datetime.now(datetime.UTC),
        profile=profile,
        use_templates=True,
    )
    (cm,) = [p for p in control_plane.PHASE.children if p.name == "controller-manager"]
    assert cm.run is not None
    cm.run(ctx)
    path = manifests.manifest_path(manifests.KUBE_CONTROLLER_MANAGER)
    written = (root / str(path).lstrip("/")).read_text()
    live = manifests.render_control_plane_pod(
        manifests.KUBE_CONTROLLER_MANAGER, config, IDENTITY, root, {}
    ).decode()
    assert "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key" in profile.static_pods[str(path)]
    return written, list(ctx.notes), live


def test_external_ca_renders_the_controller_manager_live(tmp_path: Path) -> None:
    written, notes, live = _write_controller_manager(tmp_path, with_key=False)
    assert written == live
    assert "- --cluster-signing-key-file=\n" in written  # blanked, as kubeadm does
    assert "pki/ca.key" not in written
    assert FROM_PROFILE not in notes
    assert any("external CA" in n for n in notes)


def test_own_ca_keeps_using_the_template(tmp_path: Path) -> None:
    written, notes, live = _write_controller_manager(tmp_path, with_key=True)
    assert written == live
    assert "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key" in written
    assert notes == [FROM_PROFILE]
