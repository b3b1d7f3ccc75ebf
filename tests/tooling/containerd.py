"""A private, real containerd 2 for tests: the one hack/k8s-binaries built, run as a plain process.

Everything lives under one scratch directory (root, state, sockets, log, FIFOs). containerd runs
in its own mount and network namespace (`unshare --mount --net`) with a tmpfs over /run inside:
its shims put their sockets in /run/containerd/s and runc its state in /run/containerd/runc, paths
compiled into containerd, so without that a test would write to the host's /run and could meet a
real containerd there. The empty network namespace (loopback only) also makes "nothing was
pulled" a fact rather than a hope: a pull could not reach any registry.

    with Containerd.start(bins, tmp, sandbox_image="registry.k8s.io/pause:3.10.2") as c:
        c.ctr("images", "import", "pause.tar")
        c.crictl("images")

Stopping kills every task and pod sandbox it made, then containerd, then any shim still running
with this scratch directory on its command line (by pid), unmounts whatever is left mounted under
the scratch directory, and removes the cgroups it created.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CGROUP_PARENT = "kubeinit-oci-test"  # parent cgroup of CRI pods (cgroupfs driver)
CGROUP_ROOT = Path("/sys/fs/cgroup")
CAP_SYS_RESOURCE = 24  # linux/capability.h


def bounding_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return 0


def config_toml(scratch: Path, bins: Path, sandbox_image: str, snapshotter: str) -> str:
    """containerd 2 configuration (version 4, as `containerd config default` prints).

    Where CAP_SYS_RESOURCE is not even in the bounding set (some sandboxes), nothing can lower
    an oom_score_adj, and CRI's fixed -998 for pod sandboxes makes runc fail ("failed to update
    /proc/self/oom_score_adj: Permission denied"); containerd's restrict_oom_score_adj (meant
    for rootless) then clamps it to the current value instead."""
    restrict_oom = "false" if bounding_caps() >> CAP_SYS_RESOURCE & 1 else "true"
    return f"""version = 4
root = '{scratch}/root'
state = '{scratch}/state'
imports = []

[debug]
  level = 'debug'

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '{scratch}/containerd.sock'

  [plugins.'io.containerd.server.v1.ttrpc']
    address = '{scratch}/containerd.sock.ttrpc'

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = '{snapshotter}'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{sandbox_image}'

  [plugins.'io.containerd.cri.v1.runtime']
    cdi_spec_dirs = []
    restrict_oom_score_adj = {restrict_oom}
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '{bins}/runc'
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{bins}/cni']
      conf_dir = '{scratch}/cni'

  [plugins.'io.containerd.internal.v1.opt']
    path = '{scratch}/opt'

  [plugins.'io.containerd.nri.v1.nri']
    disable = true

  [[plugins.'io.containerd.transfer.v1.local'.unpack_config]]
    platform = 'linux/amd64'
    snapshotter = '{snapshotter}'
"""


@dataclass
class Containerd:
    bins: Path
    scratch: Path
    snapshotter: str
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return str(self.scratch / "containerd.sock")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.address}"

    @property
    def log_path(self) -> Path:
        return self.scratch / "containerd.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @classmethod
    @contextlib.contextmanager
    def start(cls, bins: Path, scratch: Path, *, sandbox_image: str,
              snapshotter: str = "overlayfs") -> Iterator[Containerd]:
        scratch.mkdir(parents=True, exist_ok=True)
        for d in ("cni", "opt", "fifo"):
            (scratch / d).mkdir(exist_ok=True)
        cfg = scratch / "config.toml"
        cfg.write_text(config_toml(scratch, bins, sandbox_image, snapshotter))
        env = {"PATH": f"{bins}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        with (scratch / "containerd.log").open("wb") as logf:
            proc = subprocess.Popen(
                ["unshare", "--mount", "--net", "--propagation", "private", "--",
                 "/bin/sh", "-c", 'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', "sh",
                 str(bins / "containerd"), "--config", str(cfg)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        c = cls(bins, scratch, snapshotter, proc)
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"containerd exited {self.proc.returncode}:\n"
                                     + self.log()[-3000:])
            if os.path.exists(self.address) and self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError("containerd did not answer in time:\n" + self.log()[-3000:])

    def ctr(self, *args: str, ns: str = "k8s.io", check: bool = True, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bins / "ctr"), "--address", self.address, "--namespace", ns, *args]
        return _run(argv, check, timeout)

    def crictl(self, *args: str, check: bool = True, timeout: float = 120
               ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bins / "crictl"), "--runtime-endpoint", self.endpoint,
                "--image-endpoint", self.endpoint, "--timeout", "60s", *args]
        return _run(argv, check, timeout)

    def run(self, image: str, *args: str, cid: str, flags: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess[str]:
        """`ctr run --rm`: a container from the image, without cgroups, output captured."""
        return self.ctr("run", "--rm", "--fifo-dir", str(self.scratch / "fifo"), "--cgroup", "",
                        *flags, image, cid, *args, check=False, timeout=120)

    # --- stopping ------------------------------------------------------------------------

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self._remove_pods()
            with contextlib.suppress(Exception):
                self._remove_tasks()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        for pid in self._leftover_pids():  # shims (own session, so not in our process group)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._unmount_leftovers()
        self._remove_cgroups()

    def _remove_pods(self) -> None:
        pods = self.crictl("pods", "-q", check=False).stdout.split()
        for pod in pods:
            self.crictl("stopp", pod, check=False)
            self.crictl("rmp", "-f", pod, check=False)

    def _remove_tasks(self) -> None:
        for ns in self.ctr("namespaces", "ls", "-q", check=False).stdout.split():
            for task in self.ctr("tasks", "ls", "-q", ns=ns, check=False).stdout.split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, ns=ns, check=False)
                self.ctr("tasks", "delete", "-f", task, ns=ns, check=False)
            for cid in self.ctr("containers", "ls", "-q", ns=ns, check=False).stdout.split():
                self.ctr("containers", "rm", cid, ns=ns, check=False)

    def _leftover_pids(self) -> list[int]:
        mark = str(self.scratch).encode()
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if mark in (d / "cmdline").read_bytes():
                        pids.append(int(d.name))
        return pids

    def _unmount_leftovers(self) -> None:
        prefix = str(self.scratch) + "/"
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for m in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)

    def _remove_cgroups(self) -> None:
        if not CGROUP_ROOT.is_dir():
            return
        for hierarchy in CGROUP_ROOT.iterdir():
            parent = hierarchy / CGROUP_PARENT
            if parent.is_dir():
                for child in sorted(parent.rglob("*"), key=lambda p: len(str(p)), reverse=True):
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                with contextlib.suppress(OSError):
                    parent.rmdir()


def _run(argv: list[str], check: bool, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def json_out(proc: subprocess.CompletedProcess[str]) -> object:
    return json.loads(proc.stdout)
