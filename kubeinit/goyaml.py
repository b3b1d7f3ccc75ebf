"""YAML exactly as Kubernetes' Go code writes it.

kubeadm serialises every object it writes (static Pod manifests, the kubelet's config.yaml) by
encoding it to JSON and converting that JSON to YAML with sigs.k8s.io/yaml `JSONToYAML`, which
decodes the JSON into generic Go maps and re-encodes them with go.yaml.in/yaml/v2 (apimachinery
runtime/serializer/json, sigs.k8s.io/yaml@v1.6.0 yaml.go). The consequences this module
reproduces:

- map keys are sorted with yaml.v2's "natural" key order (sorter.go `keyList.Less`);
- a string is written plain unless yaml.v2 would read the plain form back as something else
  (a bool such as `yes`/`on`/`y`, a number, null, a timestamp, a base-60 float): then it is
  double-quoted (encode.go `stringv`); strings with a newline use the literal block style;
- the emitter (a port of libyaml) falls back to single quotes when a plain scalar is not
  allowed (`: `, ` #`, leading indicators, ...), folds long plain or quoted scalars at spaces
  past column 80 (yaml.v2 keeps libyaml's default width; nothing in kubeadm calls
  `FutureLineWrap`), writes block sequences inside mappings without extra indentation, and
  writes empty mappings and sequences as `{}` and `[]`.

PyYAML's emitter is the same libyaml port, so this module feeds it nodes whose styles were
chosen by yaml.v2's rules, keeps PyYAML's own resolver out of the way and ports the writers
where the two differ (tests/kubeinit/test_goyaml.py compares with the Go code itself). Not
reproduced: DEL and NEL, which Go's JSON encoder leaves raw and yaml.v2's reader then rejects
(kubeadm fails) or folds into a space; and the order of map keys on which yaml.v2's key
comparison is not transitive (digits mixed with punctuation), which Go's map iteration makes
random anyway.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

# yaml.v2 resolve.go: the plain scalars that do not read back as strings.
_RESOLVE_MAP = frozenset(
    (
        *("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"),
        *("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"),
        *("", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF"),
        # "<<" is in resolve.go's map too, but only characters with a resolveTable hint reach
        # the map, and '<' has none: "<<" resolves as a string.
        *("+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"),
    )
)
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_BASE60_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_GO_INT = re.compile(r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
_TIMESTAMP = re.compile(
    r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?(?:Z|[-+][0-9]{2}:[0-9]{2})"
    r"| ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?)?$"
)
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _go_int(text: str) -> bool:
    """strconv.ParseInt(s, 0, 64) or ParseUint succeeds (yaml.v2 removed '_' already)."""
    if not _GO_INT.match(text):
        return False
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").lower()
    if body.startswith("0x"):
        value = int(body[2:], 16)
    elif body.startswith("0o"):
        value = int(body[2:], 8)
    elif body.startswith("0b"):
        value = int(body[2:], 2)
    elif body.startswith("0") and body != "0":
        value = int(body[1:], 8)
    else:
        value = int(body)
    value *= sign
    return _INT64_MIN <= value <= _UINT64_MAX


_HEX_FLOAT = re.compile(r"^[-+]?0[xX](_?[0-9a-fA-F])*(\.[0-9a-fA-F_]*)?[pP][-+]?[0-9_]+$")
_DEC_FLOAT = re.compile(r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")


def _go_float(text: str) -> bool:
    """strconv.ParseFloat(s, 64) accepts `text` (decimal and hex forms, inf/nan spellings)."""
    if text.lower().lstrip("+-") in ("inf", "infinity") or text.lower() == "nan":
        return True
    return bool(_DEC_FLOAT.match(text) or _HEX_FLOAT.match(text))


def _timestamp(text: str) -> bool:
    """yaml.v2 parseTimestamp: one of the layouts it tries with Go's time.Parse matches."""
    m = _TIMESTAMP.match(text)
    if not m:
        return False
    year, month, day = (int(g) for g in m.group(1, 2, 3))
    leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= month <= 12 and 1 <= day <= days[month - 1]):
        return False
    clock = [g for g in m.groups()[3:] if g is not None]
    if clock:
        hour, minute, second = (int(g) for g in clock)
        if hour > 23 or minute > 59 or second > 59:
            return False
    return True


