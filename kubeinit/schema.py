"""A small strict decoder from YAML mappings to frozen dataclasses, and back.

kubeadm decodes its configuration strictly (unknown fields are errors for kubeadm's own kinds);
this module does the same for the dataclasses in `kubeinit.config`. A field's YAML key is its
camelCase name unless `key(...)` metadata says otherwise. Errors name the field path.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import types
import typing
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


class DecodeError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def key(name: str) -> dict[str, str]:
    """Field metadata naming the YAML key when camelCase of the attribute name is wrong."""
    return {"key": name}


def yaml_key(f: dataclasses.Field[Any]) -> str:
    if "key" in f.metadata:
        return str(f.metadata["key"])
    head, *rest = f.name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


# time.Duration is an int64 count of nanoseconds: ParseDuration refuses anything longer
# (2562047h47m16.854775807s, about 292 years).
MAX_DURATION_NS = 2**63 - 1


def parse_duration(text: str) -> datetime.timedelta:
    """Go's time.ParseDuration for the non-negative durations kubeadm accepts ("8760h0m0s"),
    including its overflow check."""
    s = text.strip()
    if s == "0":
        return datetime.timedelta(0)
    if s.startswith("-"):
        raise ValueError(f"{text!r} is negative")
    pos, total = 0, Fraction(0)
    s = s.lstrip("+")
    if not s:
        raise ValueError(f"{text!r} is not a duration")
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += Fraction(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
        if total > MAX_DURATION_NS:
            raise ValueError(
                f"{text[:40]!r} is longer than the longest duration Go can hold"
                " (2562047h47m16s, about 292 years)"
            )
    if pos != len(s):
        raise ValueError(f"{text[:40]!r} is not a duration like 8760h0m0s")
    # Go truncates to whole nanoseconds; timedelta keeps microseconds.
    return datetime.timedelta(microseconds=int(total) // 1000)


def format_duration(d: datetime.timedelta) -> str:
    """Go's Duration.String() for whole seconds ("8760h0m0s", "4m0s", "0s")."""
    total = int(d.total_seconds())
    if total == 0:
        return "0s"
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or tp is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        datetime.timedelta: "a duration like 8760h0m0s",
    }.get(tp, str(tp))


def shown(data: Any) -> str:
    """A value for an error message: scalars as repr (at most 60 characters), containers by
    kind only (they may be large, and may hold a secret under some key)."""
    if isinstance(data, Mapping):
        return "a mapping"
    if isinstance(data, (list, tuple)):
        return "a list"
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def decode(cls: type[T], data: Any, path: str = "") -> T:
    """Decode `data` (from YAML) into dataclass `cls`, rejecting unknown fields."""
    return typing.cast(T, _decode(cls, data, path))


def _decode(tp: Any, data: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            return None
        return _decode(args[0], data, path)
    if tp is Any:
        return data
    if dataclasses.is_dataclass(tp):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise DecodeError(path, f"expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(tp)
        fields = {yaml_key(f): f for f in dataclasses.fields(tp) if f.init}
        for k in data:
            if k not in fields:
                accepted = ", ".join(sorted(fields)) or "no fields"
                raise DecodeError(_join(path, str(k)), f"unknown field (accepted here: {accepted})")
        kwargs = {}
        for k, f in fields.items():
            if k in data:
                kwargs[f.name] = _decode(hints[f.name], data[k], _join(path, k))
        return typing.cast(Any, tp)(**kwargs)
    if origin in (tuple, list):
        if data is None:
            return ()
        if not isinstance(data, list):
            raise DecodeError(path, f"expected a list, got {type(data).__name__}")
        (item,) = get_args(tp)[:1]
        return tuple(_decode(item, v, f"{path}[{i}]") for i, v in enumerate(data))
    if origin in (dict, Mapping) or tp is dict:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise DecodeError(path, f"expected a mapping, got {type(data).__name__}")
        kv_types = get_args(tp)
        vt = kv_types[1] if kv_types else Any
        return types.MappingProxyType(
            {str(k): _decode(vt, v, _join(path, str(k))) for k, v in data.items()}
        )
    if tp is datetime.timedelta:
        if not isinstance(data, str):
            raise DecodeError(path, f"expected {_type_name(tp)}, got {shown(data)}")
        try:
            return parse_duration(data)
        except ValueError as e:
            raise DecodeError(path, f"{e}") from None
    if tp is bool:
        if not isinstance(data, bool):
            raise DecodeError(path, f"expected true or false, got {shown(data)}")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(path, f"expected an integer, got {shown(data)}")
        return data
    if tp is str:
        if isinstance(data, bool) or data is None or isinstance(data, (list, dict)):
            raise DecodeError(path, f"expected a string, got {shown(data)}")
        return str(data)
    if isinstance(tp, type) and issubclass(tp, str):  # StrEnum
        try:
            return tp(data)
        except ValueError:
            accepted = ", ".join(str(v.value) for v in tp)  # type: ignore[attr-defined]
            raise DecodeError(path, f"{shown(data)} is not one of: {accepted}") from None
    raise TypeError(f"schema: unsupported type {tp!r} at {path}")


def _join(path: str, k: str) -> str:
    return f"{path}.{k}" if path else k


def encode(obj: Any, *, omitempty: bool = True) -> Any:
    """Dataclass -> plain YAML-ready data (camelCase keys, Go-style omitempty)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if f.metadata.get("internal"):
                continue
            v = getattr(obj, f.name)
            enc = encode(v, omitempty=omitempty)
            if (
                omitempty
                and not f.metadata.get("always")
                and enc in (None, "", (), [], {}, False, 0)
            ):
                continue
            out[yaml_key(f)] = enc
        return out
    if isinstance(obj, (tuple, list)):
        return [encode(v, omitempty=omitempty) for v in obj]
    if isinstance(obj, Mapping):
        return {k: encode(v, omitempty=omitempty) for k, v in obj.items()}
    if isinstance(obj, datetime.timedelta):
        return format_duration(obj)
    if isinstance(obj, str):
        return str(obj)
    return obj
