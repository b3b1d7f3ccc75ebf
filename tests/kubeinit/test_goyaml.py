"""kubeinit/goyaml.py against the Go code kubeadm serialises with: sigs.k8s.io/yaml v1.6.0
`JSONToYAML` over go.yaml.in/yaml/v2 v2.4.4 (the versions in k8s.io/kubernetes v1.37.2's go.mod),
compiled from the Go module cache and run on the same documents. Plus a few facts of that
emitter written out by hand, and Go's strconv.Quote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubeinit import goyaml

GO_MAIN = """\
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// One JSON-encoded JSON document per line in; its YAML and a NUL line out.
func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var s string
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			panic(err)
		}
		y, err := yaml.JSONToYAML([]byte(s))
		if err != nil {
			fmt.Print("ERROR: " + err.Error() + "\\n")
		} else {
			os.Stdout.Write(y)
		}
		fmt.Print("\\x00\\n")
	}
}
"""
GO_MOD = """\
module goyamloracle

go 1.24

require (
	go.yaml.in/yaml/v2 v2.4.4
	sigs.k8s.io/yaml v1.6.0
)
"""

# Strings chosen for the emitter's decisions: types a plain scalar would read back as, YAML
# indicators, quoting, escapes, line folding past column 80, multi-line literal blocks. Not
# here: DEL and NEL, which Go's JSON encoder leaves raw and yaml.v2's reader then rejects (DEL:
# kubeadm fails) or folds into a space (NEL); kubeinit does not reproduce that.
TRICKY = [
    "",
    " ",
    "a",
    "yes",
    "y",
    "n",
    "No",
    "on",
    "OFF",
    "null",
    "~",
    "true",
    "1",
    "01",
    "08",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1.5",
    ".5",
    ".5 ",
    "1e3",
    "1e",
    "+1",
    "-1",
    ".inf",
    ".nan",
    "2001-12-14",
    "2001-12-14T21:59:43Z",
    "2001-02-30",
    "12:30",
    "1:20:30.5",
    "-",
    "--",
    "---",
    "...",
    "-a",
    "- a",
    ":",
    "a:",
    "a: b",
    "a:b",
    "#",
    "a #b",
    "a#b",
    "*x",
    "&x",
    "!t",
    "|",
    ">",
    "'",
    '"',
    "%",
    "@",
    "`",
    "?",
    "? a",
    "[",
    "]",
    "{",
    "}",
    ",",
    "a,b",
    "\t",
    "a\tb",
    "\n",
    "\r",
    "a\nb",
    "a\n",
    "a\n\n",
    " a\nb",
    "a \nb",
    "é",
    "日本",
    "\u2028",
    "\x01",
    "\U0001f600",
    "\ufeff",
    "\xa0",
    "=",
    "--flag=value",
    "http://x:1/",
    "\\",
    "<<",
    "0.",
    "9223372036854775808",
    "18446744073709551616",
    "-0b11",
    "Infinity",
    "[fd00::10]:6443",
    "--audit-policy-file=a very long value with spaces that will certainly need to be folded",
    "x" * 120,
    "word " * 30,
    "a  " * 40,
    '"quoted" ' * 15,
    "tab\tand long " * 10,
]
KEYS = [
    "apiVersion",
    "kind",
    "a1",
    "a10",
    "a2",
    "A",
    "b",
    "b0",
    "b00",
    "x.y",
    "x-y",
    "x_y",
    "",
    "1",
]


def _documents() -> list[Any]:
    docs: list[Any] = [{"k": s} for s in TRICKY]
    docs.append({"list": TRICKY})
    docs.append({k: i for i, k in enumerate(KEYS)})
    docs.append({"nested": {"m": {}, "l": [], "ll": [[1, [2]], {"a": [{"b": "c"}]}], "n": None}})
    docs.append({"numbers": [0, -5, 12345678901234, 0.5, 1e6, 1.25e-7, 100.0, True, False]})
    docs.append({"deep": {"x" * 60: {"y" * 40: "z " * 50}}})
    docs.append({"key with: colon": 1, "key #hash": 2, "-": 3, "yes": 4, "1e3": 5})
    return docs


@pytest.fixture(scope="module")
def go_json_to_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go", path=os.environ.get("PATH", "") + ":/usr/local/go/bin")
    assert go, "go is not installed: hack/install-deps installs it (hack/k8s-binaries needs it)"
    src = tmp_path_factory.mktemp("goyaml-oracle")
    (src / "main.go").write_text(GO_MAIN)
    (src / "go.mod").write_text(GO_MOD)
    env = {
        **os.environ,
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    result = subprocess.run(
        [go, "build", "-o", "j2y", "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (
        "building the yaml.v2 oracle needs sigs.k8s.io/yaml@v1.6.0 and go.yaml.in/yaml/v2@v2.4.4"
        f" in the Go module cache (hack/k8s-binaries fetches them):\n{result.stderr}"
    )
    return src / "j2y"


@pytest.mark.real
def test_same_text_as_sigs_k8s_io_yaml(go_json_to_yaml: Path) -> None:
    docs = _documents()
    # The inner JSON as Go's encoder writes it: UTF-8, not \u escapes (yaml.v2 cannot read
    # surrogate-pair escapes).
    stdin = "".join(json.dumps(json.dumps(d, ensure_ascii=False)) + "\n" for d in docs)
    out = subprocess.run(
        [str(go_json_to_yaml)],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    expected = out.split("\x00\n")[:-1]
    assert len(expected) == len(docs)
    mismatches = [
        (json.dumps(d), want, goyaml.dumps(d))
        for d, want in zip(docs, expected, strict=True)
        if goyaml.dumps(d) != want
    ]
    assert not mismatches, "\n".join(f"{d}\n go: {w!r}\n py: {g!r}" for d, w, g in mismatches[:5])


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("plain", "k: plain\n"),
        ("yes", 'k: "yes"\n'),  # would read back as a bool
        ("1.5", 'k: "1.5"\n'),
        ("", 'k: ""\n'),
        ("a: b", "k: 'a: b'\n"),  # plain not allowed: single quotes
        ("[fd00::10]:6443", "k: '[fd00::10]:6443'\n"),
        ("it's: x", "k: 'it''s: x'\n"),
        ("tab\there", 'k: "tab\\there"\n'),  # not printable: double quotes, escaped
        ("line1\nline2", "k: |-\n  line1\n  line2\n"),
    ],
)
def test_scalar_styles(value: str, line: str) -> None:
    assert goyaml.dumps({"k": value}) == line


def test_structure() -> None:
    text = goyaml.dumps({"b": [{"y": 1, "x": True}], "a": {}, "c": [], "d": None})
    assert text == 'a: {}\nb:\n- x: true\n  "y": 1\nc: []\nd: null\n'


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", '""'),
        ("a b", '"a b"'),
        ('--l=a="q"', '"--l=a=\\"q\\""'),
        ("b\\x", '"b\\\\x"'),
        ("é\n\x01", '"é\\n\\x01"'),
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    """strconv.Quote (fmt %q), which kubeadm uses for kubeadm-flags.env and
    instance-config.yaml."""
    assert goyaml.go_quote(value) == quoted
