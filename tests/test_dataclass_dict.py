"""stkd.dataclass_dict: typed dataclasses from plain mappings, on section classes of its own (not stkd's)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from stkd.dataclass_dict import from_dict
from stkd.errors import ConfigError


@dataclass
class Inner:
    width: int = 8
    rate: float = 0.5


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=lambda: Inner(width=16))
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    limit: int | None = None
    parts: list[Inner] = field(default_factory=list)


def test_a_partial_section_keeps_the_defaults_of_the_field_it_extends():
    out = from_dict(Outer, {"inner": {"rate": 1}})
    assert out.inner == Inner(width=16, rate=1.0)  # the field's default (16), not Inner's own (8)
    assert isinstance(out.inner.rate, float)


def test_values_are_coerced_or_refused_naming_the_key():
    out = from_dict(Outer, {"name": 3, "sizes": 4, "limit": None, "parts": {"width": 2}})
    assert (out.name, out.sizes, out.limit, out.parts) == ("3", [4], None, [Inner(width=2)])
    with pytest.raises(ConfigError, match=r"cfg\.inner\.width: expected an integer, got 1\.5"):
        from_dict(Outer, {"inner": {"width": 1.5}}, "cfg")
    with pytest.raises(ConfigError, match=r"cfg\.limit: expected an integer, got True"):
        from_dict(Outer, {"limit": True}, "cfg")
    with pytest.raises(ConfigError, match=r"cfg\.sizes\[1\]: expected an integer"):
        from_dict(Outer, {"sizes": [1, "two"]}, "cfg")


def test_an_unknown_key_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"unknown key cfg\.inner\.widht; did you mean 'width'\?"):
        from_dict(Outer, {"inner": {"widht": 3}}, "cfg")
    with pytest.raises(ConfigError, match="valid keys: name, inner, sizes, limit, parts"):
        from_dict(Outer, {"zzz": 1}, "cfg")
