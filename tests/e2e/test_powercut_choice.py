"""The power-cut boundary of the end-to-end test rotates over every phase boundary, comes from
a recorded seed, and can be pinned (no VM needed)."""

from __future__ import annotations

import datetime

import pytest

from tests.e2e.powercut import CUT_BOUNDARIES, LEAVES, powercut_phase


@pytest.mark.parametrize(("env", "day", "want"), [
    ({"KUBEINIT_POWERCUT_PHASE": "upload-certs"}, 0, "upload-certs"),
    ({"KUBEINIT_POWERCUT_SEED": "0"}, 5, CUT_BOUNDARIES[0]),
    ({"CI_RUN_NUMBER": str(len(CUT_BOUNDARIES) + 2)}, 0, CUT_BOUNDARIES[2]),
    ({}, 0, "by-day"),
], ids=["override", "seed", "ci-run-number", "utc-day"])
def test_powercut_boundary_rotates_and_can_be_pinned(env: dict[str, str], day: int,
                                                     want: str) -> None:
    base = datetime.date(2026, 1, 1)
    phase, why = powercut_phase(env, base + datetime.timedelta(days=day))
    if want == "by-day":
        # consecutive days walk through every boundary
        seen = {powercut_phase({}, base + datetime.timedelta(days=d))[0]
                for d in range(len(CUT_BOUNDARIES))}
        assert seen == set(CUT_BOUNDARIES)
        assert "UTC day 2026-01-01" in why
    else:
        assert phase == want, why
    with pytest.raises(AssertionError, match="not one of"):
        powercut_phase({"KUBEINIT_POWERCUT_PHASE": "certs"}, base)




def test_every_boundary_between_two_phases_is_a_choice() -> None:
    assert len(CUT_BOUNDARIES) == len(LEAVES) - 1
    assert CUT_BOUNDARIES[0] == "certs/ca" and CUT_BOUNDARIES[-1] == "show-join-command"
