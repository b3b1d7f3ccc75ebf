"""Runs selected phases in tree order, frames them for the operator and keeps the journal."""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
from collections.abc import Sequence

from firstboot.context import InitContext
from firstboot.log import Reporter
from firstboot.phase import Phase
from firstboot.selection import leaves
from firstboot.state import PhaseRecord, Result, State, done_stamp, failed_marker, now_iso
from kubeinit.errors import KubeinitError, PhaseFailed, StateUnreadable
from kubeinit.fs import write_file


def run_phases(
    ctx: InitContext,
    tree: Sequence[Phase],
    selected: Sequence[str],
    reporter: Reporter,
    *,
    complete_init: bool,
    resume: bool,
) -> None:
    """Run `selected` leaf phases. With `resume`, phases the journal records as done are not
    run again (a crashed first boot picks up where it stopped). With `complete_init`, the
    completion stamp is written after the last phase, and a failure writes the failure marker.
    """
    state = State.load(ctx.root)
    by_path = dict(leaves(tree))
    started_all = time.monotonic()
    to_run = [p for p in selected if not (resume and state.is_done(p))]
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
        state.phases[path] = rec
        state.save()
        reporter.phase_started(path)
        t0 = time.monotonic()
        try:
            phase.run(ctx)
        except KubeinitError as e:
            _fail(ctx, state, rec, reporter, path, time.monotonic() - t0, e, complete_init)
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
            failed_marker(ctx.root).unlink(missing_ok=True)
        except OSError as e:
            raise StateUnreadable(
                f"cannot write the completion stamp {done_stamp(ctx.root)}: {e}",
                hint="check the disk; first boot will run again until the stamp exists",
            ) from e
        reporter.init_complete(time.monotonic() - started_all)


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
        marker = {"phase": path, "error": err.message, "hint": err.hint, "time": now_iso()}
        write_file(
            failed_marker(ctx.root), json.dumps(marker, indent=2) + "\n", 0o644, dir_mode=0o700
        )


def _fault_point(path: str) -> None:
    """Crash tests (tests/firstboot/test_crash_resume.py) stop the process here, then SIGKILL
    it: a kill at an exact phase boundary, after the journal recorded the phase as done."""
    if os.environ.get("KUBEINIT_FAULT_STOP_AFTER") == path:
        os.kill(os.getpid(), signal.SIGSTOP)
