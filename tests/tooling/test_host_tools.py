"""hack/host-tools.tsv is the truth about host tools: every row is really provided by what it
names (dpkg -S of the resolved file, a hack/k8s-binaries group, the venv), hack/install-deps
installs exactly its Debian packages, and no code runs a tool the table does not list (issue 11:
`nft` was run but installed by nothing)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tooling import host_tools as ht

REPO = ht.REPO
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TABLE = ht.load_table()
COMMANDS = sorted(n for n in TABLE if not n.startswith(("/", "py:", "pc:")))


def install_deps_packages() -> list[str]:
    out = subprocess.run([str(REPO / "hack" / "install-deps"), "--list"], capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.split()


def _twins(path: str) -> list[str]:
    """`path` and its usrmerge twin (/usr/bin/x and /bin/x): dpkg knows only one of them."""
    out = [path]
    for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"), ("/usr/lib/", "/lib/")):
        if path.startswith(a):
            out.append(b + path[len(a):])
        elif path.startswith(b):
            out.append(a + path[len(b):])
    return out


def owners(path: str) -> set[str]:
    """Debian packages owning `path` or any step of its symlink chain (alternatives too)."""
    chain = [path]
    p = path
    for _ in range(10):
        if not os.path.islink(p):
            break
        p = os.path.join(os.path.dirname(p), os.readlink(p))
        chain.append(os.path.normpath(p))
    chain.append(os.path.realpath(path))
    found: set[str] = set()
    for step in chain:
        for candidate in _twins(step):
            out = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True,
                                 timeout=30, check=False)
            for line in out.stdout.splitlines():
                pkgs, _, owned = line.partition(": ")
                if owned.strip() == candidate:
                    found |= {x.strip().split(":")[0] for x in pkgs.split(",")}
    return found


def depends(package: str) -> set[str]:
    """Direct Depends and Pre-Depends of an installed package (python3 -> python3-minimal)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", package],
                         capture_output=True, text=True, timeout=30, check=False)
    return {re.split(r"[\s(:]", alt.strip())[0]
            for dep in out.stdout.split(",") for alt in dep.split("|") if alt.strip()}


def provided_path(name: str) -> str:
    """The file a table row stands for, on this machine."""
    if name.startswith("/"):
        matches = sorted(glob.glob(name))
        assert matches, f"{name} does not exist: run hack/install-deps"
        return matches[-1]
    if name.startswith("py:"):
        code = f"import {name[3:]} as m; print(m.__file__)"
        out = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                             timeout=60, check=False)
        assert out.returncode == 0, f"Debian's python3 cannot import {name[3:]}: {out.stderr}"
        return out.stdout.strip()
    if name.startswith("pc:"):
        out = subprocess.run(["pkg-config", "--path", name[3:]], capture_output=True, text=True,
                             timeout=30, check=False)
        assert out.returncode == 0, f"pkg-config knows no {name[3:]}: {out.stderr}"
        return out.stdout.strip()
    found = shutil.which(name, path=SYSTEM_PATH)
    assert found, f"{name} is not on {SYSTEM_PATH}: run hack/install-deps"
    return found


def test_install_deps_installs_exactly_the_debian_packages_of_the_table() -> None:
    listed = install_deps_packages()
    assert len(listed) == len(set(listed))
    assert set(listed) == ht.debian_packages(TABLE)
    assert "nftables" in listed and "busybox-static" in listed  # issue 11's misses


@pytest.mark.real
@pytest.mark.parametrize("name", [n for n in sorted(TABLE) if TABLE[n].provider not in
                                  ("venv", "preinstalled")
                                  and not TABLE[n].provider.startswith("binaries:")])
def test_each_debian_row_is_provided_by_its_package(name: str) -> None:
    provider = TABLE[name].provider
    path = provided_path(name)
    own = owners(path)
    assert own, f"{name} ({path}) belongs to no Debian package"
    assert provider in own or own & depends(provider), (
        f"{name} ({path}) comes from {sorted(own)}, the table says {provider}"
    )


