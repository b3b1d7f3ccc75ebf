"""A target root is hostile ground (house style §16, issue 9 findings 1 and 9).

Hostile trees: a symbolic link (absolute, and relative climbing with `..`) planted in every
parent of every directory first boot writes into (`paths.WRITTEN_DIRS` and their parents),
each pointing at a decoy directory on the host. A real `kubeinit init --local-only --root`
runs against each; the decoy must be byte-for-byte untouched (its tree hashed before and
after, modes and link texts included) and every file kubeinit wrote must be inside the root.
A link swapped in between resolution and the write is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from kubeinit import hostfs, paths
from kubeinit.errors import InvalidInput, StateUnreadable
from kubeinit.fs import mkdir_all, write_file
from tests.conftest import config_path

REPO = Path(__file__).resolve().parents[2]
KUBEINIT = [sys.executable, "-m", "firstboot"]


def tree_digest(top: Path) -> str:
    """Every entry under `top`: path, type, mode, link text or content."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = os.lstat(p)
            h.update(f"{p.relative_to(top)}\0{st.st_mode:o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(p.read_bytes())
    st = os.lstat(top)
    h.update(f"{st.st_mode:o}".encode())
    return h.hexdigest()


def make_decoy(tmp_path: Path) -> Path:
    decoy = tmp_path / "host-decoy"
    (decoy / "pki").mkdir(parents=True)
    (decoy / "kubeinit").mkdir()
    (decoy / "pki" / "ca.key").write_text("the host's own key\n")
    (decoy / "state.json").write_text("{}\n")
    (decoy / "kubeinit" / "keep").write_text("host file\n")
    return decoy


# --- chase: chroot semantics -----------------------------------------------------------------


def test_absolute_link_is_rerooted(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/kubernetes").symlink_to(tmp_path / "host-decoy")
    got = paths.under(root, "/etc/kubernetes/pki/ca.key")
    assert got == root.joinpath(*(tmp_path / "host-decoy").parts[1:], "pki/ca.key")


def test_dotdot_in_a_link_stops_at_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/kubernetes").symlink_to("../../../../../../../../outside")
    assert paths.under(root, "/etc/kubernetes/admin.conf") == root / "outside/admin.conf"


def test_links_inside_the_root_are_followed_as_on_the_node(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "var").mkdir()
    (root / "var/run").symlink_to("/run")
    assert paths.under(root, "/lib/kubeinit/profile.json") == root / "usr/lib/kubeinit/profile.json"
    assert paths.under(root, "/var/run/x") == root / "run/x"


def test_a_link_loop_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to("/etc")  # re-rooted: points at itself
    with pytest.raises(StateUnreadable, match="too many levels of symbolic links"):
        paths.under(root, "/etc/kubernetes")


def test_dotdot_in_a_node_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"escapes the root"):
        paths.under(tmp_path, "/etc/kubernetes/../../../root/.ssh")


def test_under_returns_a_path_without_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a/b").mkdir(parents=True)
    (root / "l1").symlink_to("a")
    (root / "a/l2").symlink_to("/a/b")
    got = paths.under(root, "/l1/l2/c")
    assert got == root / "a/b/c"
    assert not any(p.is_symlink() for p in [got.parent, *got.parent.parents])


# --- a link swapped in after resolution -------------------------------------------------------


def test_link_swapped_into_a_parent_after_resolution_is_refused(tmp_path: Path) -> None:
    decoy = make_decoy(tmp_path)
    before = tree_digest(decoy)
    root = tmp_path / "root"
    target = paths.under(root, "/etc/kubernetes/pki/ca.key")  # resolved: nothing there yet
    (root / "etc").mkdir(parents=True)
    (root / "etc/kubernetes").symlink_to(decoy)  # swapped in before the write
    with pytest.raises(hostfs.LinkRefused, match=r"etc/kubernetes is a symbolic link"):
        write_file(target, b"secret", 0o600)
    with pytest.raises(hostfs.LinkRefused):
        mkdir_all(target.parent, 0o700)
    with pytest.raises(hostfs.LinkRefused):
        hostfs.read_bytes(target)
    with pytest.raises(hostfs.LinkRefused):
        hostfs.unlink(target)
    assert tree_digest(decoy) == before


def test_link_swapped_in_as_the_file_itself_is_replaced_not_followed(tmp_path: Path) -> None:
    decoy = make_decoy(tmp_path)
    before = tree_digest(decoy)
    root = tmp_path / "root"
    target = paths.under(root, "/etc/kubernetes/admin.conf")
    target.parent.mkdir(parents=True)
    target.symlink_to(decoy / "state.json")
    with pytest.raises(hostfs.LinkRefused):
        hostfs.read_bytes(target)  # a read does not follow it either
    write_file(target, "mine\n", 0o600)  # rename(2) replaces the link itself
    assert not target.is_symlink() and target.read_text() == "mine\n"
    assert tree_digest(decoy) == before


# --- explicit modes whatever the umask (finding 9) --------------------------------------------


def test_directories_get_exact_modes_under_umask_000(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_file(tmp_path / "a/b/c/file", b"x", 0o600, dir_mode=0o700)
        mkdir_all(tmp_path / "m/n", 0o700)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a/b/c").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a/b").stat().st_mode) == 0o755  # parents: 0755
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o700  # MkdirAll: all with mode
    assert stat.S_IMODE((tmp_path / "m/n").stat().st_mode) == 0o700


