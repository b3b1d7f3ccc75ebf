"""Which phase boundary the end-to-end power-cut test cuts at (tests/e2e/test_boot.py): one per
run, rotating, printed, and overridable, so that the runs of a month cover every boundary."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from firstboot.phases import PHASES
from firstboot.selection import leaves

LEAVES = [path for path, _ in leaves(PHASES)]
# The cut happens when [X] starts on the console: the boundary between the phase before X and
# X. Every leaf but the first starts at a boundary.
CUT_BOUNDARIES = LEAVES[1:]
# The power-cut boots' disk: unflushed guest writes are lost at the cut (test_boot.py).
CUT_DISK_CACHE = "none"


def powercut_seed(env: Mapping[str, str], today: datetime.date) -> tuple[int, str]:
    """(seed, where it came from): the explicit seed, the CI run number, or the UTC day."""
    for var in ("KUBEINIT_POWERCUT_SEED", "CI_RUN_NUMBER", "GITHUB_RUN_NUMBER"):
        if env.get(var, "").isdigit():
            return int(env[var]), var
    return today.toordinal(), f"UTC day {today.isoformat()}"


def powercut_phase(env: Mapping[str, str], today: datetime.date) -> tuple[str, str]:
    """The phase whose start triggers this run's power cut, and why that one."""
    if phase := env.get("KUBEINIT_POWERCUT_PHASE"):
        assert phase in CUT_BOUNDARIES, (
            f"KUBEINIT_POWERCUT_PHASE={phase}: not one of {CUT_BOUNDARIES}")
        return phase, "KUBEINIT_POWERCUT_PHASE"
    seed, source = powercut_seed(env, today)
    i = seed % len(CUT_BOUNDARIES)
    n = len(CUT_BOUNDARIES)
    return CUT_BOUNDARIES[i], f"seed {seed} from {source}: boundary {i + 1} of {n}"