@pytest.mark.real
@pytest.mark.parametrize("name", sorted(n for n in TABLE
                                        if TABLE[n].provider.startswith("binaries:")))
def test_each_binaries_row_is_built_by_its_group(name: str, k8s_bin: Path) -> None:
    group = TABLE[name].provider.split(":", 1)[1]
    usage = (REPO / "hack" / "k8s-binaries").read_text()
    groups = re.search(r"^#\s+GROUP: ([\w -]+?)\s+\(default", usage, re.M)
    assert groups, "hack/k8s-binaries no longer documents its groups"
    assert group in groups.group(1).split(), f"hack/k8s-binaries has no group {group}"
    assert (k8s_bin / name).is_file() and os.access(k8s_bin / name, os.X_OK), (
        f"{name} is not in {k8s_bin}"
    )


def test_venv_and_preinstalled_rows() -> None:
    extra = re.search(r"^test = \[(.*)\]", (REPO / "pyproject.toml").read_text(), re.M)
    assert extra
    for name, row in TABLE.items():
        if row.provider == "venv":
            assert name == "python" or re.search(rf'"{name}\b', extra.group(1)), (
                f"{name} is not in the test extra"
            )
            assert (REPO / ".venv" / "bin" / name).is_file(), f".venv/bin/{name} missing"
        elif row.provider == "preinstalled":
            assert name == "go", "only the Go toolchain comes with the machine"
            assert shutil.which("go", path=SYSTEM_PATH + ":/usr/local/go/bin")


def _scanned() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    hack_scripts = {p.name for p in (REPO / "hack").iterdir()}
    for path in ht.python_files():
        for cmd, line in ht.python_commands(path):
            name = cmd.rsplit("/", 1)[-1]
            if cmd.startswith("*/") and name in hack_scripts:
                continue  # our own hack/ scripts
            found.setdefault(name, []).append(f"{path.relative_to(REPO)}:{line}")
    for path in ht.shell_scripts():
        for cmd, line in ht.shell_commands(path):
            found.setdefault(cmd, []).append(f"{path.relative_to(REPO)}:{line}")
    return found


def test_no_code_runs_a_tool_missing_from_the_table() -> None:
    found = _scanned()
    # the scan really sees the tools that matter (a broken scanner would find nothing)
    assert {"qemu-system-x86_64", "qemu-img", "nft", "debootstrap", "systemctl"} <= set(found)
    missing = {name: where[:3] for name, where in found.items() if name not in TABLE}
    assert not missing, f"tools run but not in hack/host-tools.tsv: {missing}"


def test_the_shell_scan_finds_commands_where_bash_runs_them(tmp_path: Path) -> None:
    script = tmp_path / "s"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "helper() { nproc; }\n"
        'x=$(nft list tables | wc -l)  # a comment naming fakecmd\n'
        'echo "rules: $(iptables-save 2>/dev/null)"\n'
        "PKGS=(\n  notacommand\n)\n"
        "cat <<EOF\nheredoc-word here\nEOF\n"
        "case $x in a|b) sgdisk -p ;; esac\n"
        "FOO=1 nice -n 10 timeout 60 mkfs.ext4 -q img && helper\n"
        "n=$(( (n + 1) * 2 ))\n"
    )
    got = {c for c, _ in ht.shell_commands(script)}
    assert got == {"nproc", "nft", "wc", "iptables-save", "cat", "sgdisk", "mkfs.ext4"}


def test_the_python_scan_resolves_constants_and_argv_variables(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import subprocess, shutil\n"
        "from kubeinit import paths\n"
        'QEMU = "qemu-system-x86_64"\n'
        "def f(bindir):\n"
        '    argv = [QEMU, "-m", "1"]\n'
        "    subprocess.Popen(argv)\n"
        '    run([paths.SYSTEMCTL, "daemon-reload"])\n'
        '    subprocess.run([str(bindir / "kubectl"), "get"])\n'
        '    shutil.which("debugfs")\n'
        '    print(["not-a-command"])\n'
    )
    got = {c for c, _ in ht.python_commands(src)}
    assert got == {"qemu-system-x86_64", "systemctl", "*/kubectl", "debugfs"}
