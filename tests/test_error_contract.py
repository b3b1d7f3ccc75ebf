"""The error contract holds for every input (issue 9): whatever bytes or structured garbage
kubeinit and kubeinit-build are given as a configuration, a state journal, an image profile or
argv, they exit 0, 2 or 3, print one error line followed by a `hint:` line, never a traceback,
and never a bootstrap token secret or certificate key (seeded into the inputs: tests/badinput.py
SECRETS). The CLIs run in-process for speed (hypothesis, bounded example counts); a few cases
run as real processes. The table in docs/bad-input.md is checked against what the commands
print, so the doc cannot drift."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.badinput import (
    ALIAS_BOMB,
    CASES,
    CERT_KEY,
    DOC,
    REPO,
    SECRETS,
    SEEDED,
    TOKEN,
    Case,
    Outcome,
    contract_violations,
    generate,
    init_argv,
    nonroot_status,
    run_case,
    run_cli,
)

SETTINGS = settings(
    max_examples=int(os.environ.get("KUBEINIT_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "root").mkdir()
        yield Path(d)


def _clean_root(workdir: Path) -> None:
    """The root as the harness expects it: empty (a case may have planted files)."""
    import shutil

    shutil.rmtree(workdir / "root", ignore_errors=True)
    (workdir / "root").mkdir()


def _assert_contract(o: Outcome, what: str, *, debug: bool = False) -> None:
    # --hypothesis-show-statistics: how far the examples got (exit code, error kind)
    first = next((ln for ln in o.stderr.splitlines() if ": error: " in ln), "")
    event(
        f"exit {o.code}: "
        + (re.sub(r"[^a-zA-Z ]", "", first.split(":")[-1])[:30] if o.code else "ok")
    )
    bad = contract_violations(o)
    if debug:  # --debug adds the traceback (masked: the secrets check still holds)
        bad = [b for b in bad if b != "a traceback"]
    assert not bad, (
        f"{what}: {', '.join(bad)}\nstdout: {o.stdout[-800:]}\nstderr: {o.stderr[-1500:]}"
    )


# --- the table: every documented case, and the doc itself ------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.group}-{c.name}")
def test_every_bad_input_case_keeps_the_contract(case: Case, tmp_path: Path) -> None:
    o = run_case(case, tmp_path)
    assert o.code == case.expect, o.stderr
    bad = contract_violations(o, allowed=(case.expect,))
    assert not bad, f"{', '.join(bad)}\n{o.stderr}"


def test_nonroot_status_is_one_line_exit_3() -> None:
    """Finding 8: `kubeinit status` as a user who may not read the state gave a
    PermissionError traceback."""
    o = nonroot_status()
    assert o.code == 3, o.stderr
    assert not contract_violations(o, allowed=(3,)), o.stderr
    assert "permission denied" in o.stderr and "run it as root" in o.stderr


def test_docs_bad_input_table_matches_what_the_commands_print() -> None:
    assert DOC.read_text() == generate(), "docs/bad-input.md drifted: python -m tests.badinput"


# --- hypothesis: configurations ----------------------------------------------------------------

KEYS = [
    "apiVersion",
    "kind",
    "bootstrapTokens",
    "token",
    "ttl",
    "expires",
    "usages",
    "groups",
    "description",
    "dryRun",
    "nodeRegistration",
    "name",
    "criSocket",
    "taints",
    "key",
    "value",
    "effect",
    "kubeletExtraArgs",
    "ignorePreflightErrors",
    "imagePullPolicy",
    "imagePullSerial",
    "localAPIEndpoint",
    "advertiseAddress",
    "bindPort",
    "certificateKey",
    "skipPhases",
    "patches",
    "directory",
    "timeouts",
    "kubernetesAPICall",
    "etcd",
    "local",
    "external",
    "dataDir",
    "endpoints",
    "caFile",
    "networking",
    "serviceSubnet",
    "podSubnet",
    "dnsDomain",
    "kubernetesVersion",
    "controlPlaneEndpoint",
    "apiServer",
    "certSANs",
    "extraArgs",
    "extraVolumes",
    "hostPath",
    "controllerManager",
    "scheduler",
    "dns",
    "proxy",
    "disabled",
    "certificatesDir",
    "imageRepository",
    "featureGates",
    "clusterName",
    "encryptionAlgorithm",
    "certificateValidityPeriod",
    "maxPods",
    "authentication",
    "syncFrequency",
    "mode",
]
API_KINDS = [
    ("kubeadm.k8s.io/v1beta4", "InitConfiguration"),
    ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"),
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"),
    ("kubeadm.k8s.io/v1beta3", "InitConfiguration"),
]
PLAIN = [
    "",
    "0s",
    "24h",
    "99999999999999h",
    "/etc/../x",
    "10.244.0.0/16",
    "192.0.2.10",
    "v1.37.2",
    "next tuesday",
    "2030-01-02T15:04:05Z",
    "-1m",
    "Never",
    "true",
    "::",
    "unix:///x.sock",
]


def _scalars(secrets: bool) -> st.SearchStrategy[Any]:
    words = [*PLAIN, TOKEN, CERT_KEY, TOKEN.upper(), CERT_KEY[:-1]] if secrets else PLAIN
    return st.one_of(
        st.sampled_from(words),
        st.text(max_size=20),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def _tree(secrets: bool = True) -> st.SearchStrategy[Any]:
    """JSON-like garbage with kubeadm's keys; with `secrets`, the seeded token and certificate
    key turn up anywhere (kubeinit must mask them wherever it echoes a value)."""
    return st.recursive(
        _scalars(secrets),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5
            ),
        ),
        max_leaves=25,
    )


@st.composite
def documents(draw: st.DrawFn) -> list[Any]:
    docs: list[Any] = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        body = draw(st.dictionaries(st.sampled_from(KEYS), _tree(), max_size=6))
        if draw(st.booleans()) or not body:
            api, kind = draw(st.sampled_from(API_KINDS))
            body = {"apiVersion": api, "kind": kind, **body}
        docs.append(body if draw(st.integers(0, 9)) else draw(_tree()))
    if draw(st.booleans()):  # always a seeded secret somewhere
        docs.append(yaml.safe_load_all(SEEDED).__next__())
    return docs


RICH = [
    {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "InitConfiguration",
        "bootstrapTokens": [{"token": TOKEN, "ttl": "24h0m0s", "usages": ["signing"]}],
        "certificateKey": CERT_KEY,
        "localAPIEndpoint": {"advertiseAddress": "192.0.2.10", "bindPort": 6443},
        "nodeRegistration": {"name": "cp1", "criSocket": "unix:///run/c.sock", "taints": []},
        "timeouts": {"kubernetesAPICall": "1m0s"},
    },
    {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "kubernetesVersion": "v1.37.2",
        "networking": {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"},
        "etcd": {"local": {"dataDir": "/var/lib/etcd", "extraArgs": [{"name": "a", "value": "b"}]}},
        "apiServer": {"certSANs": ["api.example.com"], "extraEnvs": [{"name": "A", "value": "1"}]},
        "controlPlaneEndpoint": "api.example.com:6443",
        "certificateValidityPeriod": "8760h0m0s",
    },
    {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "maxPods": 110,
        "authentication": {"webhook": {"cacheTTL": "2m0s"}},
        "logging": {"vmodule": [{"filePattern": "x", "verbosity": 2}]},
    },
    {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
    },
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_rich(draw: st.DrawFn) -> list[Any]:
    """A rich valid configuration with 1-3 places (deep ones included) set to garbage, a key
    added, or a key dropped: examples that get past the document checks into validation."""
    import copy

    docs = copy.deepcopy(RICH)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(docs) if len(p) >= 2]
        path = draw(st.sampled_from(paths))
        parent = docs
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["set", "set", "add", "drop"]))
        if action == "drop" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(_tree())
        else:
            parent[path[-1]] = draw(_tree())
    return docs


def _render(docs: list[Any], style: str) -> str:
    if style == "json":
        return "\n---\n".join(json.dumps(d, default=str) for d in docs)
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def _mutations() -> st.SearchStrategy[bytes]:
    """The seeded good configuration with bytes cut, inserted or flipped."""
    base = SEEDED.encode()
    return st.tuples(st.integers(0, len(base)), st.integers(0, 40), st.binary(max_size=12)).map(
        lambda t: base[: t[0]] + t[2] + base[t[0] + t[1] :]
    )


def _run_config(workdir: Path, data: bytes, debug: bool = False) -> Outcome:
    (workdir / "cfg.yaml").write_bytes(data)
    return run_cli(
        "kubeinit", init_argv("--config", "cfg.yaml", *(["--debug"] if debug else [])), workdir
    )


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_config_arbitrary_bytes(workdir: Path, data: bytes) -> None:
    _assert_contract(_run_config(workdir, data), "config bytes")


@SETTINGS
@given(data=_mutations())
def test_config_mutated_seeded_file(workdir: Path, data: bytes) -> None:
    _assert_contract(_run_config(workdir, data), "mutated config")


@SETTINGS
@given(docs=st.one_of(documents(), mutated_rich()), style=st.sampled_from(["yaml", "json"]))
def test_config_structured_garbage(workdir: Path, docs: list[Any], style: str) -> None:
    _assert_contract(_run_config(workdir, _render(docs, style).encode()), "structured config")


@settings(SETTINGS, max_examples=50)
@given(docs=st.one_of(documents(), mutated_rich()))
def test_config_debug_output_is_masked(workdir: Path, docs: list[Any]) -> None:
    """--debug adds the traceback; the secrets stay masked in it."""
    o = _run_config(workdir, _render(docs, "yaml").encode(), debug=True)
    for s in SECRETS:
        assert s not in o.stdout + o.stderr
    assert o.code in (0, 2, 3), o.stderr[-1500:]


def test_build_reads_configs_through_the_same_guarded_loader(tmp_path: Path) -> None:
    """kubeinit-build: the alias bomb and the overflowing duration are refused before any
    check of the target (build and first boot share the loader), also with
    --kubernetes-version, which re-reads the file's documents."""
    (tmp_path / "root").mkdir()
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    for extra in ([], ["--kubernetes-version", "v1.37.2"]):
        o = run_cli(
            "kubeinit-build",
            ["--root", "root", "--dry-run", "--config", "bomb.yaml", *extra],
            tmp_path,
        )
        assert o.code == 2 and "YAML aliases" in o.stderr, o.stderr
        assert not contract_violations(o, allowed=(2,))


