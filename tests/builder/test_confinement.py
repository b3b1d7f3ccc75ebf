"""kubeinit-build --root against hostile trees (issue 9, findings 1 and 2) and clone safety.

Real builds of a copy of the real base tree with links planted that lead out of it (absolute,
and relative ones climbing with `..`) towards a decoy directory on the host: the decoy must be
byte-for-byte untouched. A target kubelet that writes a marker file on the host when run must
never be run by the build host.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from kubeinit import paths
from tests.builder.conftest import CLUSTER_YAML, build
from tests.kubeinit.test_hostfs_confinement import make_decoy, tree_digest

pytestmark = [pytest.mark.real, pytest.mark.slow]


def _replace(path: Path) -> None:
    """The tree copy is hard-linked to the shared base tree: never write into its files."""
    if path.is_symlink() or path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)


def _climb(link: Path, target: Path) -> str:
    depth = len(link.parent.relative_to("/").parts)
    return os.path.join(*([".."] * (depth + 2)), *target.parts[1:])


def test_tree_build_with_links_out_of_the_tree_leaves_the_host_alone(
    tree_copy: Path, tmp_path: Path
) -> None:
    root = tree_copy
    decoy = make_decoy(tmp_path)
    before = tree_digest(decoy)
    # Found 1: usr/lib/kubeinit -> a host directory was renamed aside and deleted.
    _replace(root / "usr/lib/kubeinit")
    (root / "usr/lib/kubeinit").symlink_to(decoy / "kubeinit")
    # /etc/kubeinit climbing out with `..` (the config is written there)
    _replace(root / "etc/kubeinit")
    (root / "etc/kubeinit").symlink_to(_climb(root / "etc/kubeinit", decoy))
    # a removal through a link must remove the link, never the host file it names
    seed = root / "var/lib/systemd/random-seed"
    _replace(seed)
    seed.symlink_to(decoy / "state.json")
    # clone safety: host keys and the credential key go, the rest of /etc/ssh stays
    ssh = root / "etc/ssh"
    ssh.mkdir(exist_ok=True)
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key"):
        (ssh / name).write_text("host key\n")
    (ssh / "ssh_host_ecdsa_key").symlink_to(decoy / "pki" / "ca.key")
    (ssh / "sshd_config").write_text("PermitRootLogin no\n")
    cred = root / "var/lib/systemd/credential.secret"
    cred.write_bytes(os.urandom(32))

    res = build("--root", root, "--config", CLUSTER_YAML,
                env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert tree_digest(decoy) == before, "the host decoy changed"
    assert res.rc == 0, res.stderr
    assert "Traceback" not in res.stderr

    lib = root / "usr/lib/kubeinit"
    assert lib.is_dir() and not lib.is_symlink()
    profile = lib / "profile.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600  # holds the 0600 config
    assert json.loads(profile.read_text())["built"] == "2023-11-14T22:13:20Z"
    # etc/kubeinit was followed inside the root (re-rooted), not out of it
    assert paths.under(root, paths.NODE_CONFIG).read_text() == CLUSTER_YAML.read_text()
    assert not seed.is_symlink() and (decoy / "state.json").exists()
    assert sorted(p.name for p in ssh.iterdir()) == ["sshd_config"]
    assert not cred.exists()


def test_tree_build_never_runs_the_trees_kubelet(tree_copy: Path, tmp_path: Path) -> None:
    """Found 2: `kubeinit-build --root DIR --dry-run` ran DIR/usr/bin/kubelet --version as root
    on the host when the ELF carried no Go build information."""
    marker = tmp_path / "ran-on-the-host"
    src = tmp_path / "kubelet.c"
    src.write_text(
        "#include <stdio.h>\n"
        f'int main(void) {{ FILE *f = fopen("{marker}", "w");'
        ' if (f) { fputs("pwned\\n", f); fclose(f); }'
        ' puts("Kubernetes v1.37.2"); return 0; }\n'
    )
    kubelet = tree_copy / "usr/bin/kubelet"
    _replace(kubelet)
    subprocess.run(["gcc", "-O0", "-o", str(kubelet), str(src)], check=True, timeout=120)
    # the program does what it says when run (so the test below can fail) ...
    subprocess.run([str(kubelet), "--version"], check=True, timeout=30, capture_output=True)
    assert marker.exists()
    marker.unlink()
    # ... but the build host never runs it
    res = build("--root", tree_copy, "--dry-run")
    assert not marker.exists(), "the target's kubelet ran on the build host"
    assert "Traceback" not in res.stderr
    assert "cannot tell the version of /usr/bin/kubelet" in res.stderr, res.stderr
    assert "never runs a binary of the target tree" in res.stderr


# Directories a tree build writes into (the payload's parents), and the ones above them.
BUILD_DIRS = ["usr", "usr/bin", "usr/lib", "usr/lib/systemd", "etc", "etc/systemd/system",
              "var/lib", "var/lib/systemd"]


@pytest.mark.parametrize("rel", BUILD_DIRS)
def test_tree_build_follows_an_absolute_link_inside_the_tree_never_on_the_host(
    tree_copy: Path, tmp_path: Path, rel: str
) -> None:
    """The directory is moved to <root><decoy>/moved and replaced by the absolute link
    `<decoy>/moved`: on the node (and with chroot semantics) that is the same directory, so the
    build succeeds; resolved with the build host's view it would write into the host decoy."""
    root = tree_copy
    decoy = make_decoy(tmp_path)
    before = tree_digest(decoy)
    inside = root / decoy.relative_to("/") / "moved"
    inside.parent.mkdir(parents=True)
    (root / rel).rename(inside)
    (root / rel).symlink_to(decoy / "moved")
    res = build("--root", root, "--config", CLUSTER_YAML)
    assert tree_digest(decoy) == before, f"the host decoy changed through {rel}"
    assert res.rc == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert paths.under(root, "/usr/lib/kubeinit/profile.json").is_file()
    assert paths.under(root, "/usr/bin/kubeinit").is_file()
    assert paths.under(root, "/etc/machine-id").read_text() == ""