def resolves_as_string(text: str) -> bool:
    """yaml.v2 `resolve("", s)` gives !!str and `isBase60Float(s)` is false: a plain scalar
    reads back as this very string."""
    if text in _RESOLVE_MAP:
        return False
    first = text[0]
    if first == ".":
        return not _go_float(text)
    if first in "+-0123456789":
        if _timestamp(text):
            return False
        plain = text.replace("_", "")
        if _go_int(plain):
            return False
        if _YAML_STYLE_FLOAT.match(plain) and _go_float(plain):
            return False
        if plain.startswith(("0b", "-0b")) and _go_int(plain):
            return False
        return not _BASE60_FLOAT.match(text)
    return True


def _wrap64(n: int) -> int:
    """Go int64 arithmetic wraps around."""
    return (n + 2**63) % 2**64 - 2**63


def _key_less(a: str, b: str) -> bool:
    """yaml.v2 sorter.go keyList.Less for two string keys."""
    ar, br = a, b
    for i in range(min(len(ar), len(br))):
        if ar[i] == br[i]:
            continue
        al, bl = ar[i].isalpha(), br[i].isalpha()
        if al and bl:
            return ar[i] < br[i]
        if al or bl:
            return bl
        an = bn = 0
        if ar[i] == "0" or br[i] == "0":
            j = i - 1
            while j >= 0 and ar[j].isdigit():
                if ar[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and ar[ai].isdigit():
            an = _wrap64(an * 10 + int(ar[ai]))
            ai += 1
        bi = i
        while bi < len(br) and br[bi].isdigit():
            bn = _wrap64(bn * 10 + int(br[bi]))
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ar[i] < br[i]
    return len(ar) < len(br)


def sorted_keys(keys: Sequence[str]) -> list[str]:
    """Keys in the order yaml.v2 writes them. keyList.Less is not a total order when digits and
    other characters mix (e.g. "01" < "0x1F" < "1.5" < "01"); Go's sort.Sort then decides, and for
    up to 12 keys that is a plain insertion sort (sort/zsortinterface.go), reproduced here.
    Larger maps fall back to Python's sort, which agrees whenever the order is consistent."""
    out = list(keys)
    if len(out) > 12:

        def cmp(a: str, b: str) -> int:
            return -1 if _key_less(a, b) else (1 if _key_less(b, a) else 0)

        return sorted(out, key=functools.cmp_to_key(cmp))
    for i in range(1, len(out)):
        j = i
        while j > 0 and _key_less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out


def go_float(value: float) -> str:
    """yaml.v2 floatv: strconv.FormatFloat(f, 'g', -1, 64), with YAML's inf/nan spellings."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    point = len(ds) + exp  # decimal point position relative to the digits
    x = point - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 6:  # strconv 'g' with shortest precision switches to %e at exponent 6
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{ds}"
    if point >= len(ds):
        return f"{neg}{ds}{'0' * (point - len(ds))}"
    return f"{neg}{ds[:point]}.{ds[point:]}"


def _node(value: Any) -> Node:
    if isinstance(value, Mapping):
        keys = [str(k) for k in value]
        items = [(_node(k), _node(value[k])) for k in sorted_keys(keys)]
        return MappingNode(_MAP, items, flow_style=False)
    if isinstance(value, (list, tuple)):
        return SequenceNode(_SEQ, [_node(v) for v in value], flow_style=False)
    if value is None:
        return ScalarNode(_STR, "null", style=None)
    if isinstance(value, bool):
        return ScalarNode(_STR, "true" if value else "false", style=None)
    if isinstance(value, int):
        return ScalarNode(_STR, str(value), style=None)
    if isinstance(value, float):
        return ScalarNode(_STR, go_float(value), style=None)
    text = str(value)
    if "\n" in text:
        style: str | None = "|"
    elif resolves_as_string(text):
        style = None  # plain; the emitter falls back to single quotes when plain is not allowed
    else:
        style = '"'
    return ScalarNode(_STR, text, style=style)


class _Resolver(yaml.resolver.BaseResolver):
    """No implicit resolvers: every scalar node is a string node whose style we chose."""


_ESCAPES = {
    "\0": "0",
    "\a": "a",
    "\b": "b",
    "\t": "t",
    "\n": "n",
    "\v": "v",
    "\f": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}
_BREAKS = "\r\n\x85\u2028\u2029"


def _v2_printable(ch: str) -> bool:
    """yaml.v2 yamlprivateh.go is_printable: no C1 controls, surrogates, U+FEFF, U+FFFE/F, and
    nothing outside the Basic Multilingual Plane."""
    c = ord(ch)
    return (
        c == 0x0A
        or 0x20 <= c <= 0x7E
        or 0xA0 <= c <= 0xD7FF
        or (0xE000 <= c <= 0xFFFD and c != 0xFEFF)
    )


class _Dumper(yaml.emitter.Emitter, yaml.serializer.Serializer, _Resolver):
    """PyYAML's emitter with the two places where yaml.v2 differs ported from emitterc.go."""

    def __init__(self, stream: io.StringIO) -> None:
        yaml.emitter.Emitter.__init__(self, stream, allow_unicode=True, width=80, indent=2)
        yaml.serializer.Serializer.__init__(self)
        _Resolver.__init__(self)

    def analyze_scalar(self, scalar: str) -> Any:
        analysis = super().analyze_scalar(scalar)
        # yaml_emitter_analyze_scalar: '\r' is a line break, and what yaml.v2 cannot print
        # forces double quotes.
        if "\r" in scalar:
            analysis.multiline = True
            analysis.allow_flow_plain = analysis.allow_block_plain = False
        if not all(_v2_printable(ch) for ch in scalar):
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis

    def check_simple_key(self) -> bool:
        """yaml_emitter_check_simple_key: unlike PyYAML, an empty scalar is a simple key."""
        event = self.event
        if isinstance(event, yaml.ScalarEvent) and not event.value:
            return True
        return bool(super().check_simple_key())

    def write_single_quoted(self, text: str, split: bool = True) -> None:
        """yaml_emitter_write_single_quoted_scalar: a line break is copied as it is, and the
        indentation after it is written only when more text follows (PyYAML always writes it).
        """
        self.write_indicator("'", True)
        spaces = breaks = False
        out = self.stream
        for i, ch in enumerate(text):
            if ch == " ":
                fold = split and not spaces and self.column > self.best_width
                if fold and 0 < i < len(text) - 1 and text[i + 1] != " ":
                    self.write_indent()
                else:
                    out.write(ch)
                    self.column += 1
                spaces = True
            elif ch in _BREAKS:
                if not breaks and ch == "\n":
                    self.write_line_break()
                if ch == "\n":
                    self.write_line_break()
                else:
                    out.write(ch)
                    self.column = 0
                    self.line += 1
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                if ch == "'":
                    out.write("'")
                    self.column += 1
                out.write(ch)
                self.column += 1
                self.indention = False
                spaces = breaks = False
        self.write_indicator("'", False)
        self.whitespace = False
        self.indention = False

    def write_literal(self, text: str) -> None:
        """yaml.v2 never ends the stream with `...` after a keep-chomped (`|+`) block."""
        super().write_literal(text)
        self.open_ended = False

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        """yaml_emitter_write_double_quoted_scalar: escapes, and folds only at a single space
        (no trailing backslash), unlike PyYAML."""
        self.write_indicator('"', True)
        spaces = False
        out = self.stream
        for i, ch in enumerate(text):
            if not _v2_printable(ch) or ch in _BREAKS or ch in '"\\':
                code = ord(ch)
                if ch in _ESCAPES:
                    data = "\\" + _ESCAPES[ch]
                elif code <= 0xFF:
                    data = f"\\x{code:02X}"
                elif code <= 0xFFFF:
                    data = f"\\u{code:04X}"
                else:
                    data = f"\\U{code:08X}"
                out.write(data)
                self.column += len(data)
                spaces = False
            elif ch == " ":
                if split and not spaces and self.column > self.best_width and 0 < i < len(text) - 1:
                    self.write_indent()
                    if text[i + 1] == " ":
                        out.write("\\")
                        self.column += 1
                else:
                    out.write(ch)
                    self.column += 1
                spaces = True
            else:
                out.write(ch)
                self.column += 1
                spaces = False
        self.write_indicator('"', False)
        self.whitespace = False
        self.indention = False


def dumps(obj: Any) -> str:
    """`obj` (JSON-like: dicts, lists, str, int, bool, float, None) as JSONToYAML writes it."""
    stream = io.StringIO()
    dumper = _Dumper(stream)
    try:
        dumper.open()
        dumper.serialize(_node(obj))
        dumper.close()
    finally:
        dumper.dispose()
    return stream.getvalue()


def go_quote(text: str) -> str:
    """Go's strconv.Quote / fmt %q: double quotes, Go escapes, printable Unicode kept."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
