"""builder/payload.py: one ordered, deterministic description of what a build writes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from builder.payload import MTIME, Entry, Kind, Payload


def _payload(tmp_path: Path) -> Payload:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 10000)
    return Payload.of([
        Entry("/usr/lib/kubeinit/profile.json", Kind.FILE, 0o644, data=b"{}\n"),
        Entry("/usr/lib/kubeinit", Kind.DIR, 0o755, replace=True),
        Entry("/etc/systemd/system/multi-user.target.wants/kubeinit.service", Kind.SYMLINK,
              link="/usr/lib/systemd/system/kubeinit.service"),
        Entry("/usr/lib/kubeinit/images/big.tar", Kind.FILE, 0o644, source=big),
        Entry("/usr/lib/kubeinit/images", Kind.DIR, 0o755),
        Entry("/var/lib/systemd/random-seed", Kind.REMOVE),
        Entry("/etc/systemd/system", Kind.PARENT),
    ])


def test_directories_come_before_their_contents(tmp_path: Path) -> None:
    paths = [e.path for e in _payload(tmp_path)]
    assert paths.index("/usr/lib/kubeinit") < paths.index("/usr/lib/kubeinit/images") < \
        paths.index("/usr/lib/kubeinit/images/big.tar")
    assert paths.index("/etc/systemd/system") < paths.index(
        "/etc/systemd/system/multi-user.target.wants/kubeinit.service")


def test_tar_is_the_same_bytes_every_time_and_owned_by_root(tmp_path: Path) -> None:
    p = _payload(tmp_path)
    a, b = io.BytesIO(), io.BytesIO()
    assert p.write_tar(a) == p.write_tar(b)
    assert a.getvalue() == b.getvalue()
    with tarfile.open(fileobj=io.BytesIO(a.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
    # parents that exist in the target and removals are not in the tar
    assert "etc/systemd/system" not in members and "var/lib/systemd/random-seed" not in members
    big = members["usr/lib/kubeinit/images/big.tar"]
    assert (big.size, big.mode, big.uid, big.gid, big.mtime) == (10000, 0o644, 0, 0, MTIME)
    link = members["etc/systemd/system/multi-user.target.wants/kubeinit.service"]
    assert link.issym() and link.linkname == "/usr/lib/systemd/system/kubeinit.service"


def test_sizes_and_listing(tmp_path: Path) -> None:
    p = _payload(tmp_path)
    assert p.file_bytes == 10003
    assert p.disk_bytes() == 4096 * 4 + 4096 * 3 + 4096  # file blocks, dirs + parent, link
    listing = "\n".join(p.listing())
    assert "0644      10000 /usr/lib/kubeinit/images/big.tar" in listing
    assert "remove /var/lib/systemd/random-seed" in " ".join(listing.split())
    assert p.replaced_dirs() == ["/usr/lib/kubeinit"]


@pytest.mark.parametrize("path", ["usr/lib", "/usr/../etc", "/usr//lib", "/usr/lib/"],
                         ids=["relative", "dotdot", "double-slash", "trailing-slash"])
def test_paths_must_be_normalised_and_absolute(path: str) -> None:
    with pytest.raises(ValueError, match="normalised absolute"):
        Entry(path, Kind.DIR)


def test_two_different_entries_for_one_path_are_refused() -> None:
    with pytest.raises(ValueError, match="two different entries"):
        Payload.of([Entry("/a", Kind.FILE, data=b"1"), Entry("/a", Kind.FILE, data=b"2")])
