"""Runs selected phases in tree order, frames them for the operator and keeps the journal."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from firstboot import timegate
from firstboot.context import InitContext
from firstboot.lock import DEFAULT_TIMEOUT, init_lock
from firstboot.log import Reporter
from firstboot.phase import Phase
from firstboot.selection import leaves
from firstboot.state import PhaseRecord, Result, State, done_stamp, failed_marker, now_iso
from kubeinit import hostfs
from kubeinit.errors import KubeinitError, PhaseFailed, StateUnreadable
from kubeinit.fs import write_file

# Phases that mint certificates: the clock is checked before the first of them runs.
_MINTING = ("certs", "kubeconfig")


class Terminated(PhaseFailed):
    """SIGTERM (systemd's stop, or TimeoutStartSec=) arrived while a phase ran."""

    recorded = False  # the journal and the failure marker already say so


def run_phases(
    ctx: InitContext,
    tree: Sequence[Phase],
    selected: Sequence[str],
    reporter: Reporter,
    *,
    complete_init: bool,
    resume: bool,
    lock_timeout: float = DEFAULT_TIMEOUT,
    clock: timegate.Clock | None = None,
) -> None:
    """Run `selected` leaf phases. With `resume`, phases the journal records as done are not
    run again (a crashed first boot picks up where it stopped). With `complete_init`, the
    completion stamp is written after the last phase, and a failure (SIGTERM included) writes
    the failure marker. The whole run holds the root's init lock (firstboot.lock); the clock
    is checked against the image's build time before certificates are minted (timegate).
    """
    sweep = (ctx.cert_dir, ctx.cert_dir / "etcd")
    with (
        init_lock(ctx.root, lock_timeout, sweep=sweep, on_wait=reporter.info),
        _sigterm_raises(),
    ):
        _run_locked(ctx, tree, selected, reporter, complete_init, resume, clock or timegate.Clock())


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM becomes a `Terminated` error in the running phase, so the journal and the
    failure marker name the phase it interrupted (field lesson: a killed first boot must say
    where it stopped). A second SIGTERM while that is written is ignored."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(
            "terminated by SIGTERM (systemctl stop, or the unit's TimeoutStartSec)",
            hint="see the journal for what the phase was waiting for; kubeinit resumes on"
            " the next start",
        )

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_locked(
    ctx: InitContext,
    tree: Sequence[Phase],
    selected: Sequence[str],
    reporter: Reporter,
    complete_init: bool,
    resume: bool,
    clock: timegate.Clock,
) -> None:
    state = State.load(ctx.root)
    at: list[tuple[str, PhaseRecord | None, float]] = []
    try:
        _run_loop(ctx, tree, selected, reporter, complete_init, resume, clock, state, at)
    except Terminated as e:
        # SIGTERM outside a phase's own work (while the journal was saved, or between two
        # phases): record it against the phase that was current.
        if not e.recorded and at and complete_init:
            path, rec, t0 = at[-1]
            if rec is not None and rec.result == Result.RUNNING:
                _fail(ctx, state, rec, reporter, path, time.monotonic() - t0, e, complete_init)
            else:
                _write_marker(ctx, path, e)
        raise


def _run_loop(
    ctx: InitContext,
    tree: Sequence[Phase],
    selected: Sequence[str],
    reporter: Reporter,
    complete_init: bool,
    resume: bool,
    clock: timegate.Clock,
    state: State,
    at: list[tuple[str, PhaseRecord | None, float]],
) -> None:
    by_path = dict(leaves(tree))
    started_all = time.monotonic()
    to_run = [p for p in selected if not (resume and state.is_done(p))]
    clock_checked = False
    for i, path in enumerate(selected):
        phase = by_path[path]
        assert phase.run is not None
        if resume and state.is_done(path):
            later = [p for p in selected[i + 1 :] if p in to_run]
            if not (phase.rerun_on_resume and later):
                reporter.info("already done (state journal), skipping", path)
                continue
            reporter.info(
                "done in an earlier run; waiting again: what it waited for may not have"
                " survived the restart",
                path,
            )
        rec = PhaseRecord(result=Result.RUNNING, started=now_iso())
        t0 = time.monotonic()
        at.append((path, rec, t0))
        state.phases[path] = rec
        state.save()
        reporter.phase_started(path)
        try:
            if path.split("/")[0] in _MINTING and not clock_checked:
                clock_checked = True
                ctx = _time_gate(ctx, clock, reporter, path)
            phase.run(ctx)
        except KubeinitError as e:
            _fail(ctx, state, rec, reporter, path, time.monotonic() - t0, e, complete_init)
            if isinstance(e, Terminated):
                e.recorded = True
            raise
        except Exception as e:
            err = PhaseFailed(
                f"internal error in phase {path}: {type(e).__name__}: {e}",
                hint="run again with --debug for a traceback and report it",
            )
            if reporter.debug_enabled:
                reporter.line(traceback.format_exc())
            _fail(ctx, state, rec, reporter, path, time.monotonic() - t0, err, complete_init)
            raise err from e
        rec.result, rec.duration = Result.DONE, round(time.monotonic() - t0, 4)
        state.save()
        notes = "; ".join(ctx.notes)
        ctx.notes.clear()
        reporter.phase_finished(path, rec.duration, notes)
        _fault_point(path)
    if complete_init:
        stamp = {"finished": now_iso(), "duration": round(time.monotonic() - started_all, 3)}
        try:
            write_file(done_stamp(ctx.root), json.dumps(stamp) + "\n", 0o644, dir_mode=0o700)
            hostfs.unlink(failed_marker(ctx.root))
        except OSError as e:
            raise StateUnreadable(
                f"cannot write the completion stamp {done_stamp(ctx.root)}: {e}",
                hint="check the disk; first boot will run again until the stamp exists",
            ) from e
        reporter.init_complete(time.monotonic() - started_all)


def _time_gate(
    ctx: InitContext, clock: timegate.Clock, reporter: Reporter, path: str
) -> InitContext:
    """The context to mint with: the same, or with the start time taken again after the clock
    caught up (every certificate's NotBefore/NotAfter derive from it)."""
    built = timegate.parse_built(ctx.profile.built if ctx.profile else "")
    if built is None:
        built = timegate.shipped_time()
    now = timegate.check_clock(built, clock, lambda text: reporter.info(text, path))
    if now is None:
        return ctx
    return dataclasses.replace(ctx, start_time=now.replace(microsecond=0))


def _fail(
    ctx: InitContext,
    state: State,
    rec: PhaseRecord,
    reporter: Reporter,
    path: str,
    duration: float,
    err: KubeinitError,
    complete_init: bool,
) -> None:
    rec.result, rec.duration = Result.FAILED, round(duration, 4)
    rec.error, rec.hint = err.message, err.hint
    state.save()
    reporter.phase_failed(path, duration, err.message, err.hint)
    if complete_init:
        _write_marker(ctx, path, err)


def _write_marker(ctx: InitContext, path: str, err: KubeinitError) -> None:
    marker = {"phase": path, "error": err.message, "hint": err.hint, "time": now_iso()}
    write_file(failed_marker(ctx.root), json.dumps(marker, indent=2) + "\n", 0o644, dir_mode=0o700)


def _fault_point(path: str) -> None:
    """Crash tests (tests/firstboot/test_crash_resume.py) stop the process here, then SIGKILL
    it: a kill at an exact phase boundary, after the journal recorded the phase as done."""
    if os.environ.get("KUBEINIT_FAULT_STOP_AFTER") == path:
        os.kill(os.getpid(), signal.SIGSTOP)
