"""`kubeinit`: the node-side command. Its phase list, `--skip-phases` and `init phase` all come
from the tree in `firstboot.phases` (house style §2).

Exit codes: 0 ok, 1 a phase failed, 2 usage or invalid input, 3 state or image unreadable.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from firstboot.phase import Phase
from firstboot.phases import PHASES
from firstboot.selection import known_paths, select, walk
from kubeinit.errors import ExitCode, InvalidInput, KubeinitError


def _phase_help(tree: Sequence[Phase]) -> str:
    lines = ["phases (kubeadm's order; use with `init phase` and --skip-phases):"]
    for path, p in walk(tree):
        depth = path.count("/")
        suffix = "  [needs API server]" if p.needs_api and depth == 0 else ""
        lines.append(f"  {'  ' * depth}{path:<{34 - 2 * depth}} {p.summary}{suffix}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"kubeinit: error: {message}\nhint: kubeinit --help", file=sys.stderr)
        raise SystemExit(ExitCode.INVALID_INPUT)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, default=Path("/"),
                   help="write every file relative to this directory (default: /)")
    p.add_argument("--config", type=Path,
                   help="kubeadm v1beta4 config file (default: <root>/etc/kubeinit/config.yaml"
                   " if present, else kubeadm's defaults)")
    p.add_argument("--debug", action="store_true", help="tracebacks and debug output")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kubeinit",
        description="kubeadm init, finished on first boot of an immutable image.",
        epilog=_phase_help(PHASES), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    init = sub.add_parser("init", help="run the init phases",
                          epilog=_phase_help(PHASES),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(init)
    init.add_argument("--skip-phases", default="",
                      help="comma-separated phases to skip; a parent skips its children")
    init.add_argument("--local-only", action="store_true",
                      help="only the node-local phases (no API server needed);"
                      " no completion stamp is written")
    init.add_argument("--dry-run", action="store_true",
                      help="write into a temporary directory, list what would be written,"
                      " change nothing")
    init.add_argument("--node-name", help="override nodeRegistration.name")
    init.add_argument("--advertise-address",
                      help="override localAPIEndpoint.advertiseAddress")
    init.add_argument("--ignore-preflight-errors", default="",
                      help="comma-separated preflight check names to turn into warnings,"
                      " or 'all'")
    init.add_argument("phase_words", nargs="*", metavar="phase PHASE [SUB|all]",
                      help="run one phase (kubeinit init phase certs apiserver)")

    status = sub.add_parser("status", help="show the state of each phase")
    status.add_argument("--root", type=Path, default=Path("/"))
    status.add_argument("--json", action="store_true", help="machine-readable output")

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
        return _init(args, debug)
    except KubeinitError as e:
        print(f"kubeinit: error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        if debug:
            import traceback

            traceback.print_exc()
        return int(e.exit_code)
    except KeyboardInterrupt:
        print("kubeinit: interrupted", file=sys.stderr)
        return ExitCode.PHASE_FAILED


def _phase_target(words: Sequence[str]) -> str | None:
    if not words:
        return None
    if words[0] != "phase":
        raise InvalidInput(f"unexpected argument {words[0]!r}",
                           hint="use `kubeinit init` or `kubeinit init phase NAME [SUB|all]`")
    rest = list(words[1:])
    if not rest or len(rest) > 2:
        raise InvalidInput("`init phase` takes a phase and optionally a sub-phase",
                           hint="known phases: " + ", ".join(known_paths(PHASES)))
    return "/".join(rest)


def _init(args: argparse.Namespace, debug: bool) -> int:
    from firstboot.context import InitContext
    from firstboot.log import Reporter
    from firstboot.runner import run_phases
    from kubeinit import paths
    from kubeinit.config import load_config
    from kubeinit.identity import resolve_identity

    target = _phase_target(args.phase_words)
    skip = [s for s in args.skip_phases.split(",") if s.strip()]
    root: Path = args.root
    config_path = args.config
    if config_path is None and paths.under(root, paths.NODE_CONFIG).exists():
        config_path = paths.under(root, paths.NODE_CONFIG)
    config = load_config(config_path)
    skip += list(config.init.skip_phases)
    if args.local_only:
        skip += [path for path, p in walk(PHASES) if p.needs_api and "/" not in path]
    selected = select(PHASES, only=target, skip=skip)
    identity = resolve_identity(config, node_name=args.node_name,
                                advertise_address=args.advertise_address)
    ignore = {s.strip().lower() for s in args.ignore_preflight_errors.split(",") if s.strip()}
    ignore |= {s.lower() for s in config.init.node_registration.ignore_preflight_errors}
    if "all" in ignore and len(ignore) > 1:
        raise InvalidInput("--ignore-preflight-errors: don't name individual checks with 'all'")
    dry_root = Path(tempfile.mkdtemp(prefix="kubeinit-dry-run.")) if args.dry_run else None
    run_root = dry_root or root
    ctx = InitContext(
        config=config, root=run_root, identity=identity,
        start_time=datetime.datetime.now(datetime.UTC).replace(microsecond=0),
        ignore_preflight_errors=frozenset(ignore),
        manage_services=(root == Path("/") and _systemd_is_pid1() and not args.dry_run),
    )
    reporter = Reporter(debug=debug)
    full = target is None and not args.local_only and not skip
    try:
        run_phases(ctx, PHASES, selected, reporter, complete_init=full and not args.dry_run,
                   resume=target is None)
    finally:
        if dry_root is not None:
            _print_dry_run(dry_root)
            shutil.rmtree(dry_root, ignore_errors=True)
    return ExitCode.OK


def _systemd_is_pid1() -> bool:
    return Path("/run/systemd/system").is_dir() and os.readlink("/proc/1/exe").endswith(
        "/systemd") if Path("/proc/1/exe").exists() else False


def _print_dry_run(root: Path) -> None:
    print("dry run: would write", file=sys.stderr)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            mode = p.stat().st_mode & 0o777
            print(f"  {oct(mode)[2:]:>4} /{p.relative_to(root)}", file=sys.stderr)


def _status(args: argparse.Namespace) -> int:
    from firstboot.selection import leaves
    from firstboot.state import State, done_stamp, failed_marker

    state = State.load(args.root)
    failure = None
    if failed_marker(args.root).exists():
        failure = json.loads(failed_marker(args.root).read_text())
    rows = []
    for path, _ in leaves(PHASES):
        rec = state.phases.get(path)
        rows.append({"phase": path, "result": rec.result if rec else "pending",
                     "duration": rec.duration if rec else None,
                     "error": rec.error if rec else "", "hint": rec.hint if rec else ""})
    complete = done_stamp(args.root).exists()
    if args.json:
        print(json.dumps({"complete": complete, "failed": failure, "phases": rows}, indent=2))
    else:
        print(f"kubeinit: {'complete' if complete else 'failed' if failure else 'not complete'}")
        for r in rows:
            dur = f"{r['duration']:.2f}s" if r["duration"] is not None else ""
            print(f"  {r['phase']:<40} {r['result']:<8} {dur}")
            if r["error"]:
                print(f"      error: {r['error']}\n      hint: {r['hint']}")
    return ExitCode.OK if complete else ExitCode.PHASE_FAILED
