"""builder/render.py: node identity becomes placeholders; secrets never reach the profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import render
from builder.target import TreeTarget
from kubeinit import profile as prof
from kubeinit.config import load_config, parse_config
from kubeinit.errors import InvalidInput
from kubeinit.identity import Identity
from tests.builder.conftest import CLUSTER_YAML


@pytest.mark.parametrize(("text", "want"), [
    ("--advertise-address=192.0.2.213", f"--advertise-address={prof.ADVERTISE_ADDRESS}"),
    ("https://192.0.2.213:6443", f"https://{prof.ADVERTISE_ADDRESS}:6443"),
    ("192.0.2.2130 and 192.0.2.21 and 1.192.0.2.213", "192.0.2.2130 and 192.0.2.21 and"
     " 1.192.0.2.213"),
    ("--name=kubeinit-sentinel-node-7f3a", f"--name={prof.NODE_NAME}"),
], ids=["flag", "url", "only-whole-addresses", "name"])
def test_placeholders_replace_whole_values(text: str, want: str) -> None:
    ident = Identity(render.SENTINEL_NAME, render.SENTINEL_V4)
    assert render._placeholders(text, ident) == want


def test_ipv6_sentinel_for_an_ipv6_configuration() -> None:
    config = parse_config("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
                          "localAPIEndpoint:\n  advertiseAddress: fd00::10\n")
    ident = render.sentinel_identity(config)
    assert ident.advertise_address == render.SENTINEL_V6
    assert render._placeholders("https://[2001:db8:7f3a::d5]:6443", ident) == \
        f"https://[{prof.ADVERTISE_ADDRESS}]:6443"


@pytest.mark.parametrize("doc", [
    "kind: InitConfiguration\nbootstrapTokens:\n- token: abcdef.0123456789abcdef\n",
    "kind: InitConfiguration\ncertificateKey: " + "ab" * 32 + "\n",
], ids=["bootstrap-token", "certificate-key"])
def test_secrets_in_the_configuration_are_refused(doc: str) -> None:
    text = "apiVersion: kubeadm.k8s.io/v1beta4\n" + doc
    with pytest.raises(InvalidInput, match="every clone of the image would share it") as e:
        render.check_config_has_no_secrets(parse_config(text), text)
    assert "0123456789abcdef" not in str(e.value) + e.value.hint
    assert "ab" * 32 not in str(e.value) + e.value.hint


def test_a_sentinel_in_the_configuration_is_refused() -> None:
    text = CLUSTER_YAML.read_text() + "apiServer:\n  certSANs: [192.0.2.213]\n"
    with pytest.raises(InvalidInput, match="placeholder"):
        render.render_profile(parse_config(text), text, Path("/nonexistent"))


def test_facts_mirror_copies_only_what_the_renderers_look_at(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/ssl/certs").mkdir(parents=True)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "systemd-resolved.service").symlink_to(
        "/usr/lib/systemd/system/systemd-resolved.service")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    mirror = render.mirror_facts(TreeTarget(root), tmp_path / "facts", load_config(None))
    assert (mirror / "etc/ssl/certs").is_dir()
    assert (mirror / "etc/systemd/system/multi-user.target.wants/systemd-resolved.service"
            ).is_symlink()
    assert not (mirror / "etc/passwd").exists()
    assert not (mirror / "usr/share/ca-certificates").exists()