# --- hypothesis: state.json --------------------------------------------------------------------


def _state_tree() -> st.SearchStrategy[Any]:
    record = st.dictionaries(
        st.sampled_from(["result", "started", "duration", "error", "hint", "x"]),
        st.one_of(st.sampled_from(["done", "failed", "running", "skipped", TOKEN]), _tree()),
        max_size=5,
    )
    good = st.fixed_dictionaries(
        {
            "schema": st.sampled_from([1, 1, 1, 2, "1", None]),
            "phases": st.one_of(st.dictionaries(st.text(max_size=12), record, max_size=4), _tree()),
        }
    )
    return st.one_of(good, _tree())


def _run_status(workdir: Path, data: bytes) -> Outcome:
    f = workdir / "root/var/lib/kubeinit/state.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    return run_cli("kubeinit", ["status", "--root", "root"], workdir)


def _status_ok(o: Outcome) -> None:
    # status exits 1 for "first boot not complete": that is its answer, not an error
    if o.code == 1 and "kubeinit: error:" not in o.stderr:
        o = Outcome(0, o.stdout, o.stderr)
    _assert_contract(o, "state.json")


@SETTINGS
@given(data=st.binary(max_size=1024))
def test_state_arbitrary_bytes(workdir: Path, data: bytes) -> None:
    _status_ok(_run_status(workdir, data))


