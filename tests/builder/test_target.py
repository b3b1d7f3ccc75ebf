"""builder/target.py: symlinks resolve inside the target, never on the build host."""

from __future__ import annotations

import os
from pathlib import Path

from builder.target import TreeTarget, is_file, resolve, which


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "etc/alternatives").mkdir(parents=True)
    (root / "usr/sbin/iptables-legacy").write_text("binary")
    # Debian's alternatives: absolute links, to be read inside the root
    os.symlink("/etc/alternatives/iptables", root / "usr/sbin/iptables")
    os.symlink("/usr/sbin/iptables-legacy", root / "etc/alternatives/iptables")
    os.symlink("usr/sbin", root / "sbin")  # merged /usr, relative
    os.symlink("/loop-b", root / "loop-a")
    os.symlink("/loop-a", root / "loop-b")
    os.symlink("/etc/passwd", root / "usr/sbin/host-escape")  # the host has /etc/passwd
    return root


def test_absolute_links_resolve_inside_the_root(tmp_path: Path) -> None:
    t = TreeTarget(_tree(tmp_path))
    assert resolve(t, "/sbin/iptables") == "/usr/sbin/iptables-legacy"
    assert which(t, "iptables") == "/usr/sbin/iptables-legacy"
    assert is_file(t, "/usr/sbin/iptables")


def test_missing_loops_and_host_paths_are_absent(tmp_path: Path) -> None:
    t = TreeTarget(_tree(tmp_path))
    assert resolve(t, "/loop-a") is None
    assert resolve(t, "/usr/sbin/host-escape") is None  # /etc/passwd of the host is not it
    assert resolve(t, "/usr/sbin/iptables-legacy/x") is None
    assert which(t, "conntrack") is None


def test_space_of_a_missing_path_is_its_filesystems(tmp_path: Path) -> None:
    t = TreeTarget(_tree(tmp_path))
    assert t.space("/usr/lib/kubeinit").available > 0
    assert t.space("/usr/lib/kubeinit").filesystem == t.space("/").filesystem
