"""Open a disk image with libguestfs: one appliance launch per build, the guest's filesystems
mounted where its own /etc/fstab mounts them, whatever the partition layout.

The appliance runs with KVM when KVM really runs guests here (builder.accel), else with TCG
(`LIBGUESTFS_BACKEND=direct`, backend setting `force_tcg`). A LIBGUESTFS_BACKEND set by the user
wins.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from builder.accel import kvm_usable
from builder.target import GuestTarget
from kubeinit.errors import InvalidInput, StateUnreadable

# Debian ships the bindings for its own python3 only (python3-guestfs).
_DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def import_guestfs() -> Any:
    """The guestfs module. A venv made without --system-site-packages cannot see Debian's
    bindings; when its Python has the same minor version, load them from dist-packages."""
    try:
        return importlib.import_module("guestfs")
    except ImportError:
        pass
    if Path(_DEBIAN_DIST_PACKAGES, "guestfs.py").is_file() and sys.version_info[:2] == (3, 11):
        sys.path.append(_DEBIAN_DIST_PACKAGES)
        try:
            return importlib.import_module("guestfs")
        except ImportError:
            pass
        finally:
            sys.path.remove(_DEBIAN_DIST_PACKAGES)
    raise InvalidInput(
        "the libguestfs Python bindings (module guestfs) are not importable",
        hint="install python3-guestfs and run kubeinit-build with Debian's"
        " python3 (or a venv made with --system-site-packages)",
    )


def open_image(
    path: Path,
    fmt: str,
    *,
    cache_dir: Path,
    readonly: bool = False,
    debug: bool = False,
    display: str = "",
) -> GuestTarget:
    """Launch the appliance on `path`, find the one Linux installed in it and mount its
    filesystems. Read-write only for the build's own copy; `readonly` (--dry-run) puts
    libguestfs' throw-away overlay in front of the user's file."""
    guestfs = import_guestfs()
    g = guestfs.GuestFS(python_return_dict=True)
    if not os.environ.get("LIBGUESTFS_BACKEND"):
        g.set_backend("direct")
        if not kvm_usable(cache_dir):
            g.set_backend_settings(["force_tcg"])
    if debug:
        g.set_verbose(True)
    # The copy is thrown away on failure, and fsync-ed by us on success: no flushes needed.
    g.add_drive_opts(str(path), format=fmt, readonly=readonly, cachemode="unsafe")
    try:
        g.launch()
    except RuntimeError as e:
        g.close()
        raise StateUnreadable(
            f"libguestfs could not open the image: {_first(e)}",
            hint="run with --debug for the appliance log",
        ) from None
    try:
        return _mount(g, path, display)
    except BaseException:
        close(g)
        raise


def _mount(g: Any, path: Path, display: str) -> GuestTarget:
    roots = list(g.inspect_os())
    if not roots:
        raise StateUnreadable(
            f"{path}: no Linux operating system found in the image",
            hint="kubeinit-build needs an image with an installed Linux root"
            " filesystem (is this the right file?)",
        )
    if len(roots) > 1:
        raise InvalidInput(
            f"{path}: {len(roots)} operating systems found in the image",
            hint="kubeinit-build needs an image with exactly one",
        )
    root = roots[0]
    kind = str(g.inspect_get_type(root))
    if kind != "linux":
        raise StateUnreadable(
            f"{path}: the image holds a {kind} system, not Linux",
            hint="kubeinit-build needs a Linux image with systemd",
        )
    mountpoints = g.inspect_get_mountpoints(root)
    items = mountpoints.items() if isinstance(mountpoints, dict) else mountpoints
    for mp, dev in sorted(items, key=lambda kv: len(kv[0])):
        try:
            g.mount(dev, mp)
        except RuntimeError as e:
            if mp == "/":
                raise StateUnreadable(
                    f"{path}: cannot mount the root filesystem {dev}: {_first(e)}",
                    hint="check the image with fsck",
                ) from None
            # A filesystem kubeinit does not write to (e.g. an ESP marked nofail) may be
            # absent or unmountable; the checks and the payload only use / and what it holds.
    distro = str(g.inspect_get_distro(root))
    version = f"{g.inspect_get_major_version(root)}.{g.inspect_get_minor_version(root)}"
    arch = str(g.inspect_get_arch(root))
    return GuestTarget(g, f"{display or path.name} ({distro} {version}, {arch})", root)


def close(g: Any) -> None:
    """Unmount and stop the appliance; the image file is complete when this returns."""
    try:
        g.umount_all()
        g.shutdown()
    finally:
        g.close()


def _first(e: BaseException) -> str:
    return (str(e).strip().splitlines() or ["unknown error"])[0]