@SETTINGS
@given(tree=_state_tree())
def test_state_structured_garbage(workdir: Path, tree: Any) -> None:
    _status_ok(_run_status(workdir, json.dumps(tree, default=str).encode()))


# --- hypothesis: the image profile -------------------------------------------------------------


@pytest.fixture(scope="module")
def good_profile() -> dict[str, Any]:
    from tests.badinput import _good_profile

    return _good_profile()


def _run_profile(workdir: Path, data: bytes) -> Outcome:
    _clean_root(workdir)
    f = workdir / "root/usr/lib/kubeinit/profile.json"
    f.parent.mkdir(parents=True)
    f.write_bytes(data)
    return run_cli("kubeinit", init_argv(), workdir)


@SETTINGS
@given(data=st.binary(max_size=1024))
def test_profile_arbitrary_bytes(workdir: Path, data: bytes) -> None:
    _assert_contract(_run_profile(workdir, data), "profile bytes")


@SETTINGS
@given(
    key=st.text(max_size=12),
    value=_tree(secrets=False),
    pick=st.integers(0, 100),
    drop=st.booleans(),
)
def test_profile_structured_garbage(
    workdir: Path, good_profile: dict[str, Any], key: str, value: Any, pick: int, drop: bool
) -> None:
    """A good profile with one key replaced, dropped or added. The builder refuses
    configurations with secrets (builder.render), so the only secrets a profile can carry are
    in its config, which gets the seeded configuration half of the time."""
    data = dict(good_profile)
    keys = sorted(data)
    target = keys[pick % len(keys)] if pick < 90 else key
    if drop and target in data:
        del data[target]
    else:
        data[target] = SEEDED if (target == "config" and pick % 2) else value
    _assert_contract(_run_profile(workdir, json.dumps(data, default=str).encode()), "profile")


