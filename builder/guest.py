"""Open a disk image with libguestfs: one appliance launch per build, the guest's filesystems
mounted where its own /etc/fstab mounts them, whatever the partition layout.

The appliance runs with KVM when KVM really boots a kernel here (builder.accel), else with TCG
(`LIBGUESTFS_BACKEND=direct`, backend setting `force_tcg`). A LIBGUESTFS_BACKEND set by the user
wins.

The launch is bounded. libguestfs itself waits up to 20 minutes for its appliance, and under a
KVM that runs toy guests but not kernels its vCPU spins at 100% all that time (issue 11). So a
watchdog thread kills the appliance's QEMU LAUNCH_TIMEOUT seconds after it started (supermin,
which builds the appliance first, gets SUPERMIN_TIMEOUT), which makes `launch()` return with an
error. Under a probed KVM, a launch that hangs or fails is retried once under TCG
and KVM is remembered as unusable for this boot; under TCG (or an accelerator forced with
KUBEINIT_ACCEL) it is one clear error naming the appliance and the way to force TCG.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from builder.accel import ENV, Accel, choose, record
from builder.step import Progress
from builder.target import GuestTarget
from kubeinit.errors import InvalidInput, PhaseFailed, StateUnreadable

# Seconds the appliance may take to answer. Under KVM it answers in a few seconds; under TCG it
# took 27 s on an idle 2-core machine and over 2 minutes on a busy one.
LAUNCH_TIMEOUT: Mapping[Accel, float] = {Accel.KVM: 120.0, Accel.TCG: 900.0}
# Building the appliance before QEMU starts (supermin, once per boot or package change).
SUPERMIN_TIMEOUT = 600.0

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
    accel: Accel | None = None,
    readonly: bool = False,
    debug: bool = False,
    display: str = "",
) -> GuestTarget:
    """Launch the appliance on `path`, find the one Linux installed in it and mount its
    filesystems. Read-write only for the build's own copy; `readonly` (--dry-run) puts
    libguestfs' throw-away overlay in front of the user's file. `accel` forces an accelerator
    (KUBEINIT_ACCEL, parsed by the command line); None probes (builder.accel)."""
    guestfs = import_guestfs()

    def handle(acc: Accel) -> Any:
        g = guestfs.GuestFS(python_return_dict=True)
        if not os.environ.get("LIBGUESTFS_BACKEND"):
            g.set_backend("direct")
            if acc is Accel.TCG:
                g.set_backend_settings(["force_tcg"])
        if debug:
            g.set_verbose(True)
        # The copy is thrown away on failure, and fsync-ed by us on success: no flushes needed.
        g.add_drive_opts(str(path), format=fmt, readonly=readonly, cachemode="unsafe")
        return g

    g = launch(handle, cache_dir=cache_dir, forced=accel)
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


class LaunchHung(Exception):
    pass


def launch(
    make: Callable[[Accel], Any],
    *,
    cache_dir: Path,
    forced: Accel | None = None,
    timeouts: Mapping[Accel, float] = LAUNCH_TIMEOUT,
) -> Any:
    """A launched handle from `make(accel)` (a configured, not yet launched GuestFS). A probed
    KVM that hangs or fails gets one retry under TCG and is recorded as unusable."""
    acc = choose(cache_dir, forced)
    g = make(acc)
    try:
        bounded_launch(g, timeouts[acc])
        return g
    except (RuntimeError, LaunchHung) as e:
        g.close()
        if acc is Accel.KVM and forced is None:
            why = f"the libguestfs appliance under KVM: {_first(e)}"
            record(cache_dir, False, why)
            Progress.line(f"{why}; KVM is marked unusable for this boot, retrying under TCG")
            return launch(make, cache_dir=cache_dir, forced=Accel.TCG, timeouts=timeouts)
        if isinstance(e, LaunchHung):
            raise PhaseFailed(
                f"the libguestfs appliance ({acc.upper()}) did not answer within"
                f" {timeouts[acc]:.0f} s; it was stopped",
                hint=f"{ENV}=tcg forces TCG (the emulator); --debug shows the appliance log",
            ) from None
        raise StateUnreadable(
            f"libguestfs could not open the image ({acc.upper()}): {_first(e)}",
            hint=f"run with --debug for the appliance log; {ENV}=tcg forces TCG",
        ) from None


def bounded_launch(g: Any, timeout: float) -> None:
    """`g.launch()`, but its QEMU is killed `timeout` seconds after it started (LaunchHung).
    The clock starts with QEMU, not with the launch: building the appliance (supermin, first
    launch of a boot) takes its own time, bounded separately by SUPERMIN_TIMEOUT. QEMU processes
    of ours that existed before (a test's VM) are left alone."""
    before = _qemu_children()
    done = threading.Event()
    fired = threading.Event()

    def watchdog() -> None:
        start = time.monotonic()
        qemu_since: float | None = None
        while not done.wait(0.2):
            qemus = _qemu_children() - before
            now = time.monotonic()
            if qemus and qemu_since is None:
                qemu_since = now
            if not fired.is_set() and (
                (qemu_since is not None and now - qemu_since > timeout)
                or now - start > SUPERMIN_TIMEOUT + timeout
            ):
                fired.set()
            if fired.is_set():  # kill until launch() returns (QEMU may not have started yet)
                for pid in qemus | (_children(("supermin",)) - before):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    t = threading.Thread(target=watchdog, name="appliance-watchdog", daemon=True)
    t.start()
    try:
        g.launch()
    except RuntimeError as e:
        if fired.is_set():
            raise LaunchHung(f"no answer within {timeout:.0f} s") from e
        raise
    finally:
        done.set()
        t.join()
    if fired.is_set():  # answered just as the watchdog fired: the handle may be dead
        raise LaunchHung(f"no answer within {timeout:.0f} s")


def _qemu_children() -> set[int]:
    """PIDs of this process's children that run QEMU (libguestfs' direct backend forks it)."""
    return _children(("qemu-system",))


def _children(programs: tuple[str, ...]) -> set[int]:
    """PIDs of this process's children whose executable's name starts with one of `programs`."""
    me = os.getpid()
    out = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == me and os.readlink(d / "exe").rsplit("/", 1)[-1].startswith(
                programs
            ):
                out.add(int(d.name))
        except (OSError, IndexError, ValueError):
            continue
    return out
