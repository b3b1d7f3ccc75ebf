"""firstboot/cli.py and the runner with the inputs of issue 9: `InitConfiguration.dryRun: true`
is a dry run exactly as `--dry-run`; kubeadm's warnings about the configuration are printed;
secrets never reach an error line, state.json, init.failed or a `--debug` traceback; a state
journal of the wrong shape is exit 3 before anything runs. The CLI runs in-process
(tests/badinput.run_cli) with real phases writing into a temporary root."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from firstboot.context import InitContext
from firstboot.log import Reporter
from firstboot.phase import Phase
from firstboot.runner import run_phases
from kubeinit import paths
from kubeinit.config import parse_config
from kubeinit.errors import PhaseFailed
from kubeinit.identity import Identity
from kubeinit.redact import REDACTED, register_secret
from tests.badinput import CERT_KEY, SECRETS, SEEDED, TOKEN, TOKEN_SECRET, init_argv, run_cli

NODE = ["--node-name", "cp1", "--advertise-address", "192.0.2.10"]
DRY = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\ndryRun: true\n"


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("dry", ["dryRun", "--dry-run", "neither"])
def test_dry_run_in_the_config_is_a_dry_run(tmp_path: Path, dry: str) -> None:
    """Finding 7: `dryRun: true` was accepted and a real init ran. With it, as with
    --dry-run, nothing is written under the root and what would be written is listed."""
    (tmp_path / "root").mkdir()
    text = DRY if dry == "dryRun" else DRY.replace("dryRun: true\n", "")
    (tmp_path / "cfg.yaml").write_text(text)
    argv = ["init", "phase", "certs", "ca", "--root", "root", "--config", "cfg.yaml", *NODE]
    argv += ["--dry-run"] if dry == "--dry-run" else []
    o = run_cli("kubeinit", argv, tmp_path)
    assert o.code == 0, o.stderr
    written = _files(tmp_path / "root")
    if dry == "neither":
        assert "etc/kubernetes/pki/ca.key" in written
        assert "dry run: would write" not in o.stderr
    else:
        assert written == [], written
        assert "dry run: would write" in o.stderr
        assert "/etc/kubernetes/pki/ca.crt" in o.stderr
    if dry == "dryRun":
        assert "cfg.yaml: dryRun: true: a dry run, as with --dry-run" in o.stderr


def test_unknown_kubelet_fields_are_printed_as_warnings(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "cfg.yaml").write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfooBar: 1\n"
    )
    o = run_cli("kubeinit", init_argv("--config", "cfg.yaml"), tmp_path)
    assert o.code == 0, o.stderr
    assert (
        'WARNING: cfg.yaml: KubeletConfiguration: strict decoding error: unknown field "fooBar"'
        in o.stderr
    )
    b = run_cli("kubeinit-build", ["--root", "root", "--dry-run", "--config", "cfg.yaml"], tmp_path)
    assert (
        "kubeinit-build: warning: cfg.yaml: KubeletConfiguration: strict decoding error:"
        ' unknown field "fooBar"' in b.stderr
    )


def test_unknown_kube_proxy_fields_are_printed_as_warnings(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "cfg.yaml").write_text(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
        "iptables:\n  fooBar: 1\n"
    )
    o = run_cli("kubeinit", init_argv("--config", "cfg.yaml"), tmp_path)
    assert o.code == 0, o.stderr
    assert (
        "WARNING: cfg.yaml: KubeProxyConfiguration: strict decoding error: unknown field"
        ' "iptables.fooBar"' in o.stderr
    )


def test_debug_traceback_of_an_internal_error_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 8: --debug tracebacks were not redacted. A bug whose exception quotes the
    configuration's certificate key and token: the one line and the traceback mask both."""
    import kubeinit.identity

    def boom(config: object, **_: object) -> None:
        raise RuntimeError(f"boom: key={CERT_KEY} token={TOKEN}")

    monkeypatch.setattr(kubeinit.identity, "resolve_identity", boom)
    (tmp_path / "root").mkdir()
    (tmp_path / "cfg.yaml").write_text(SEEDED)
    o = run_cli("kubeinit", [*init_argv("--config", "cfg.yaml"), "--debug"], tmp_path)
    assert o.code == 1
    assert "Traceback (most recent call last)" in o.stderr
    assert f"kubeinit: error: internal error: RuntimeError: boom: key={REDACTED}" in o.stderr
    assert f"token={REDACTED}" in o.stderr
    for s in SECRETS:
        assert s not in o.stdout + o.stderr
    plain = run_cli("kubeinit", init_argv("--config", "cfg.yaml"), tmp_path)
    assert "Traceback" not in plain.stderr
    assert plain.stderr.splitlines()[-1] == (
        "hint: run again with --debug for a traceback and report it"
    )


