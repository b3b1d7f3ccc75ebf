"""The preflight phase: target choice, the not-applicable report, failures as one PhaseFailed,
--ignore-preflight-errors through the real CLI."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firstboot.context import InitContext
from firstboot.phases.preflight import PHASE, target_name
from kubeinit.config import load_config
from kubeinit.errors import InvalidInput, PhaseFailed
from kubeinit.identity import Identity
from tests.conftest import REPO, config_path

MANIFEST = "etc/kubernetes/manifests/etcd.yaml"
MANIFEST_CHECK = "FileAvailable--etc-kubernetes-manifests-etcd.yaml"


def _ctx(root: Path, **kw: object) -> InitContext:
    return InitContext(
        config=load_config(config_path("default")),
        root=root,
        identity=Identity("cp1", "192.0.2.10"),
        start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        **kw,  # type: ignore[arg-type]
    )


def _run(ctx: InitContext) -> None:
    assert PHASE.run is not None
    PHASE.run(ctx)


@pytest.mark.parametrize(
    ("root", "explicit", "target"),
    [
        ("/", "", "node"),
        ("/tmp/x", "", "image"),
        ("/tmp/x", "node", "node"),
        ("/", "image", "image"),
    ],
    ids=["slash-is-node", "directory-is-image", "explicit-node", "explicit-image"],
)
def test_target(root: str, explicit: str, target: str) -> None:
    assert target_name(_ctx(Path(root), preflight_target=explicit)) == target


def test_rendering_into_a_directory_prints_what_was_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = _ctx(tmp_path)
    _run(ctx)
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "not applicable" in ln)
    for name in (
        "NumCPU",
        "Port-6443",
        "CRI",
        "SystemVerification",
        "ImagePull",
        "FileContent--proc-sys-net-ipv4-ip_forward",
    ):
        assert name in line
    assert MANIFEST_CHECK not in line
    assert ctx.notes == ["24 checks not applicable to target image"]
    assert not any(tmp_path.iterdir()), "preflight wrote something"


def test_existing_manifest_fails_with_one_line_and_the_ignore_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / MANIFEST).parent.mkdir(parents=True)
    (tmp_path / MANIFEST).write_text("")
    with pytest.raises(PhaseFailed) as e:
        _run(_ctx(tmp_path))
    assert e.value.message == (
        f"1 preflight check failed: [{MANIFEST_CHECK}] {tmp_path / MANIFEST} already exists"
    )
    assert e.value.hint == f"fix them or pass --ignore-preflight-errors={MANIFEST_CHECK}"
    assert f"[ERROR {MANIFEST_CHECK}]" in capsys.readouterr().err


@pytest.mark.parametrize("ignore", [MANIFEST_CHECK.lower(), "all"], ids=["by-name", "all"])
def test_ignored_error_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ignore: str
) -> None:
    (tmp_path / MANIFEST).parent.mkdir(parents=True)
    (tmp_path / MANIFEST).write_text("")
    ctx = _ctx(tmp_path, ignore_preflight_errors=frozenset({ignore}))
    _run(ctx)
    assert f"[WARNING {MANIFEST_CHECK}]" in capsys.readouterr().err
    assert "1 warnings" in ctx.notes


def test_node_target_on_a_directory_checks_the_live_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = _ctx(tmp_path, preflight_target="node", ignore_preflight_errors=frozenset({"all"}))
    _run(ctx)
    err = capsys.readouterr().err
    assert "not applicable" not in err
    # the file under the root is missing, the live machine has no kubeinit CRI: both reported
    assert "[WARNING FileContent--proc-sys-net-ipv4-ip_forward]" in err
    assert "[WARNING ImagePull]" in err


def test_unknown_target_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        _run(_ctx(tmp_path, preflight_target="elsewhere"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firstboot", "init", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "KUBEINIT_NO_JOURNAL": "1"},
        check=False,
        timeout=120,
    )


def test_cli_phase_preflight(tmp_path: Path) -> None:
    base = ["--config", str(config_path("default")), "--root", str(tmp_path), "phase", "preflight"]
    ok = _cli(*base)
    assert ok.returncode == 0, ok.stderr
    assert "not applicable to target image" in ok.stderr
    (tmp_path / MANIFEST).parent.mkdir(parents=True)
    (tmp_path / MANIFEST).write_text("")
    bad = _cli(*base)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("kubeinit: error:")]
    assert len(errors) == 1 and MANIFEST_CHECK in errors[0]
    assert f"hint: fix them or pass --ignore-preflight-errors={MANIFEST_CHECK}" in bad.stderr
    ignored = _cli(*base[:-2], f"--ignore-preflight-errors={MANIFEST_CHECK.upper()}", *base[-2:])
    assert ignored.returncode == 0, ignored.stderr
    assert f"[WARNING {MANIFEST_CHECK}]" in ignored.stderr
