"""Phase selection from the tree (firstboot/selection.py), from a table; and the tree's
top-level order against kubeadm's own `AppendPhase` calls in cmd/kubeadm/app/cmd/init.go."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firstboot.cli import _phase_target
from firstboot.phases import PHASES
from firstboot.selection import find, known_paths, leaves, select
from kubeinit.errors import ExitCode, InvalidInput

KUBEADM_CMD = Path("/root/go/pkg/mod/k8s.io/kubernetes@v1.37.2/cmd/kubeadm/app/cmd")
LEAVES = [p for p, _ in leaves(PHASES)]
CERTS = [p for p in LEAVES if p.startswith("certs/")]


def _kubeadm_init_phase_names() -> list[str]:
    """Top-level phase names, in the order init.go appends them, resolved through each
    NewXPhase constructor's `Name:` in phases/init/*.go."""
    init_go = (KUBEADM_CMD / "init.go").read_text()
    constructors = re.findall(r"initRunner\.AppendPhase\(phases\.(New\w+Phase)\(\)\)", init_go)
    assert len(constructors) > 10, "init.go changed shape"
    names = {}
    for go in (KUBEADM_CMD / "phases/init").glob("*.go"):
        text = go.read_text()
        for m in re.finditer(r"func (New\w+Phase)\(\) workflow\.Phase \{", text):
            name = re.search(r'Name:\s*"([^"]+)"', text[m.end() :])
            assert name, m.group(1)
            names[m.group(1)] = name.group(1)
    return [names[c] for c in constructors]


def test_top_level_order_is_kubeadms_append_phase_order() -> None:
    assert [p.name for p in PHASES] == _kubeadm_init_phase_names()


@pytest.mark.parametrize(
    ("only", "skip", "expected"),
    [
        (None, [], LEAVES),
        (None, ["certs"], [p for p in LEAVES if p not in CERTS]),
        (None, ["certs/all"], [p for p in LEAVES if p not in CERTS]),
        (None, ["certs/ca"], [p for p in LEAVES if p != "certs/ca"]),
        (None, ["certs", "certs/ca"], [p for p in LEAVES if p not in CERTS]),
        (
            None,
            ["preflight", "etcd"],
            [p for p in LEAVES if p != "preflight" and not p.startswith("etcd/")],
        ),
        ("certs/ca", [], ["certs/ca"]),
        ("certs", [], CERTS),
        ("certs/all", [], CERTS),
        ("certs/", [], CERTS),
        ("/certs/ca/", [], ["certs/ca"]),
        (" preflight ", [], ["preflight"]),
        ("certs", ["certs/ca"], [p for p in CERTS if p != "certs/ca"]),
        ("certs/ca", ["certs"], []),
        ("etcd", [], ["etcd/local"]),
    ],
    ids=[
        "everything",
        "skip-parent-skips-children",
        "skip-parent-all",
        "skip-one-child",
        "skip-parent-and-child",
        "skip-two",
        "only-child",
        "only-parent",
        "only-parent-all",
        "trailing-slash",
        "surrounding-slashes",
        "surrounding-spaces",
        "parent-minus-child",
        "child-of-skipped-parent",
        "parent-of-one",
    ],
)
def test_select(only: str | None, skip: list[str], expected: list[str]) -> None:
    assert select(PHASES, only=only, skip=skip) == expected


@pytest.mark.parametrize(
    ("only", "skip"),
    [
        (None, ["cert"]),
        (None, ["certs/root-ca"]),
        ("certificates", []),
        ("certs/ca/x", []),
        (None, ["preflight", "nope"]),
        ("all", []),
    ],
    ids=["typo", "unknown-child", "unknown-only", "too-deep", "one-bad-among-good", "bare-all"],
)
def test_unknown_names_are_invalid_input(only: str | None, skip: list[str]) -> None:
    with pytest.raises(InvalidInput) as e:
        select(PHASES, only=only, skip=skip)
    assert e.value.exit_code == ExitCode.INVALID_INPUT
    assert "unknown phase" in e.value.message
    assert "preflight" in e.value.hint  # lists the known phases


@pytest.mark.parametrize(
    ("words", "target", "expected"),
    [
        ([], None, LEAVES),
        (["phase", "certs", "all"], "certs/all", CERTS),
        (["phase", "certs", "ca"], "certs/ca", ["certs/ca"]),
        (["phase", "certs"], "certs", CERTS),
        (["phase", "kubelet-start"], "kubelet-start", ["kubelet-start"]),
    ],
    ids=["no-phase", "certs-all", "certs-ca", "certs", "leaf"],
)
def test_init_phase_words(words: list[str], target: str | None, expected: list[str]) -> None:
    assert _phase_target(words) == target
    assert select(PHASES, only=target) == expected


@pytest.mark.parametrize(
    "words",
    [["certs"], ["phase"], ["phase", "certs", "ca", "x"]],
    ids=["no-phase-keyword", "nothing-after-phase", "three-words"],
)
def test_bad_phase_words(words: list[str]) -> None:
    with pytest.raises(InvalidInput):
        _phase_target(words)


def test_every_path_is_findable_and_parents_come_first() -> None:
    paths = known_paths(PHASES)
    assert len(paths) == len(set(paths))
    for p in paths:
        assert find(PHASES, p).name == p.rsplit("/", 1)[-1]
        if "/" in p:
            assert paths.index(p.rsplit("/", 1)[0]) < paths.index(p)
    with pytest.raises(KeyError):
        find(PHASES, "nope")
