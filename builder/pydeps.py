"""kubeinit's Python dependencies for the target's Python and architecture, self-contained.

The image needs only its own python3 (>= 3.11) and python3-systemd: everything else kubeinit
imports is installed with `pip install --target` from wheels made for the target (`--platform
manylinux_<glibc>_<arch> --python-version X.Y --only-binary=:all:`), never for the build host.
Wheels are downloaded once into `<cache>/wheels/` and the installed tree is kept in
`<cache>/pysite/<key>/`, keyed by everything that decides its content, so a repeated build is
offline and takes no pip time. The tree is byte-compiled with the target's Python version when
the build host has it (`checked-hash` .pyc files carry no timestamps: deterministic), else
first boot compiles on import.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from kubeinit.errors import InvalidInput, KubeinitError
from kubeinit.fs import write_file
from kubeinit.run import run

# From the image's own python3-systemd (it links the image's libsystemd), never from PyPI.
FROM_THE_IMAGE = frozenset({"systemd-python"})
NODE_SITE = "/usr/lib/kubeinit/python"
# Never imported on a node, removed from the installed tree: the kubernetes client's asyncio
# flavour (68 MiB of the 126 MiB package) and aiohttp with its own dependencies, which nothing
# else requires. kubeinit uses only kubernetes.client's synchronous REST layer
# (firstboot/apiclient.py). tests/builder/test_pydeps.py imports kubeinit's API client from the
# pruned tree to prove nothing needed went.
PRUNE = (
    "kubernetes/aio",
    "aiohttp",
    "aiohttp_retry",
    "aiohappyeyeballs",
    "aiosignal",
    "frozenlist",
    "multidict",
    "yarl",
    "propcache",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def requirements() -> list[str]:
    """kubeinit's own runtime requirements (no extras), minus what the image provides."""
    try:
        reqs = importlib.metadata.requires("kubeinit") or []
    except importlib.metadata.PackageNotFoundError:
        raise InvalidInput(
            "the kubeinit package is not installed in this Python",
            hint="pip install -e <kubeinit checkout>",
        ) from None
    out = []
    for r in reqs:
        if "extra ==" in r:
            continue
        m = _NAME.match(r)
        if m and m.group(0).lower() not in FROM_THE_IMAGE:
            out.append(r.split(";")[0].strip())
    return sorted(out)


def platform_tags(arch: str, glibc: tuple[int, int]) -> list[str]:
    """Every manylinux tag a glibc of this version runs, newest first (PEP 600). pip does not
    expand `--platform manylinux_2_36_x86_64` to older tags by itself."""
    tags = [f"manylinux_{glibc[0]}_{minor}_{arch}" for minor in range(glibc[1], 16, -1)]
    legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
    tags += [f"{name}_{arch}" for name, v in legacy.items() if glibc >= v]
    return tags


def site_packages(
    *, arch: str, python: tuple[int, int], glibc: tuple[int, int], cache_dir: Path, notes: list[str]
) -> Path:
    """A directory with kubeinit's dependencies installed for the target (cached)."""
    reqs = requirements()
    pyver = f"{python[0]}.{python[1]}"
    platforms = platform_tags(arch, glibc)
    platform = platforms[0]
    compiler = shutil.which(f"python{pyver}")
    key = hashlib.sha256(
        "\n".join([*reqs, pyver, platform, str(bool(compiler)), NODE_SITE, *PRUNE]).encode()
    ).hexdigest()[:16]
    site = cache_dir / "pysite" / key
    if (site / ".complete").is_file():
        if not compiler:
            notes.append(f"no python{pyver} on the build host: .pyc files are made at first boot")
        return site
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    target_opts = [
        "--only-binary=:all:",
        *(a for p in platforms for a in ("--platform", p)),
        "--python-version",
        pyver,
        "--implementation",
        "cp",
    ]
    # pip's own settings (index, certificates, proxies) pass through; nothing else does.
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("PIP_") or k.lower() in ("http_proxy", "https_proxy", "no_proxy")
    }
    env.update({"PIP_CACHE_DIR": str(cache_dir / "pip"), "HOME": str(cache_dir)})
    site.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=site.parent))
    try:
        install = [
            *pip,
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--target",
            str(tmp),
            "--no-compile",
            "--no-warn-script-location",
            *target_opts,
            *reqs,
        ]
        if run(install, check=False, env=env, timeout=900).returncode != 0:
            # Not all wheels are cached yet: fetch them (the only step that needs a network).
            res = run(
                [*pip, "download", "--dest", str(wheels), *target_opts, *reqs],
                check=False,
                env=env,
                timeout=900,
            )
            if res.returncode != 0:
                last = (res.stderr.strip().splitlines() or ["pip download failed"])[-1]
                raise InvalidInput(
                    f"cannot get kubeinit's Python dependencies for Python"
                    f" {pyver} on {platform}: {last}",
                    hint="check the network (only the first build of a"
                    " platform downloads wheels) or the image's Python",
                )
            shutil.rmtree(tmp)
            tmp.mkdir()
            run(install, env=env, timeout=900)
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts with host shebangs
        for rel in PRUNE:
            shutil.rmtree(tmp / rel, ignore_errors=True)
        if compiler:
            compile_tree(tmp, compiler, NODE_SITE)
        else:
            notes.append(f"no python{pyver} on the build host: .pyc files are made at first boot")
        write_file(tmp / ".complete", "\n".join(reqs) + "\n", 0o644)
        shutil.rmtree(site, ignore_errors=True)
        tmp.rename(site)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return site


def compile_tree(tree: Path, compiler: str, node_path: str) -> None:
    """Byte-compile `tree` as if it lived at `node_path`, reproducibly."""
    try:
        run(
            [
                compiler,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "checked-hash",
                "-s",
                str(tree),
                "-p",
                node_path,
                str(tree),
            ],
            env={"PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "1700000000"},
            timeout=900,
        )
    except KubeinitError as e:
        raise InvalidInput(
            f"byte-compiling kubeinit's Python files failed: {e}",
            hint="run with --debug; a dependency may not support this Python",
        ) from None
