"""Phase selection from the tree alone: a pure function, tested from a table (house style §2)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from firstboot.phase import Phase
from kubeinit.errors import InvalidInput


def walk(tree: Sequence[Phase], prefix: str = "") -> Iterator[tuple[str, Phase]]:
    """Every phase with its path (`certs`, `certs/ca`, ...), parents before children."""
    for p in tree:
        path = f"{prefix}{p.name}"
        yield path, p
        yield from walk(p.children, prefix=f"{path}/")


def leaves(tree: Sequence[Phase]) -> list[tuple[str, Phase]]:
    return [(path, p) for path, p in walk(tree) if p.run is not None]


def known_paths(tree: Sequence[Phase]) -> list[str]:
    return [path for path, _ in walk(tree)]


def _normalise(name: str) -> str:
    name = name.strip().strip("/")
    return name[: -len("/all")] if name.endswith("/all") else name


def check_names(tree: Sequence[Phase], names: Iterable[str], what: str) -> list[str]:
    paths = set(known_paths(tree))
    out = []
    for raw in names:
        name = _normalise(raw)
        if name not in paths:
            raise InvalidInput(
                f"{what}: unknown phase {raw!r}",
                hint="known phases: " + ", ".join(known_paths(tree)),
            )
        out.append(name)
    return out


def select(
    tree: Sequence[Phase], *, only: str | None = None, skip: Iterable[str] = ()
) -> list[str]:
    """Leaf paths to run, in tree order.

    `only` is a phase path (`certs`, `certs/ca`, `certs/all`); `skip` lists phase paths, and
    skipping a parent skips all its children. Unknown names raise InvalidInput.
    """
    skipped = check_names(tree, skip, "--skip-phases")
    chosen = check_names(tree, [only], "phase")[0] if only else None
    out = []
    for path, _ in leaves(tree):
        if chosen is not None and not (path == chosen or path.startswith(chosen + "/")):
            continue
        if any(path == s or path.startswith(s + "/") for s in skipped):
            continue
        out.append(path)
    return out


def find(tree: Sequence[Phase], path: str) -> Phase:
    for p_path, p in walk(tree):
        if p_path == path:
            return p
    raise KeyError(path)
