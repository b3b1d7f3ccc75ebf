"""firstboot/runner.py: resuming from the state journal. Phases recorded as done are skipped;
a wait (`rerun_on_resume`, wait-control-plane) is run again before any later phase that still
has to run, because what it waited for may not have survived the restart (found by the power
cut in tests/e2e: the API phases then met an API server still starting)."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest

from firstboot.context import InitContext
from firstboot.log import Reporter
from firstboot.phase import Phase
from firstboot.phases import wait_control_plane
from firstboot.runner import run_phases
from firstboot.state import PhaseRecord, Result, State
from kubeinit.config import load_config
from kubeinit.identity import Identity


def _tree(calls: list[str]) -> tuple[Phase, ...]:
    def record(name: str):
        def run(ctx: InitContext) -> None:
            calls.append(name)
        return run

    return (
        Phase(name="write", summary="a write", run=record("write")),
        Phase(name="wait", summary="a wait", run=record("wait"), rerun_on_resume=True),
        Phase(name="api", summary="an API write", run=record("api")),
    )


def _run(root: Path, done: list[str]) -> tuple[list[str], str]:
    state = State(root)
    for p in done:
        state.phases[p] = PhaseRecord(result=Result.DONE, started="2026-01-01T00:00:00Z",
                                      duration=0.1)
    state.save()
    ctx = InitContext(config=load_config(None), root=root,
                      identity=Identity("node", "192.0.2.9"),
                      start_time=datetime.datetime.now(datetime.UTC))
    calls: list[str] = []
    out = io.StringIO()
    run_phases(ctx, _tree(calls), ["write", "wait", "api"], Reporter(stream=out),
               complete_init=False, resume=True)
    return calls, out.getvalue()


@pytest.mark.parametrize(("done", "ran"), [
    ([], ["write", "wait", "api"]),
    (["write"], ["wait", "api"]),
    (["write", "wait"], ["wait", "api"]),  # the wait again, before the API phase
    (["write", "wait", "api"], []),  # nothing left that needs it: not waited for again
], ids=["fresh", "before-the-wait", "after-the-wait", "everything-done"])
def test_resume_skips_done_phases_but_waits_again_before_pending_ones(
        tmp_path: Path, done: list[str], ran: list[str]) -> None:
    calls, out = _run(tmp_path, done)
    assert calls == ran
    for p in done:
        if p in ran:
            assert f"[{p}] done in an earlier run; waiting again" in out
        else:
            assert f"[{p}] already done (state journal), skipping" in out


def test_wait_control_plane_is_the_phase_that_waits_again() -> None:
    assert wait_control_plane.PHASE.rerun_on_resume
    from firstboot.phases import PHASES
    from firstboot.selection import leaves
    assert [p for p, ph in leaves(PHASES) if ph.rerun_on_resume] == ["wait-control-plane"]
