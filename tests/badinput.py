"""The bad-input table (issue 9): every kind of bad input kubeinit and kubeinit-build can be
given (configurations, state files, profiles, images, argv), run for real, with the exact error
each gets. docs/bad-input.md is generated from this table by running every case:

    .venv/bin/python -m tests.badinput            # rewrite docs/bad-input.md
    .venv/bin/python -m tests.badinput --check    # exit 1 when the doc differs from reality

tests/test_error_contract.py checks the doc against reality on every run, so it cannot drift.
The CLIs run in-process (`run_cli`) from a scratch directory with relative paths, so the error
lines carry no temporary directory names.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "bad-input.md"

# Known secrets seeded into inputs: none of them may ever appear in any output.
TOKEN = "kinit1.s3cr3tt0k3nv4lue"
TOKEN_SECRET = TOKEN.split(".")[1]
CERT_KEY = "c0ffee00" * 8
SECRETS = (TOKEN_SECRET, CERT_KEY)

INIT_HEAD = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
CLUSTER_HEAD = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
PROXY_HEAD = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
KUBELET_HEAD = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
# A good configuration that carries both secrets: garbage is made from it.
SEEDED = (
    INIT_HEAD
    + f"bootstrapTokens:\n- token: {TOKEN}\n  ttl: 24h0m0s\ncertificateKey: {CERT_KEY}\n"
    + "localAPIEndpoint:\n  advertiseAddress: 192.0.2.10\nnodeRegistration:\n  name: cp1\n"
    + "---\n"
    + CLUSTER_HEAD
    + "kubernetesVersion: v1.37.2\n"
)
# An alias bomb like finding 6's (553 bytes there): nine levels of nine aliases (9^9 strings).
ALIAS_BOMB = (
    PROXY_HEAD
    + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def _phase_names() -> str:
    from firstboot.phases import PHASES

    return ",".join(p.name for p in PHASES)


def run_cli(prog: str, argv: Sequence[str], cwd: Path) -> Outcome:
    """`kubeinit` or `kubeinit-build` in this process, from `cwd`: exit code and output."""
    from kubeinit import redact

    if prog == "kubeinit":
        from firstboot.cli import main
    else:
        from builder.cli import main  # type: ignore[assignment]
    from builder.step import Progress

    redact._secrets.clear()  # a fresh process has registered nothing
    out, err = io.StringIO(), io.StringIO()
    old, old_progress = os.getcwd(), Progress.stream
    os.chdir(cwd)
    Progress.stream = err  # kubeinit-build's step lines go to its stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(old)
        Progress.stream = old_progress
    return Outcome(int(code), out.getvalue(), err.getvalue())


def init_argv(*extra: str) -> list[str]:
    """`kubeinit init` that reads every input (config, profile, identity) and then runs no
    phase and writes nothing (a dry run with every phase skipped)."""
    return ["init", "--root", "root", "--dry-run", "--skip-phases", _phase_names(), *extra]


ERROR_LINE = re.compile(r"^(kubeinit|kubeinit-build): error: (?!\[)")


def contract_violations(o: Outcome, *, allowed: Sequence[int] = (0, 2, 3)) -> list[str]:
    """What in `o` breaks the error contract: exit code, one error line then a hint line, no
    traceback, no seeded secret."""
    bad = []
    if o.code not in allowed:
        bad.append(f"exit code {o.code}")
    both = o.stdout + o.stderr
    if "Traceback (most recent call last)" in both:
        bad.append("a traceback")
    for s in SECRETS:
        if s in both:
            bad.append(f"the secret {s[:4]}... is echoed")
    if o.code != 0:
        lines = o.stderr.splitlines()
        errors = [i for i, line in enumerate(lines) if ERROR_LINE.match(line)]
        if len(errors) != 1:
            bad.append(f"{len(errors)} error lines")
        elif errors[0] + 1 >= len(lines) or not lines[errors[0] + 1].startswith("hint: "):
            bad.append("no hint line after the error line")
    return bad


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    prog: str
    argv: tuple[str, ...]
    files: dict[str, bytes | str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    expect: int = 2


def _cfg(name: str, text: str | bytes, expect: int = 2) -> Case:
    return Case(
        "config",
        name,
        "kubeinit",
        tuple(init_argv("--config", "cfg.yaml")),
        {"cfg.yaml": text},
        expect=expect,
    )


def _state(name: str, data: bytes) -> Case:
    return Case(
        "state",
        name,
        "kubeinit",
        ("status", "--root", "root"),
        {"root/var/lib/kubeinit/state.json": data},
        expect=3,
    )


def _good_profile() -> dict[str, object]:
    from builder.render import render_profile
    from kubeinit.config import parse_config
    from kubeinit.profile import to_data

    with tempfile.TemporaryDirectory() as facts:
        return to_data(render_profile(parse_config(""), "", Path(facts)))


def _profile(name: str, mutate: Callable[[dict[str, object]], object] | bytes) -> Case:
    def setup(d: Path) -> None:
        p = d / "root/usr/lib/kubeinit/profile.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(mutate, bytes):
            p.write_bytes(mutate)
        else:
            data = _good_profile()
            p.write_text(json.dumps(mutate(data)))

    return Case("profile", name, "kubeinit", tuple(init_argv()), setup=setup, expect=3)


def _set(key: str, value: object) -> Callable[[dict[str, object]], object]:
    def f(d: dict[str, object]) -> object:
        d[key] = value
        return d

    return f


def _drop(key: str) -> Callable[[dict[str, object]], object]:
    def f(d: dict[str, object]) -> object:
        d.pop(key)
        return d

    return f


def _build(
    name: str,
    argv: Sequence[str],
    files: dict[str, bytes | str] | None = None,
    expect: int = 2,
    group: str = "image",
) -> Case:
    return Case(group, name, "kubeinit-build", tuple(argv), files or {}, expect=expect)


def _argv(name: str, prog: str, argv: Sequence[str]) -> Case:
    return Case("argv", name, prog, tuple(argv), expect=2)


JOIN_INFO = "root/etc/kubeinit/join.json"


def _join(name: str, files: dict[str, bytes | str], *extra: str) -> Case:
    """`kubeinit join-command` on a node whose join files (written by first boot's
    show-join-command phase) are missing or unreadable: state, exit 3."""
    return Case(
        "join", name, "kubeinit", ("join-command", "--root", "root", *extra), files, expect=3
    )


CASES: tuple[Case, ...] = (
    # configurations (kubeinit init --config; kubeinit-build reads them with the same loader)
    _cfg("YAML alias bomb (9^9 strings) in a KubeProxyConfiguration", ALIAS_BOMB),
    _cfg("200,000 levels of nesting", "[" * 200_000 + "]" * 200_000),
    _cfg(
        "70 levels of nested mappings",
        "".join("  " * i + "a:\n" for i in range(70)) + "  " * 70 + "b: 1\n",
    ),
    _cfg("a 2 MiB configuration", CLUSTER_HEAD + "#" + "x" * (2 << 20) + "\n"),
    _cfg("not UTF-8", b"\xff\xfe" + CLUSTER_HEAD.encode()),
    _cfg("malformed YAML", CLUSTER_HEAD + "networking: [\n"),
    _cfg("a document that is not a mapping", "- a\n- b\n"),
    _cfg("unknown kind", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"),
    _cfg(
        "an older kubeadm API", "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
    ),
    _cfg("the same kind twice", CLUSTER_HEAD + "---\n" + CLUSTER_HEAD),
    _cfg("unknown field", CLUSTER_HEAD + "networking:\n  podSubnets: 10.244.0.0/16\n"),
    _cfg("wrong type", CLUSTER_HEAD + "networking: 10.244.0.0/16\n"),
    _cfg(
        "certificateValidityPeriod: 99999999999999h",
        CLUSTER_HEAD + "certificateValidityPeriod: 99999999999999h\n",
    ),
    _cfg("negative duration", INIT_HEAD + "timeouts:\n  kubernetesAPICall: -1m\n"),
    _cfg(
        "'..' in certificatesDir",
        CLUSTER_HEAD + "certificatesDir: /etc/kubernetes/../../root/pki\n",
    ),
    _cfg(
        "'..' in etcd.local.dataDir",
        CLUSTER_HEAD + "etcd:\n  local:\n    dataDir: /var/lib/../../etc\n",
    ),
    _cfg("relative certificatesDir", CLUSTER_HEAD + "certificatesDir: pki\n"),
    _cfg(
        "'..' in etcd.external.caFile",
        CLUSTER_HEAD + "etcd:\n  external:\n    endpoints: [https://e:2379]\n"
        "    caFile: /etc/../../root/ca.crt\n",
    ),
    _cfg(
        "bootstrapTokens[].expires: next tuesday",
        INIT_HEAD + f"bootstrapTokens:\n- token: {TOKEN}\n  expires: next tuesday\n",
    ),
    _cfg(
        "bootstrapTokens[].expires, valid (kubeadm refuses it too)",
        INIT_HEAD + f"bootstrapTokens:\n- token: {TOKEN}\n  expires: 2030-01-02T15:04:05Z\n",
    ),
    _cfg("malformed bootstrap token", INIT_HEAD + f"bootstrapTokens:\n- token: {TOKEN.upper()}\n"),
    _cfg(
        "bootstrap token of the wrong type", INIT_HEAD + f"bootstrapTokens:\n- token: [{TOKEN}]\n"
    ),
    _cfg("token given as a duration", INIT_HEAD + f"bootstrapTokens:\n- ttl: {TOKEN}\n"),
    _cfg("malformed certificateKey", INIT_HEAD + f"certificateKey: {CERT_KEY[:-2]}zz\n"),
    _cfg("certificateKey of the wrong type", INIT_HEAD + f"certificateKey:\n  key: {CERT_KEY}\n"),
    _cfg(
        "nodeRegistration.imagePullSerial: false",
        INIT_HEAD + "nodeRegistration:\n  imagePullSerial: false\n",
    ),
    _cfg("patches.directory", INIT_HEAD + "patches:\n  directory: /etc/kubeinit/patches\n"),
    _cfg(
        "RootlessControlPlane feature gate",
        CLUSTER_HEAD + "featureGates:\n  RootlessControlPlane: true\n",
    ),
    _cfg("unknown feature gate", CLUSTER_HEAD + "featureGates:\n  NoSuchGate: true\n"),
    _cfg("KubeletConfiguration field of the wrong type", KUBELET_HEAD + "maxPods: lots\n"),
    _cfg("unsupported Kubernetes version", CLUSTER_HEAD + "kubernetesVersion: v1.20.0\n"),
    _cfg(
        "overlapping pod and service subnets",
        CLUSTER_HEAD + "networking:\n  podSubnet: 10.96.0.0/16\n",
    ),
    Case("config", "no such file", "kubeinit", tuple(init_argv("--config", "missing.yaml"))),
    Case("config", "a directory", "kubeinit", tuple(init_argv("--config", "root"))),
    Case(
        "config",
        "same bad configuration, at build time",
        "kubeinit-build",
        ("--root", "root", "--dry-run", "--config", "cfg.yaml"),
        {"cfg.yaml": CLUSTER_HEAD + "certificateValidityPeriod: 99999999999999h\n"},
    ),
    Case(
        "config",
        "alias bomb at build time",
        "kubeinit-build",
        ("--root", "root", "--dry-run", "--config", "cfg.yaml"),
        {"cfg.yaml": ALIAS_BOMB},
    ),
    # the state journal (kubeinit status; kubeinit init reads it the same way)
    _state("garbage bytes", b"\xff\xfe\x00garbage"),
    _state("not JSON", b"{schema: 1"),
    _state("a JSON list", b"[]"),
    _state("no phases", b'{"schema": 1}'),
    _state("phases is a list", b'{"schema": 1, "phases": []}'),
    _state(
        "a record without started", b'{"schema": 1, "phases": {"certs/ca": {"result": "done"}}}'
    ),
    _state("a record of the wrong type", b'{"schema": 1, "phases": {"certs/ca": "done"}}'),
    _state(
        "an unknown result",
        b'{"schema": 1, "phases": {"certs/ca": {"result": "ok", "started": "x"}}}',
    ),
    _state(
        "a duration of the wrong type",
        b'{"schema": 1, "phases": {"certs/ca":'
        b' {"result": "done", "started": "x", "duration": "1s"}}}',
    ),
    _state("another schema", b'{"schema": 2, "phases": {}}'),
    _state("100,000 levels of nesting", b"[" * 100_000 + b"]" * 100_000),
    # the image's profile (/usr/lib/kubeinit/profile.json, read by first boot)
    _profile("garbage bytes", b"\xff\xfe\x00garbage"),
    _profile("not JSON", b"{schema: 1"),
    _profile("a JSON list", lambda d: [d]),
    _profile("another schema", _set("schema", 2)),
    _profile("a missing key", _drop("images")),
    _profile("an unknown key", _set("extra", 1)),
    _profile("a key of the wrong type", _set("staticPods", [])),
    _profile("addressFamily 5", _set("addressFamily", 5)),
    _profile("100,000 levels of nesting", b"[" * 100_000 + b"]" * 100_000),
    # images given to kubeinit-build
    _build("no such image", ["--image", "missing.qcow2", "--dry-run"], expect=2),
    _build("a directory as the image", ["--image", "root", "--dry-run"], expect=2),
    _build(
        "random bytes as the image",
        ["--image", "junk.img", "--dry-run"],
        {"junk.img": bytes(range(256)) * 64},
        expect=3,
    ),
    _build("--root that does not exist", ["--root", "missing", "--dry-run"], expect=2),
    # the join files (kubeinit join-command without --refresh reads them)
    _join("before first boot wrote them", {}),
    _join("before first boot wrote them, --control-plane", {}, "--control-plane"),
    _join("join.json of garbage bytes", {JOIN_INFO: b"\xff\xfe\x00garbage"}),
    _join("join.json a JSON list", {JOIN_INFO: "[]"}),
    _join(
        "join.json with a tokenExpires that is not a time",
        {JOIN_INFO: json.dumps({"token": TOKEN, "tokenExpires": "next tuesday"})},
    ),
    _join("join.json without the join-command file", {JOIN_INFO: "{}"}),
    # argv
    _argv("no command", "kubeinit", []),
    _argv("unknown command", "kubeinit", ["frobnicate"]),
    _argv("unknown option", "kubeinit", ["init", "--frobnicate"]),
    _argv("a certificate key as an argument", "kubeinit", ["init", "--certificate-key", CERT_KEY]),
    _argv("a token as an argument", "kubeinit", ["init", "--token", TOKEN]),
    _argv("unknown phase", "kubeinit", ["init", "phase", "frobnicate"]),
    _argv(
        "unknown phase to skip",
        "kubeinit",
        ["init", "--root", "root", "--skip-phases", "frobnicate"],
    ),
    _argv(
        "'all' with named checks", "kubeinit", [*init_argv("--ignore-preflight-errors", "all,Swap")]
    ),
    _argv("bad --advertise-address", "kubeinit", [*init_argv("--advertise-address", "not-an-ip")]),
    Case(
        "argv",
        "--kernel-cmdline of binary junk",
        "kubeinit",
        tuple(init_argv("--kernel-cmdline", "junk")),
        {"junk": b"\xac\xff\x00"},
    ),
    Case(
        "argv",
        "--kernel-cmdline a directory",
        "kubeinit",
        tuple(init_argv("--kernel-cmdline", "root")),
    ),
    Case(
        "argv",
        "--root a regular file",
        "kubeinit",
        ("init", "--root", "junk", "--dry-run", "--skip-phases", _phase_names()),
        {"junk": "x"},
    ),
    _argv("no --image or --root", "kubeinit-build", []),
    _argv("both --image and --root", "kubeinit-build", ["--image", "a", "--root", "b"]),
    _argv("--output with --root", "kubeinit-build", ["--root", "root", "--output", "x"]),
    _argv(
        "bad --kubernetes-version",
        "kubeinit-build",
        ["--root", "root", "--dry-run", "--kubernetes-version", "latest"],
    ),
)


def run_case(case: Case, workdir: Path) -> Outcome:
    (workdir / "root").mkdir(exist_ok=True)
    for rel, data in case.files.items():
        p = workdir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
    if case.setup is not None:
        case.setup(workdir)
    o = run_cli(case.prog, case.argv, workdir)
    clean = o.stderr.replace(str(workdir.resolve()) + "/", "").replace(str(workdir) + "/", "")
    return Outcome(o.code, o.stdout, clean)


def error_lines(o: Outcome) -> list[str]:
    """The error line and its hint (progress lines such as kubeinit-build's step framing are
    left out)."""
    lines = o.stderr.splitlines()
    for i, line in enumerate(lines):
        if ERROR_LINE.match(line):
            return lines[i : i + 2]
    return lines[-2:]


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def nonroot_status() -> Outcome:
    """`kubeinit status` as user nobody on a root whose state directory is root-only, in a real
    process (in-process runs cannot drop privileges)."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        state = Path(d) / "root/var/lib/kubeinit"
        state.mkdir(parents=True)
        (state / "state.json").write_text('{"schema": 1, "phases": {}}')
        state.chmod(0o700)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
        p = subprocess.run(
            [*NOBODY, sys.executable, "-m", "firstboot", "status", "--root", "root"],
            cwd=d,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        return Outcome(p.returncode, p.stdout, p.stderr.replace(d + "/", ""))


def render_doc(results: Sequence[tuple[Case, Outcome]], nonroot: Outcome) -> str:
    from kubeinit.config import MAX_CONFIG_BYTES, MAX_YAML_DEPTH
    from kubeinit.redact import redact_keys

    out = [
        "# Bad input: what each gets",
        "",
        "<!-- Generated by `.venv/bin/python -m tests.badinput` from the table in"
        " tests/badinput.py, by running every case; tests/test_error_contract.py fails when"
        " this file differs from what the commands print. Do not edit by hand. -->",
        "",
        "Every bad input gets one error line and one `hint:` line on stderr, and a fixed exit code:"
        " 2 for usage or invalid input, 3 for a state file, profile or image that cannot be read"
        " (1 is only for a phase that failed). No traceback without `--debug`, and with `--debug`"
        " the traceback is masked like every other line: bootstrap token secrets and certificate"
        " keys never appear (`kubeinit.redact`; a token shows as `abcdef.<redacted>`). Nothing is"
        " written before the configuration is read and checked.",
        "",
        f"Limits: a configuration file is at most {MAX_CONFIG_BYTES // 1024} KiB and"
        f" {MAX_YAML_DEPTH} levels deep; YAML anchors may be defined but aliases (`*name`,"
        " including `<<: *name` merges) are refused, so no document can expand. state.json is at"
        " most 16 MiB.",
        "",
        "The configuration cases run `kubeinit init --config cfg.yaml --root root --dry-run"
        " --skip-phases <all>` (kubeinit-build reads configurations through the same"
        " `kubeinit.config.read_config_text` and `load_yaml_documents`); the state cases run"
        " `kubeinit status --root root`; the profile cases `kubeinit init --root root` with"
        " `root/usr/lib/kubeinit/profile.json` as described.",
        "",
    ]
    group_titles = {
        "config": "Configurations",
        "state": "State journal (`/var/lib/kubeinit/state.json`)",
        "profile": "Image profile (`/usr/lib/kubeinit/profile.json`)",
        "image": "Images (`kubeinit-build --image`)",
        "join": "Join files (`/etc/kubeinit/join.json`, read by `kubeinit join-command`)",
        "argv": "Command lines",
    }
    for group, title in group_titles.items():
        out += [
            f"## {title}",
            "",
            "| input | command | exit | error and hint |",
            "|---|---|---|---|",
        ]
        for case, o in results:
            if case.group != group:
                continue
            cmd = (
                case.prog
                if group in ("config", "state", "profile")
                else " ".join([case.prog, *case.argv])
            )
            cmd = redact_keys(cmd).replace(_phase_names(), "<all>")  # no seeded secret here
            if len(cmd) > 110:
                cmd = cmd[:107] + "..."
            text = "<br>".join(_cell(line) for line in error_lines(o))
            out.append(f"| {_cell(case.name)} | `{_cell(cmd)}` | {o.code} | {text} |")
        if group == "state":
            text = "<br>".join(_cell(line) for line in error_lines(nonroot))
            out.append(
                f"| readable by root only, run as `nobody` | `kubeinit status` | {nonroot.code}"
                f" | {text} |"
            )
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= 400 else text[:397] + "..."


def generate() -> str:
    results = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as d:
            results.append((case, run_case(case, Path(d))))
    from tests.field_audit import render_audit

    return render_doc(results, nonroot_status()) + "\n" + render_audit()


def main() -> int:
    text = generate()
    if "--check" in sys.argv:
        if DOC.read_text() != text:
            print(f"{DOC} differs from what the commands print: run python -m tests.badinput")
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
