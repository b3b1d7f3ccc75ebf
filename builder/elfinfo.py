"""What an ELF binary says about itself without running it: its architecture (e_machine) and,
for Go binaries, the embedded build information (`go version -m`).

Go >= 1.18 writes a `.go.buildinfo` section: a 32-byte header starting with the magic
"\\xff Go buildinf:", a pointer size and flags; with flag 2 the Go version and the module
information follow inline as varint-length-prefixed strings (src/debug/buildinfo/buildinfo.go).
The module information names the main module and its version (`mod k8s.io/kubernetes v1.37.2`)
when the binary was built from a released module; a binary built inside its own repository says
`(devel)`, and -trimpath builds do not record -ldflags, so callers fall back to running
`--version` (see builder.preflight).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

# (offset, size) -> bytes; reads a file of the target image
Reader = Callable[[int, int], bytes]

_MAGIC = b"\xff Go buildinf:"
# e_machine -> the architecture names libguestfs and Debian use
MACHINES = {
    0x3E: "x86_64",
    0xB7: "aarch64",
    0x03: "i386",
    0x28: "armv7l",
    0xF3: "riscv64",
    0x15: "ppc64le",
    0x16: "s390x",
}


class NotElf(ValueError):
    pass


@dataclass(frozen=True)
class Elf:
    arch: str
    sections: dict[str, tuple[int, int]]  # name -> (file offset, size)


def read_elf(read: Reader) -> Elf:
    head = read(0, 64)
    if len(head) < 64 or head[:4] != b"\x7fELF":
        raise NotElf("not an ELF file")
    is64, little = head[4] == 2, head[5] == 1
    end = "<" if little else ">"
    (machine,) = struct.unpack_from(end + "H", head, 18)
    arch = MACHINES.get(machine, f"elf-machine-{machine}")
    if machine == 0x15 and not little:
        arch = "ppc64"
    if is64:
        (shoff,) = struct.unpack_from(end + "Q", head, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", head, 0x3A)
    else:
        (shoff,) = struct.unpack_from(end + "I", head, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", head, 0x2E)
    sections: dict[str, tuple[int, int]] = {}
    if not shoff or not shnum or shnum > 4096 or shstrndx >= shnum:
        return Elf(arch, sections)
    table = read(shoff, shentsize * shnum)
    raw: list[tuple[int, int, int]] = []
    for i in range(shnum):
        base = i * shentsize
        if is64:
            (name,) = struct.unpack_from(end + "I", table, base)
            offset, size = struct.unpack_from(end + "QQ", table, base + 0x18)
        else:
            (name,) = struct.unpack_from(end + "I", table, base)
            offset, size = struct.unpack_from(end + "II", table, base + 0x10)
        raw.append((name, offset, size))
    _, str_off, str_size = raw[shstrndx]
    names = read(str_off, min(str_size, 1 << 20))
    for name, offset, size in raw:
        stop = names.find(b"\0", name)
        sections[names[name:stop].decode("ascii", "replace")] = (offset, size)
    return Elf(arch, sections)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


@dataclass(frozen=True)
class GoBuildInfo:
    go_version: str
    main_path: str
    main_version: str  # "(devel)" when built inside its own repository
    deps: dict[str, str]
    settings: dict[str, str]


def go_buildinfo(read: Reader, elf: Elf) -> GoBuildInfo | None:
    """The embedded build information, or None for non-Go or pre-1.18 binaries."""
    where = elf.sections.get(".go.buildinfo")
    if where is None:
        return None
    offset, size = where
    data = read(offset, min(size, 1 << 20))
    if not data.startswith(_MAGIC) or len(data) < 33 or not data[15] & 2:
        return None
    try:
        n, pos = _varint(data, 32)
        version = data[pos : pos + n].decode("utf-8", "replace")
        n, pos = _varint(data, pos + n)
        modinfo = data[pos : pos + n].decode("utf-8", "replace")
    except IndexError:
        return None
    main_path = main_version = ""
    deps: dict[str, str] = {}
    settings: dict[str, str] = {}
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] == "mod":
            main_path, main_version = fields[1], fields[2]
        elif len(fields) >= 3 and fields[0] == "dep":
            deps[fields[1]] = fields[2]
        elif len(fields) >= 2 and fields[0] == "build" and "=" in fields[1]:
            k, _, v = fields[1].partition("=")
            settings[k] = v
    return GoBuildInfo(version, main_path, main_version, deps, settings)


_SEMVER = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def semver(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of the first version-looking part of `text`."""
    m = _SEMVER.search(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def module_version(info: GoBuildInfo, *modules: str) -> str | None:
    """The released version of the first of `modules` that is the main module or a dependency
    (a generated module that requires the upstream one records it as a dependency)."""
    for mod in modules:
        if info.main_path == mod and info.main_version not in ("", "(devel)"):
            return info.main_version
        if mod in info.deps:
            return info.deps[mod]
    return None
