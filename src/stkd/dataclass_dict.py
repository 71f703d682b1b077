"""Typed dataclasses from plain mappings (a parsed YAML file): every value coerced to its field's type,
unknown keys refused with the nearest valid one, partial sections merged into their defaults.

Generic: it knows dataclasses and type hints, nothing of stkd's sections (those are :mod:`stkd.config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any

from stkd.errors import ConfigError


def _nearest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"


def _coerce(value: Any, tp: Any, where: str, base: Any = None) -> Any:
    """``value`` as type ``tp``; a mapping for a dataclass is merged into ``base`` (the field's default)
    when that is an instance of it, so a partial section keeps the defaults it does not name."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where, base)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a section class (not an instance)
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return from_dict(tp, value, where, base=base if isinstance(base, tp) else None)
    if origin is list:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and args and dataclasses.is_dataclass(args[0]) is False:
            value = [value]  # a single value where a list is expected
        if isinstance(value, dict) and args and dataclasses.is_dataclass(args[0]):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if not args:
            return list(value)
        bases = list(base) if isinstance(base, list) else []  # item i extends the default's item i
        return [_coerce(v, args[0], f"{where}[{i}]", bases[i] if i < len(bases) else None)
                for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls, raw: dict, where: str = "config", base=None):
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types are :class:`ConfigError`.

    Keys the mapping leaves out keep their defaults, also inside nested sections: a partial section is
    merged into the default it extends (``student: {params: {dropout: 0.1}}`` stays the default
    ``stid`` student; ``teacher: {epochs: 3}`` keeps the default ``gwnet``), never rebuilt from the
    section class's own field defaults. ``base`` is the instance to merge into (default ``cls()``).
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    base = cls() if base is None else base
    kwargs = {}
    for key, value in (raw or {}).items():
        if key not in names:
            raise ConfigError(f"unknown key {where}.{key}{_nearest(str(key), names)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}", getattr(base, key))
    return dataclasses.replace(base, **kwargs)
