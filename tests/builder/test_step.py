"""builder/step.py: one line per step, with its duration, also when it fails."""

from __future__ import annotations

import io
import re

import pytest

from builder.step import Progress, step


def test_step_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(Progress, "stream", out)
    with step("render the profile"):
        pass
    with pytest.raises(RuntimeError), step("write files"):
        raise RuntimeError("disk full")
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"kubeinit-build: render the profile \.\.\. \d+\.\d\d s", lines[0])
    assert re.fullmatch(r"kubeinit-build: write files \.\.\. failed after \d+\.\d\d s", lines[1])
    assert len(lines) == 2
