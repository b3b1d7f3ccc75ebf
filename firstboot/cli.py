"""`kubeinit`: the node-side command. Its phase list, `--skip-phases` and `init phase` all come
from the tree in `firstboot.phases` (house style §2).

Exit codes: 0 ok, 1 a phase failed, 2 usage or invalid input, 3 state or image unreadable.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firstboot.phase import Phase
from firstboot.phases import PHASES
from firstboot.selection import known_paths, select, walk
from kubeinit.errors import ExitCode, InvalidInput, KubeinitError
from kubeinit.redact import redact, redact_keys


def _phase_help(tree: Sequence[Phase]) -> str:
    lines = ["phases (kubeadm's order; use with `init phase` and --skip-phases):"]
    for path, p in walk(tree):
        depth = path.count("/")
        suffix = "  [needs API server]" if p.needs_api and depth == 0 else ""
        lines.append(f"  {'  ' * depth}{path:<{34 - 2 * depth}} {p.summary}{suffix}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line and a hint, like every other error (no usage block); argv may hold a token
        # or a certificate key given in the wrong place.
        message = _printable(redact_keys(message))
        print(f"kubeinit: error: {message}\nhint: {self.prog} --help", file=sys.stderr)
        raise SystemExit(ExitCode.INVALID_INPUT)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="write every file relative to this directory (default: /)",
    )
    p.add_argument(
        "--config",
        type=Path,
        help="kubeadm v1beta4 config file (default: <root>/etc/kubeinit/config.yaml"
        " if present, else the image profile's configuration, else kubeadm's defaults)",
    )
    p.add_argument("--debug", action="store_true", help="tracebacks and debug output")
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another kubeinit on this root (its init lock) before"
        " exiting 3; 0 = do not wait (default: 60)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kubeinit",
        description="kubeadm init, finished on first boot of an immutable image.",
        epilog=_phase_help(PHASES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    init = sub.add_parser(
        "init",
        help="run the init phases",
        epilog=_phase_help(PHASES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(init)
    init.add_argument(
        "--skip-phases",
        default="",
        help="comma-separated phases to skip; a parent skips its children",
    )
    init.add_argument(
        "--local-only",
        action="store_true",
        help="only the node-local phases (no API server needed); no completion stamp is written",
    )
    init.add_argument(
        "--dry-run",
        action="store_true",
        help="write into a temporary directory, list what would be written, change nothing",
    )
    init.add_argument("--node-name", help="override nodeRegistration.name")
    init.add_argument("--advertise-address", help="override localAPIEndpoint.advertiseAddress")
    init.add_argument(
        "--preflight-target",
        choices=("node", "image"),
        help="node: every check, on this machine; image: only the checks that"
        " make sense for a tree being rendered (default: node when --root is /,"
        " else image)",
    )
    init.add_argument(
        "--ignore-preflight-errors",
        default="",
        help="comma-separated preflight check names to turn into warnings, or 'all'",
    )
    init.add_argument(
        "--kernel-cmdline",
        type=Path,
        metavar="FILE",
        help="read kubeinit.node-name= and kubeinit.advertise-address= from"
        " this file (default: <root>/proc/cmdline)",
    )
    init.add_argument(
        "phase_words",
        nargs="*",
        metavar="phase PHASE [SUB|all]",
        help="run one phase (kubeinit init phase certs apiserver)",
    )

    status = sub.add_parser("status", help="show the state of each phase")
    status.add_argument("--root", type=Path, default=Path("/"))
    status.add_argument("--json", action="store_true", help="machine-readable output")

    join = sub.add_parser(
        "join-command",
        help="print the command that joins a node (needs the API server with --refresh)",
    )
    _common(join)
    join.add_argument(
        "--control-plane", action="store_true", help="the command for another control-plane node"
    )
    join.add_argument(
        "--refresh",
        action="store_true",
        help="mint a new bootstrap token and upload the certificates again"
        " under a new certificate key, then rewrite the join files",
    )

    sub.add_parser("phases", help="list the phase tree")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        if args.command == "phases":
            print("\n".join(known_paths(PHASES)))
            return ExitCode.OK
        if args.command == "status":
            return _status(args)
        if args.command == "join-command":
            return _join_command(args, debug)
        return _init(args, debug)
    except KubeinitError as e:
        return _error(e, debug)
    except PermissionError as e:
        # e.g. `kubeinit status` as a user who may not read /var/lib/kubeinit
        where = f"{e.filename}: " if e.filename else ""
        err = KubeinitError(
            f"{where}permission denied",
            hint="kubeinit reads and writes root-owned files under the root: run it as root",
        )
        err.exit_code = ExitCode.STATE_UNREADABLE
        return _error(err, debug)
    except KeyboardInterrupt:
        print("kubeinit: interrupted", file=sys.stderr)
        return ExitCode.PHASE_FAILED
    except Exception as e:  # a bug: still one line and a hint, the traceback only with --debug
        err = KubeinitError(
            f"internal error: {type(e).__name__}: {_printable(str(e))}",
            hint="run again with --debug for a traceback and report it",
        )
        return _error(err, debug)


def _error(e: KubeinitError, debug: bool) -> int:
    """One error line, one hint line; with --debug the traceback, secrets masked."""
    # one line each, whatever the message quotes from the input
    print(f"kubeinit: error: {_printable(redact(e.message))}", file=sys.stderr)
    if e.hint:
        print(f"hint: {_printable(redact(e.hint))}", file=sys.stderr)
    if debug:
        import traceback

        print(redact(traceback.format_exc()), file=sys.stderr, end="")
    return int(e.exit_code)


def _phase_target(words: Sequence[str]) -> str | None:
    if not words:
        return None
    if words[0] != "phase":
        raise InvalidInput(
            f"unexpected argument {words[0]!r}",
            hint="use `kubeinit init` or `kubeinit init phase NAME [SUB|all]`",
        )
    rest = list(words[1:])
    if not rest or len(rest) > 2:
        raise InvalidInput(
            "`init phase` takes a phase and optionally a sub-phase",
            hint="known phases: " + ", ".join(known_paths(PHASES)),
        )
    return "/".join(rest)


def _init(args: argparse.Namespace, debug: bool) -> int:
    from firstboot.context import InitContext
    from firstboot.log import Reporter
    from firstboot.runner import run_phases
    from firstboot.templates import load_boot_config, templates_decision
    from kubeinit.identity import resolve_identity

    target = _phase_target(args.phase_words)
    skip = [s for s in args.skip_phases.split(",") if s.strip()]
    root: Path = args.root
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"--root {root}: not a directory", hint="give the node's root directory")
    boot = load_boot_config(root, args.config)
    config = boot.config
    skip += list(config.init.skip_phases)
    # InitConfiguration.dryRun is kubeadm's --dry-run in the file (kubeadm ORs the two).
    dry_run = bool(args.dry_run or config.init.dry_run)
    # A dry run writes into a temporary root and must not touch a live API server.
    local_only = args.local_only or dry_run
    if local_only:
        skip += [path for path, p in walk(PHASES) if p.needs_api and "/" not in path]
    selected = select(PHASES, only=target, skip=skip)
    identity = resolve_identity(
        config,
        node_name=args.node_name,
        advertise_address=args.advertise_address,
        baked=boot.baked,
        **_boot_identity_sources(args.kernel_cmdline, root),
    )
    use_templates, profile_line = templates_decision(boot, identity, os.environ)
    ignore = {s.strip().lower() for s in args.ignore_preflight_errors.split(",") if s.strip()}
    ignore |= {s.lower() for s in config.init.node_registration.ignore_preflight_errors}
    if "all" in ignore and len(ignore) > 1:
        raise InvalidInput(
            "--ignore-preflight-errors: don't name individual checks with 'all'",
            hint="give either all or a comma-separated list of check names",
        )
    dry_root = Path(tempfile.mkdtemp(prefix="kubeinit-dry-run.")) if dry_run else None
    run_root = dry_root or root
    ctx = InitContext(
        config=config,
        root=run_root,
        identity=identity,
        start_time=datetime.datetime.now(datetime.UTC).replace(microsecond=0),
        ignore_preflight_errors=frozenset(ignore),
        manage_services=(root == Path("/") and _systemd_is_pid1() and not dry_run),
        preflight_target=args.preflight_target or "",
        profile=boot.profile,
        use_templates=use_templates,
    )
    reporter = Reporter(debug=debug)
    for w in config.warnings:
        reporter.warn(w)
    if config.init.dry_run and not args.dry_run:
        reporter.info(f"{config.source}: dryRun: true: a dry run, as with --dry-run")
    if profile_line:
        reporter.info(profile_line)
    # Skipped phases (--skip-phases, skipPhases) still make a complete init, as in kubeadm:
    # the stamp must be written or kubeinit.service would run again on every boot.
    full = target is None and not local_only
    try:
        run_phases(
            ctx,
            PHASES,
            selected,
            reporter,
            complete_init=full and not dry_run,
            resume=target is None,
            lock_timeout=args.lock_timeout,
        )
    finally:
        if dry_root is not None:
            _print_dry_run(dry_root)
            shutil.rmtree(dry_root, ignore_errors=True)
    return ExitCode.OK


def _systemd_is_pid1() -> bool:
    """sd_booted(3): systemd is the init system iff /run/systemd/system/ exists. (/proc/1/exe
    is not readable in every sandbox, even as root.)"""
    return Path("/run/systemd/system").is_dir()


def _print_dry_run(root: Path) -> None:
    print("dry run: would write", file=sys.stderr)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            mode = p.stat().st_mode & 0o777
            print(f"  {oct(mode)[2:]:>4} /{p.relative_to(root)}", file=sys.stderr)


def _status(args: argparse.Namespace) -> int:
    from firstboot.status import show

    complete = show(args.root, PHASES, as_json=args.json)
    return ExitCode.OK if complete else ExitCode.PHASE_FAILED


def _boot_identity_sources(cmdline: Path | None, root: Path) -> dict[str, Any]:
    """Where the boot environment may dictate the node identity (kubeinit.identity): the
    kernel command line and systemd credentials (kubeinit.service: ImportCredential=)."""
    from kubeinit import paths

    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    return {
        "cmdline": cmdline or paths.under(root, paths.KERNEL_CMDLINE),
        "credentials_dir": Path(creds) if creds else None,
    }


def _join_command(args: argparse.Namespace, debug: bool) -> int:
    from firstboot import joincmd
    from firstboot.context import InitContext
    from firstboot.log import Reporter
    from firstboot.templates import load_boot_config
    from kubeinit.identity import resolve_identity

    root: Path = args.root
    boot = load_boot_config(root, args.config)
    config = boot.config
    identity = resolve_identity(config, baked=boot.baked, **_boot_identity_sources(None, root))
    ctx = InitContext(
        config=config,
        root=root,
        identity=identity,
        start_time=datetime.datetime.now(datetime.UTC).replace(microsecond=0),
    )
    try:
        if args.refresh:
            from firstboot.lock import init_lock

            with init_lock(root, args.lock_timeout):
                joincmd.refresh(ctx, Reporter(debug=debug))
        sys.stdout.write(joincmd.show(ctx, control_plane=args.control_plane))
    finally:
        ctx.close_clients()
    return ExitCode.OK
