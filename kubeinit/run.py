"""The one door for subprocesses (house style §6).

Logs the command with secrets masked, runs it with a fixed minimal environment and stdin from
/dev/null, and raises one clear error carrying the captured stderr.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubeinit.errors import PhaseFailed
from kubeinit.redact import mask

__all__ = ["BASE_ENV", "Result", "mask", "run"]

log = logging.getLogger("kubeinit.run")

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str | Path],
    *,
    redact: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = 300,
    input_data: str | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run `argv`; return its output. With `check`, a non-zero exit raises PhaseFailed whose
    message is one line naming the command and the last line of its stderr, secrets masked."""
    args = tuple(str(a) for a in argv)
    shown = mask(shlex.join(args), redact)
    log.debug("running %s", shown)
    full_env = dict(BASE_ENV)
    if "PATH" in os.environ:
        full_env["PATH"] = os.environ["PATH"]
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(  # noqa: S603 - the one door; argv is a list, never a shell
            args,
            stdin=subprocess.DEVNULL if input_data is None else None,
            input=input_data,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
            cwd=cwd,
        )
    except FileNotFoundError as e:
        raise PhaseFailed(
            f"{args[0]}: command not found", hint=f"install {args[0]} or put it on PATH"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise PhaseFailed(f"{shown}: timed out after {timeout} s") from e
    result = Result(args, proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        last = mask(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "", redact)
        raise PhaseFailed(f"{shown} exited {proc.returncode}: {last}")
    return result
