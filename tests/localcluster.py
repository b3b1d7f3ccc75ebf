"""A real control plane for the API-phase tests: `hack/local-up` (kubeinit's first boot, then
etcd, kube-apiserver, kube-controller-manager and kube-scheduler from the real binaries, run
from kubeinit's own static Pod manifests), optionally inside a private mount namespace that has
its own real systemd-journald, so kubeinit's native journal records can be read back.

Also runnable as `python -m tests.localcluster journald-ns SCRATCH -- CMD...` (inside
`unshare -m`): binds SCRATCH over /run/log and a private tmpfs over /run/systemd, starts
/lib/systemd/systemd-journald as a plain process, runs CMD (forwarding SIGINT/SIGTERM), stops
journald and exits with CMD's status. Nothing of it is visible outside the namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCAL_UP = REPO / "hack" / "local-up"
JOURNALD = Path("/lib/systemd/systemd-journald")
K8S_VERSION = "v1.37.2"


def bin_dir() -> Path:
    """The binaries hack/k8s-binaries built (read from its cache; never starts a build)."""
    cache = os.environ.get("KUBEINIT_CACHE_DIR") or str(Path.home() / ".cache" / "kubeinit")
    d = Path(cache) / "binaries" / K8S_VERSION
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                 "kubectl", "kubeadm"):
        assert (d / name).is_file(), f"{d / name} missing: run hack/k8s-binaries"
    return d


# --- journald in a private mount namespace -------------------------------------------------

@dataclass(frozen=True)
class Journal:
    scratch: Path

    @property
    def directory(self) -> Path:
        dirs = sorted((self.scratch / "log" / "journal").glob("*"))
        assert dirs, f"journald wrote nothing under {self.scratch}/log/journal"
        return dirs[0]

    def export(self) -> str:
        out = subprocess.run(["journalctl", "-D", str(self.directory), "-o", "json",
                              "--no-pager"], capture_output=True, text=True, check=True)
        return out.stdout

    def records(self, identifier: str = "kubeinit") -> list[dict[str, Any]]:
        recs = [json.loads(line) for line in self.export().splitlines() if line.strip()]
        return [r for r in recs if r.get("SYSLOG_IDENTIFIER") == identifier]


def in_journal_namespace(scratch: Path, argv: Sequence[str]) -> list[str]:
    """argv wrapped to run in a private mount namespace with its own journald."""
    (scratch / "log").mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-m",
            "tests.localcluster", "journald-ns", str(scratch), "--", *argv]


def _journald_ns(scratch: Path, argv: list[str]) -> int:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/systemd"],
                   check=True)
    (Path("/run/systemd") / "journal").mkdir()
    subprocess.run(["mount", "--bind", str(scratch / "log"), "/run/log"], check=True)
    journald = subprocess.Popen([str(JOURNALD)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = Path("/run/systemd/journal/socket")
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    assert sock.exists(), "systemd-journald did not create its socket"
    child = subprocess.Popen(argv)

    def forward(signum: int, frame: Any) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    rc = child.wait()
    time.sleep(0.3)  # let journald drain its socket
    journald.terminate()
    journald.wait(timeout=30)
    return rc


# --- hack/local-up ---------------------------------------------------------------------------

@dataclass
class LocalCluster:
    root: Path
    proc: subprocess.Popen[bytes]
    ready: dict[str, Any]
    log: Path
    journal: Journal | None

    @property
    def admin_conf(self) -> Path:
        return Path(self.ready["adminConf"])

    @property
    def server(self) -> str:
        return str(self.ready["server"])

    @property
    def node(self) -> str:
        return str(self.ready["node"])

    @property
    def config(self) -> Path:
        return self.root / "etc/kubeinit/config.yaml"

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir() / "kubectl"), "--kubeconfig", str(self.admin_conf),
                               *args], capture_output=True, text=True, check=check, timeout=60)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def kubeinit(self, *args: str, env: Mapping[str, str] | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "firstboot", *args, "--root",
                               str(self.root)], capture_output=True, text=True, timeout=timeout,
                              cwd=REPO, env={**os.environ, **(env or {})}, check=False)

    def join_file(self, name: str = "join.json") -> Any:
        return json.loads((self.root / "etc/kubeinit" / name).read_text())


def worker_ports(port_base: int) -> int:
    """`port_base` moved out of the other pytest-xdist workers' way: each worker (gw0, gw1, ...)
    gets its own 10,000-port block, so two workers starting clusters at the same base (the
    resume tests, the local-up tests) never collide."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return port_base + 10000 * int(worker.removeprefix("gw") or 0)


def start(root: Path, *, port_base: int, journal_scratch: Path | None = None,
          env: Mapping[str, str] | None = None, exit_after_init: bool = False,
          timeout: float = 300, wait: bool = True) -> LocalCluster:
    """Start hack/local-up and wait until kubeinit init finished (ready file written) or
    local-up exited."""
    root.mkdir(parents=True, exist_ok=True)
    ready_file = root.parent / f"{root.name}.ready.json"
    ready_file.unlink(missing_ok=True)
    log = root.parent / f"{root.name}.local-up.log"
    port_base = worker_ports(port_base)
    argv = [sys.executable, str(LOCAL_UP), "--root", str(root), "--port-base", str(port_base),
            "--bin-dir", str(bin_dir()), "--ready-file", str(ready_file)]
    if exit_after_init:
        argv.append("--exit-after-init")
    if journal_scratch is not None:
        argv = in_journal_namespace(journal_scratch, argv)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=REPO, env={**os.environ, **(env or {})},
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while wait and not ready_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ready = json.loads(ready_file.read_text()) if ready_file.exists() else {}
    return LocalCluster(root=root, proc=proc, ready=ready, log=log,
                        journal=Journal(journal_scratch) if journal_scratch else None)


def stop(cluster: LocalCluster, sig: int = signal.SIGTERM, timeout: float = 90) -> int:
    """Signal local-up and wait for it; kill its whole session if it does not stop."""
    if cluster.proc.poll() is None:
        cluster.proc.send_signal(sig)
        try:
            return cluster.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.proc.pid, signal.SIGKILL)
            cluster.proc.wait()
            raise AssertionError(f"local-up did not stop within {timeout}s") from None
    return cluster.proc.returncode


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> Iterator[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return
    for c in children:
        yield int(c)
        yield from descendants(int(c))


def stopped_kubeinit(cluster: LocalCluster, timeout: float = 180) -> int | None:
    """The pid of local-up's kubeinit once it stopped itself at a fault point (state T), or
    None if local-up finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cluster.proc.poll() is None:
        for pid in descendants(cluster.proc.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, IndexError):
                continue
            if b"firstboot" in cmd and b"init" in cmd and state == "T":
                return pid
        time.sleep(0.05)
    return None


def wait_stopped(proc: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    """True once `proc` stopped itself at a fault point (SIGSTOP); False if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state == "T":
            return True
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("kubeinit neither stopped at the fault point nor exited")


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "journald-ns" and argv[2] == "--":
        return _journald_ns(Path(argv[1]), argv[3:])
    print("usage: python -m tests.localcluster journald-ns SCRATCH -- CMD...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
