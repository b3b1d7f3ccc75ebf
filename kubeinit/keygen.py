"""Private keys as kubeadm makes them (pkiutil.GeneratePrivateKey), and made fast.

RSA key generation dominates the cost of the certs and kubeconfig phases (16 keys, ~60 ms each
for RSA-2048 on the reference machine, seconds for RSA-4096). cryptography holds the GIL while
generating (measured: two threads are no faster than one), so `KeyPool` forks one short-lived
child per key, at most one per CPU, and hands the keys out in order.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import selectors
import signal
from collections import deque
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeinit.config import EncryptionAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

RSA_BITS = {
    EncryptionAlgorithm.RSA_2048: 2048,
    EncryptionAlgorithm.RSA_3072: 3072,
    EncryptionAlgorithm.RSA_4096: 4096,
}
CURVES: dict[EncryptionAlgorithm, type[ec.EllipticCurve]] = {
    EncryptionAlgorithm.ECDSA_P256: ec.SECP256R1,
    EncryptionAlgorithm.ECDSA_P384: ec.SECP384R1,
}


def generate_key(algorithm: EncryptionAlgorithm) -> PrivateKey:
    """pkiutil.GeneratePrivateKey."""
    if algorithm in CURVES:
        return ec.generate_private_key(CURVES[algorithm]())
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[algorithm])


def key_matches_algorithm(key: PrivateKey, algorithm: EncryptionAlgorithm) -> bool:
    if isinstance(key, rsa.RSAPrivateKey):
        return RSA_BITS.get(algorithm) == key.key_size
    return algorithm in CURVES and isinstance(key.curve, CURVES[algorithm])


class KeyPool:
    """Private keys made ahead of need, in parallel, in forked children.

    `prefetch(n)` queues n keys; at most `workers` children run at once, each generating one key
    and writing it (DER) to a pipe, which never touches the disk. `take()` returns the first
    queued key that is ready, or makes one inline when none is queued. The children share
    nothing with the parent after the fork (OpenSSL reseeds its generator in a forked child;
    tests check the keys differ); their stdio is /dev/null, so a parent killed mid-way leaves no
    child holding its output open, and a child whose parent died exits on the broken pipe.
    """

    def __init__(self, algorithm: EncryptionAlgorithm, workers: int | None = None) -> None:
        self.algorithm = algorithm
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._queue: deque[_Job] = deque()  # in take() order; started or not
        self._sel = selectors.DefaultSelector()
        atexit.register(self.close)

    def prefetch(self, count: int) -> None:
        # ECDSA keys take microseconds: forking would cost more than it saves
        if self.algorithm in CURVES or not hasattr(os, "fork"):
            return
        self._queue.extend(_Job() for _ in range(count))
        self._start_more()

    def take(self) -> PrivateKey:
        """The first queued key to be ready (keys are interchangeable, and RSA generation time
        varies a lot: waiting for whichever child finishes first cuts the wait)."""
        if not self._queue:
            return generate_key(self.algorithm)
        self._start_more()
        while not any(j.finished for j in self._queue):
            for sel_key, _ in self._sel.select():
                self._read(sel_key.data)
        job = next(j for j in self._queue if j.finished)
        self._queue.remove(job)
        self._start_more()
        if job.status != 0 or not job.data:
            return generate_key(self.algorithm)  # a failed helper: make the key here
        key = serialization.load_der_private_key(
            bytes(job.data), None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return key

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Stop and reap every child; queued keys are dropped."""
        for job in self._queue:
            if job.pid and not job.finished:
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    os.kill(job.pid, signal.SIGKILL)
                    os.waitpid(job.pid, 0)
                self._sel.unregister(job.fd)
                os.close(job.fd)
        self._queue.clear()
        atexit.unregister(self.close)

    def _running(self) -> int:
        return sum(1 for j in self._queue if j.pid and not j.finished)

    def _start_more(self) -> None:
        for job in self._queue:
            if self._running() >= self.workers:
                return
            if job.pid == 0:
                self._start(job)

    def _start(self, job: _Job) -> None:
        try:
            read_fd, write_fd = os.pipe()
        except OSError:  # out of file descriptors: take() makes this key itself
            job.pid, job.finished = -1, True
            return
        try:
            pid = os.fork()
        except OSError:  # out of processes: likewise
            os.close(read_fd)
            os.close(write_fd)
            job.pid, job.finished = -1, True
            return
        if pid == 0:  # the child: make one key, write it, exit without any Python cleanup
            status = 1
            try:
                os.close(read_fd)
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                der = generate_key(self.algorithm).private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                view = memoryview(der)
                while view:
                    view = view[os.write(write_fd, view) :]
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        job.pid, job.fd = pid, read_fd
        self._sel.register(read_fd, selectors.EVENT_READ, job)

    def _read(self, job: _Job) -> None:
        chunk = os.read(job.fd, 65536)
        if chunk:
            job.data += chunk
            return
        self._sel.unregister(job.fd)
        os.close(job.fd)
        _, raw = os.waitpid(job.pid, 0)
        job.status = os.waitstatus_to_exitcode(raw)
        job.finished = True


@dataclass(eq=False)  # identity matters: jobs are removed from the queue by identity
class _Job:
    pid: int = 0
    fd: int = -1
    data: bytearray = field(default_factory=bytearray)
    finished: bool = False
    status: int = -1