# --- hypothesis: argv --------------------------------------------------------------------------

WORDS = [
    "init",
    "status",
    "join-command",
    "phases",
    "phase",
    "certs",
    "all",
    "ca",
    "--root",
    "root",
    "--config",
    "cfg.yaml",
    "--skip-phases",
    "--dry-run",
    "--debug",
    "--local-only",
    "--node-name",
    "--advertise-address",
    "--preflight-target",
    "node",
    "image",
    "--ignore-preflight-errors",
    "--kernel-cmdline",
    "--json",
    "--refresh",
    "--control-plane",
    "--image",
    "--output",
    "--kubernetes-version",
    "v1.37.2",
    "--images",
    "--lock-timeout",
    TOKEN,
    CERT_KEY,
    "--token",
    "--certificate-key",
    "-",
    "--",
    "=",
]
# Commands that would really run phases or talk to an API server are not generated.
RUNS_PHASES = {"init", "join-command"}


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    words = draw(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=10)), max_size=7))
    return [w.replace("\0", "") for w in words]


@SETTINGS
@given(argv=argvs())
def test_kubeinit_argv(workdir: Path, argv: list[str]) -> None:
    _clean_root(workdir)
    if argv and argv[0] in RUNS_PHASES:
        # keep it to reading inputs: a dry run of no phase (the parser still sees the rest)
        argv = [argv[0], *argv[1:], *init_argv()[1:]] if argv[0] == "init" else argv
        if argv[0] == "join-command":
            argv = [a for a in argv if a != "--refresh"]
    o = run_cli("kubeinit", argv, workdir)
    if argv[:1] == ["status"] and o.code == 1 and "kubeinit: error:" not in o.stderr:
        o = Outcome(0, o.stdout, o.stderr)
    _assert_contract(o, f"kubeinit {argv}", debug="--debug" in argv)


@SETTINGS
@given(argv=argvs())
def test_kubeinit_build_argv(workdir: Path, argv: list[str]) -> None:
    _clean_root(workdir)
    # never a real build: always a dry run, and --image only of a file that is no image
    (workdir / "junk.img").write_bytes(b"\0" * 4096)
    argv = [
        "junk.img" if a in ("root", "cfg.yaml") and i and argv[i - 1] == "--image" else a
        for i, a in enumerate(argv)
    ]
    o = run_cli("kubeinit-build", [*argv, "--dry-run"], workdir)
    # a --root tree that is no OS tree: the image check lists its findings, then one error
    _assert_contract(o, f"kubeinit-build {argv}", debug="--debug" in argv)


# --- real processes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "args", "files", "code"),
    [
        ("firstboot", init_argv("--config", "cfg.yaml"), {"cfg.yaml": ALIAS_BOMB}, 2),
        ("firstboot", init_argv("--config", "cfg.yaml"), {"cfg.yaml": "[" * 200_000}, 2),
        (
            "firstboot",
            init_argv("--config", "cfg.yaml", "--debug"),
            {"cfg.yaml": f"{SEEDED}---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: Nope\n"},
            2,
        ),
        (
            "firstboot",
            ["status", "--root", "root"],
            {"root/var/lib/kubeinit/state.json": "[1, 2]"},
            3,
        ),
        ("firstboot", ["init", "--certificate-key", CERT_KEY, "--token", TOKEN], {}, 2),
        (
            "builder",
            ["--root", "root", "--dry-run", "--config", "cfg.yaml"],
            {"cfg.yaml": ALIAS_BOMB},
            2,
        ),
    ],
    ids=[
        "alias-bomb",
        "deep-nesting",
        "debug-traceback-masked",
        "state-list",
        "argv-secrets",
        "build-alias-bomb",
    ],
)
def test_real_processes_keep_the_contract(
    tmp_path: Path, module: str, args: list[str], files: dict[str, str], code: int
) -> None:
    (tmp_path / "root").mkdir()
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    p = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    o = Outcome(p.returncode, p.stdout, p.stderr)
    assert o.code == code, o.stderr
    if "--debug" in args:
        assert "Traceback (most recent call last)" in o.stderr  # --debug does show it
        assert "kinit1.<redacted>" in o.stderr or "<redacted>" in o.stderr or TOKEN not in o.stderr
        for s in SECRETS:
            assert s not in o.stdout + o.stderr
    else:
        assert not contract_violations(o, allowed=(code,)), o.stderr