@pytest.mark.parametrize("kind", ["phase-error", "internal-error"])
def test_secrets_never_reach_state_json_or_init_failed(tmp_path: Path, kind: str) -> None:
    """Finding 8: a rejected token or key was echoed into the error line, and so into the
    journal, state.json and init.failed. The real runner with a phase that fails quoting both
    secrets (registered, as the config parser and the credential loaders register them)."""
    register_secret(CERT_KEY)

    def fail(ctx: InitContext) -> None:
        text = f"cannot use token {TOKEN} with key {CERT_KEY}"
        if kind == "phase-error":
            raise PhaseFailed(text, hint=f"try {TOKEN}")
        raise ValueError(text)

    tree = (Phase(name="leaky", summary="fails quoting secrets", run=fail),)
    root = tmp_path / "root"
    root.mkdir()
    config = parse_config(SEEDED)
    ctx = InitContext(
        config=config,
        root=root,
        identity=Identity("cp1", "192.0.2.10"),
        start_time=datetime.datetime.now(datetime.UTC),
    )
    log = tmp_path / "log"
    with log.open("w") as stream, pytest.raises(PhaseFailed) as e:
        run_phases(ctx, tree, ["leaky"], Reporter(stream=stream), complete_init=True, resume=True)
    state = (root / str(paths.STATE_FILE).lstrip("/")).read_text()
    failed = (root / str(paths.FAILED_MARKER).lstrip("/")).read_text()
    assert json.loads(state)["phases"]["leaky"]["result"] == "failed"
    assert json.loads(failed)["phase"] == "leaky"
    for where, text in (
        ("state.json", state),
        ("init.failed", failed),
        ("log", log.read_text()),
        ("error", e.value.message + e.value.hint),
    ):
        assert TOKEN_SECRET not in text, where
        assert CERT_KEY not in text, where
        assert REDACTED in text, where


def test_state_of_the_wrong_shape_stops_init_before_any_phase(tmp_path: Path) -> None:
    """Finding 8: a state.json of the wrong JSON shape gave an AttributeError. It is exit 3
    with one line, and no phase runs (nothing is written)."""
    state = tmp_path / "root" / str(paths.STATE_FILE).lstrip("/")
    state.parent.mkdir(parents=True)
    state.write_text('["not", "a", "journal"]')
    o = run_cli("kubeinit", ["init", "phase", "certs", "ca", "--root", "root", *NODE], tmp_path)
    assert o.code == 3, o.stderr
    lines = o.stderr.replace(str(tmp_path.resolve()) + "/", "").splitlines()
    assert lines == [
        "kubeinit: error: root/var/lib/kubeinit/state.json: state journal unreadable:"
        " expected a JSON object, got a list",
        "hint: inspect it; remove it only to restart the phases from scratch (existing keys"
        " and CAs are reused)",
    ], o.stderr
    assert not (tmp_path / "root/etc/kubernetes/pki/ca.key").exists()


def test_build_with_dry_run_in_the_config_says_what_first_boot_will_do(tmp_path: Path) -> None:
    """The builder bakes the configuration as given; dryRun: true then makes every first boot
    a dry run, which it says rather than leave silent."""
    (tmp_path / "root").mkdir()
    (tmp_path / "cfg.yaml").write_text(DRY)
    b = run_cli("kubeinit-build", ["--root", "root", "--dry-run", "--config", "cfg.yaml"], tmp_path)
    assert (
        "kubeinit-build: warning: cfg.yaml: dryRun: true: first boot of this image will only"
        " dry-run" in b.stderr
    ), b.stderr