# kubeadm's modes (reference/kubeadm-node-artifacts.md §2.7 and the manifests section);
# kubeinit's own: state 0700, /etc/kubeinit 0755.
EXPECTED_DIR_MODES = {
    "etc/kubernetes": 0o755,
    "etc/kubernetes/pki": 0o755,
    "etc/kubernetes/pki/etcd": 0o755,
    "etc/kubernetes/manifests": 0o700,
    "var/lib/etcd": 0o700,
    "var/lib/kubelet": 0o700,
    "var/lib/kubeinit": 0o700,
}


def _run_init(root: Path, *extra: str, umask: int | None = None,
              env: dict[str, str] | None = None, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KUBEINIT, "init", "--local-only", "--root", str(root), "--config",
         str(config_path("default")), "--ignore-preflight-errors", "all", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def test_real_init_under_umask_000_writes_kubeadm_modes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    res = _run_init(root, umask=0)
    assert res.returncode == 0, res.stdout + res.stderr
    for rel, mode in EXPECTED_DIR_MODES.items():
        assert stat.S_IMODE((root / rel).stat().st_mode) == mode, rel
    writable = [p for p in root.rglob("*")
                if not p.is_symlink() and p.stat().st_mode & stat.S_IWOTH]
    assert writable == []
    for key in root.rglob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


# --- real runs against hostile trees -----------------------------------------------------------


def _link_points() -> list[str]:
    """Every directory first boot writes into, and each of its parents."""
    out: set[str] = set()
    for d in (*paths.WRITTEN_DIRS, paths.DEFAULT_ETCD_DATA_DIR):
        p = PurePosixPath(d)
        while str(p) != "/":
            out.add(str(p).lstrip("/"))
            p = p.parent
    return sorted(out)


LINK_POINTS = _link_points()


def test_the_link_points_cover_every_written_directory() -> None:
    for d in ("etc", "etc/kubernetes", "etc/kubernetes/pki/etcd", "etc/kubernetes/manifests",
              "var/lib/kubeinit", "var/lib/kubelet/pki", "etc/kubeinit", "var/lib/etcd"):
        assert d in LINK_POINTS


def _plant(root: Path, rel: str, decoy: Path, kind: str) -> None:
    link = root / rel
    link.parent.mkdir(parents=True, exist_ok=True)
    if kind == "absolute":
        link.symlink_to(decoy)
    else:  # climbs out with `..`: as many as it takes from the link's directory, plus spare
        depth = len(link.parent.relative_to("/").parts)
        link.symlink_to(os.path.join(*([".."] * (depth + 3)), *decoy.parts[1:]))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["absolute", "relative"])
@pytest.mark.parametrize("rel", LINK_POINTS)
def test_real_init_with_a_link_out_of_the_root_leaves_the_host_alone(
    tmp_path: Path, rel: str, kind: str
) -> None:
    decoy = make_decoy(tmp_path)
    before = tree_digest(decoy)
    root = tmp_path / "root"
    _plant(root, rel, decoy, kind)
    res = _run_init(root)
    assert tree_digest(decoy) == before, f"host decoy changed through {rel} ({kind})"
    out = res.stdout + res.stderr
    assert "Traceback" not in out
    # Chroot semantics: the link is followed as the node would, re-rooted inside the root, so
    # the run succeeds and everything lands under the root.
    assert res.returncode == 0, out
    keys = list(root.rglob("ca.key"))
    assert keys and all(root in k.parents for k in keys)
    # as the node sees it: through the link, re-rooted, inside the root
    assert paths.under(root, "/etc/kubernetes/pki/ca.key").is_file()


@pytest.mark.slow
def test_real_init_with_a_link_loop_exits_with_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/kubernetes").symlink_to("/etc/kubernetes")
    res = _run_init(root)
    assert res.returncode in (1, 3), res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert "too many levels of symbolic links" in res.stderr
    assert "hint:" in res.stderr


def _wait_stopped(proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("write", [4, 5, 8])
def test_real_init_with_a_directory_swapped_for_a_link_mid_write(tmp_path: Path,
                                                                  write: int) -> None:
    """A race arranged for real: the process stops with a file fsynced under its temporary
    name in etc/kubernetes/pki (KUBEINIT_FAULT_STOP_AT_WRITE), pki is moved aside and replaced
    by a link to the host decoy, then the process continues. The pending rename goes through
    the directory fd (into the moved directory, inside the root); later writes resolve again
    and stay inside the root. The decoy is untouched and nothing dies with a traceback."""
    decoy = make_decoy(tmp_path)
    before = tree_digest(decoy)
    root = tmp_path / "root"
    proc = subprocess.Popen(
        [*KUBEINIT, "init", "--local-only", "--root", str(root), "--config",
         str(config_path("default")), "--ignore-preflight-errors", "all"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "KUBEINIT_FAULT_STOP_AT_WRITE": str(write)})
    try:
        assert _wait_stopped(proc), "fault point not reached"
        pki = root / "etc/kubernetes/pki"
        assert pki.is_dir() and list(pki.glob(".*.tmp")), sorted(os.listdir(pki))
        pki.rename(root / "etc/kubernetes/pki.moved")
        pki.symlink_to(decoy / "pki")
        os.kill(proc.pid, 18)  # SIGCONT
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert tree_digest(decoy) == before, out
    assert "Traceback" not in out
    assert proc.returncode in (0, 1, 3), out
    # the file being written when the link appeared landed in the real (moved) directory
    assert not list((root / "etc/kubernetes/pki.moved").glob(".*.tmp"))
