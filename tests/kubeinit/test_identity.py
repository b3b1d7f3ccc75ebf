"""Node identity at boot: kernel command line over systemd credentials over the configuration
over detection; an invalid override is a clear error with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from kubeinit.config import load_config
from kubeinit.errors import InvalidInput
from kubeinit.identity import kernel_cmdline_values, resolve_identity
from tests.conftest import REPO, config_path


def _creds(tmp_path: Path, **values: str) -> Path:
    d = tmp_path / "creds"
    d.mkdir(exist_ok=True)
    for k, v in values.items():
        (d / k).write_text(v + "\n")
    return d


@pytest.mark.parametrize(("cmdline", "creds", "expected"), [
    ("", {}, ("cp1", "192.0.2.10")),
    ("", {"kubeinit.node-name": "from-cred"}, ("from-cred", "192.0.2.10")),
    ("quiet kubeinit.node-name=from-kernel", {"kubeinit.node-name": "from-cred"},
     ("from-kernel", "192.0.2.10")),
    ("kubeinit.advertise-address=10.1.2.3", {"kubeinit.advertise-address": "10.9.9.9"},
     ("cp1", "10.1.2.3")),
    ('root=/dev/vda "kubeinit.node-name=quoted-name" kubeinit.node-name=last-wins',
     {}, ("last-wins", "192.0.2.10")),
], ids=["config", "credential-over-config", "kernel-over-credential",
        "kernel-address-over-credential", "quotes-and-last-word"])
def test_precedence(tmp_path: Path, cmdline: str, creds: dict[str, str],
                    expected: tuple[str, str]) -> None:
    f = tmp_path / "cmdline"
    f.write_text(cmdline + "\n")
    identity = resolve_identity(load_config(config_path("default")), cmdline=f,
                                credentials_dir=_creds(tmp_path, **creds))
    assert (identity.node_name, identity.advertise_address) == expected


def test_explicit_flag_wins_over_kernel(tmp_path: Path) -> None:
    f = tmp_path / "cmdline"
    f.write_text("kubeinit.node-name=kernel\n")
    identity = resolve_identity(load_config(config_path("default")), node_name="flag",
                                cmdline=f)
    assert identity.node_name == "flag"


@pytest.mark.parametrize(("cmdline", "message"), [
    ("kubeinit.advertise-address=300.1.2.3", "is not a usable advertise address"),
    ("kubeinit.advertise-address=0.0.0.0", "is not a usable advertise address"),
    ("kubeinit.node-name=Bad_Name", "is not a valid node name"),
], ids=["not-an-ip", "unspecified", "bad-node-name"])
def test_invalid_kernel_override_is_rejected(tmp_path: Path, cmdline: str, message: str) -> None:
    f = tmp_path / "cmdline"
    f.write_text(cmdline)
    with pytest.raises(InvalidInput, match=message) as e:
        resolve_identity(load_config(config_path("default")), cmdline=f)
    assert f"kernel command line ({f})" in e.value.message


def test_invalid_credential_names_the_file(tmp_path: Path) -> None:
    creds = _creds(tmp_path, **{"kubeinit.advertise-address": "nope"})
    with pytest.raises(InvalidInput, match=r"systemd credential .*kubeinit\.advertise-address"):
        resolve_identity(load_config(config_path("default")), credentials_dir=creds)


def test_cli_exits_2_on_an_invalid_kernel_override(tmp_path: Path) -> None:
    """Through the real CLI: nothing is written, exit code 2, one clear line plus a hint."""
    f = tmp_path / "cmdline"
    f.write_text("BOOT_IMAGE=/vmlinuz kubeinit.advertise-address=192.0.2.999 ro\n")
    root = tmp_path / "root"
    res = subprocess.run([sys.executable, "-m", "firstboot", "init", "--local-only", "--root",
                          str(root), "--config", str(config_path("default")),
                          "--kernel-cmdline", str(f)], capture_output=True, text=True,
                         cwd=REPO, check=False, timeout=120)
    assert res.returncode == 2, res.stderr
    assert ("kernel command line" in res.stderr
            and "kubeinit.advertise-address='192.0.2.999'" in res.stderr)
    assert "hint:" in res.stderr
    assert not root.exists() or not any(root.rglob("*.crt"))


def test_cli_reads_root_proc_cmdline_by_default(tmp_path: Path) -> None:
    """<root>/proc/cmdline names the node: the apiserver certificate carries that name."""

    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cmdline").write_text("quiet kubeinit.node-name=from-root-cmdline\n")
    res = subprocess.run([sys.executable, "-m", "firstboot", "init", "--root", str(root),
                          "--config", str(config_path("default")), "phase", "certs", "all"],
                         capture_output=True, text=True, cwd=REPO, check=False, timeout=300)
    assert res.returncode == 0, res.stderr
    cert = x509.load_pem_x509_certificate(
        (root / "etc/kubernetes/pki/apiserver.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "from-root-cmdline" in names.get_values_for_type(x509.DNSName)


def test_kernel_cmdline_parser() -> None:
    assert kernel_cmdline_values('a kubeinit.node-name="x y" kubeinit.other=1') == {
        "kubeinit.node-name": "x y"}
