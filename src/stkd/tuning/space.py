"""What a search varies: the default space of each task and student, a ``--space`` file that narrows or
overrides it, and how sampled values become a run config.

The keys are those of :data:`stkd.names.TUNE_PARAMS` (dotted, flat). In a ``--space`` file each key is

- a range ``{low: 1.0e-4, high: 1.0e-2, log: true}`` (an integer range for width and depth),
- a list of choices ``[l1, huber]`` (or ``{choices: [...]}``),
- one value (``student.depth: 2``): fixed, not searched,
- ``null``: not searched, the base config's value kept.

A key the file does not name keeps its default range. Unknown keys, values outside a key's domain and keys
the task or student does not use are errors that name the key, before anything is trained. (Not a
:mod:`stkd.config` dataclass: its keys are a mapping of dotted names to ranges, read by this module alone.)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stkd import names
from stkd.config import ModelConfig, RunConfig, read_yaml_mapping, validate
from stkd.errors import ConfigError


@dataclass(frozen=True)
class Domain:
    """The values a key may take at all: its kind and bounds (``low_open``: the bound itself excluded)."""

    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()

    def check(self, key: str, value: Any) -> Any:
        """``value`` as this domain's type; a ConfigError naming ``key`` when it lies outside."""
        if self.kind == "categorical":
            if value not in self.choices:
                close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"--space {key}: {value!r} is not one of {', '.join(map(str, self.choices))}{hint}")
            return value
        number = _number(key, value)
        if self.kind == "int":
            if number != int(number):
                raise ConfigError(f"--space {key}: must be a whole number, got {value!r}")
            number = int(number)
        lo_ok = self.low is None or (number > self.low if self.low_open else number >= self.low)
        hi_ok = self.high is None or (number < self.high if self.high_open else number <= self.high)
        if not (lo_ok and hi_ok):
            raise ConfigError(f"--space {key}: {value!r} lies outside {self.describe()}")
        return number

    def describe(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}{')' if self.high_open or self.high is None else ']'}"


#: Every tunable key's domain (the keys are :data:`stkd.names.TUNE_PARAMS`).
DOMAINS: dict[str, Domain] = {
    "distill.alpha": Domain("float", 0.0, 1.0),
    "distill.loss": Domain("categorical", choices=names.LOSSES),
    "distill.temperature": Domain("float", 0.0, None, low_open=True),
    "train.lr": Domain("float", 0.0, None, low_open=True),
    "train.weight_decay": Domain("float", 0.0, None),
    "student.width": Domain("int", 1, None),
    "student.depth": Domain("int", 1, None),
    "student.dropout": Domain("float", 0.0, 1.0, high_open=True),
}
assert set(DOMAINS) == set(names.TUNE_PARAMS)

#: Keys a task does not use: tuning them would only add noise to the search.
UNUSED_BY_TASK = {"forecast": {"distill.temperature"}, "classify": {"distill.loss"}}

#: Which student keys each student model has (a student model not listed has none of them).
STUDENT_KEYS = {"stid": {"student.width", "student.depth", "student.dropout"},
                "mlp": {"student.width", "student.depth", "student.dropout"},
                "linear": set()}


@dataclass(frozen=True)
class Param:
    """One searched key: a float or int range (``log``: sampled on a log scale) or categorical choices."""

    name: str
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        """Draw this key's value for an Optuna ``trial``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]

    def to_dict(self) -> dict | list:
        if self.kind == "categorical":
            return list(self.choices)
        return {"low": self.low, "high": self.high, **({"log": True} if self.log else {})}

    def describe(self) -> str:
        if self.kind == "categorical":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"[{self.low:g}, {self.high:g}]{' log' if self.log else ''}"


@dataclass
class Space:
    """The searched keys and the keys fixed for every trial."""

    params: dict[str, Param] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)

    def suggest(self, trial) -> dict[str, Any]:
        """One trial's values: the searched keys drawn, the fixed ones as given."""
        return {**self.fixed, **{k: p.suggest(trial) for k, p in self.params.items()}}

    def to_dict(self) -> dict:
        """The space as a ``--space`` file writes it (what the study records and compares on resume)."""
        return {**{k: p.to_dict() for k, p in self.params.items()}, **{k: v for k, v in self.fixed.items()}}


def default_space(task: str, student: str) -> Space:
    """The space searched when no ``--space`` file says otherwise: the distillation weight, the loss
    (forecasts) or the temperature (events), the learning rate and the student's width and depth. The
    ranges span what worked on the embedded data (docs/benchmarks.md, the training recipe) with room either
    side."""
    params = [Param("distill.alpha", "float", 0.1, 0.9),
              Param("train.lr", "float", 3e-4, 1e-2, log=True)]
    if task == "forecast":
        params.append(Param("distill.loss", "categorical", choices=names.LOSSES))
    else:
        params.append(Param("distill.temperature", "float", 1.0, 8.0, log=True))
    if student == "stid":
        params += [Param("student.width", "categorical", choices=(8, 16, 32, 64)),
                   Param("student.depth", "int", 1, 4)]
    elif student == "mlp":
        params += [Param("student.width", "categorical", choices=(16, 32, 64, 128, 256)),
                   Param("student.depth", "int", 1, 3)]
    return Space({p.name: p for p in params})


def usable_keys(cfg: RunConfig) -> set[str]:
    """The keys that change something for this config's task and student."""
    general = {k for k in names.TUNE_PARAMS if not k.startswith("student.")}
    return (general - UNUSED_BY_TASK.get(cfg.task, set())) | STUDENT_KEYS.get(cfg.student.name, set())


def read_space_file(path: str | Path) -> dict:
    """The raw mapping of a ``--space`` YAML file (``safe_load``)."""
    raw = read_yaml_mapping(path, missing=f"--space: {path}", where=f"--space {path}",
                            top_level="keys like train.lr to ranges")
    return raw or {}


def build_space(cfg: RunConfig, raw: dict | None = None) -> Space:
    """The space of ``cfg``'s task and student, with ``raw`` (a ``--space`` file's mapping) applied to it."""
    space = default_space(cfg.task, cfg.student.name)
    usable = usable_keys(cfg)
    for key, value in (raw or {}).items():
        key = str(key)
        if key not in names.TUNE_PARAMS:
            close = difflib.get_close_matches(key, list(names.TUNE_PARAMS), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(names.TUNE_PARAMS)}"
            raise ConfigError(f"--space: unknown key {key!r}{hint}")
        if key not in usable:
            why = (f"the {cfg.student.name} student has no {key.split('.')[1]}" if key.startswith("student.")
                   else f"task {cfg.task} does not use it")
            raise ConfigError(f"--space {key}: {why}")
        space.params.pop(key, None)
        space.fixed.pop(key, None)
        if value is None:
            continue
        entry = _entry(key, value)
        if isinstance(entry, Param):
            space.params[key] = entry
        else:
            space.fixed[key] = entry
    return space


def _entry(key: str, value: Any) -> Param | Any:
    """One key of a ``--space`` file: a :class:`Param` to search, or a fixed value."""
    domain = DOMAINS[key]
    if isinstance(value, dict) and set(value) == {"choices"}:
        value = value["choices"]
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"--space {key}: an empty list of choices")
        choices = tuple(dict.fromkeys(domain.check(key, v) for v in value))
        return Param(key, "categorical", choices=choices) if len(choices) > 1 else choices[0]
    if isinstance(value, dict):
        unknown = set(value) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(value):
            raise ConfigError(f"--space {key}: a range is {{low: .., high: .., log: true|false}}, or give a list "
                              f"of choices or one value; got {value!r}")
        if domain.kind == "categorical":
            raise ConfigError(f"--space {key}: takes a list of choices ({', '.join(domain.choices)}), not a range")
        low, high = domain.check(key, value["low"]), domain.check(key, value["high"])
        log = value.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"--space {key}: log must be true or false, got {log!r}")
        if low > high:
            raise ConfigError(f"--space {key}: low ({low:g}) is above high ({high:g})")
        if log and low <= 0:
            raise ConfigError(f"--space {key}: a log range needs low > 0, got {low:g}")
        return Param(key, domain.kind, low, high, log) if low < high else low
    return domain.check(key, value)


def _number(key: str, value: Any) -> float:
    """A YAML number; ``1e-4`` (which YAML 1.1 reads as a string) is accepted too."""
    if isinstance(value, bool):
        raise ConfigError(f"--space {key}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--space {key}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"--space {key}: must be finite, got {value!r}")
    return number


# ---------------------------------------------------------------------- values -> config
def apply_values(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``cfg`` with one trial's values (keys of :data:`stkd.names.TUNE_PARAMS`) set, validated."""
    sections: dict[str, dict[str, Any]] = {"distill": {}, "train": {}, "student": {}}
    for key, value in values.items():
        section, name = key.split(".", 1)
        sections[section][name] = value
    student = student_with(cfg.student, sections["student"]) if sections["student"] else cfg.student
    if "lr" in sections["train"] and student.lr is not None:  # the tuned rate is the student's: its own one too
        student = dataclasses.replace(student, lr=sections["train"]["lr"])
    return validate(dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, **sections["distill"]),
                                        train=dataclasses.replace(cfg.train, **sections["train"]),
                                        student=student))


STID_WIDTHS = ("embed_dim", "node_dim", "tod_dim", "dow_dim")  # each embedding: the encoder's width is their sum
STID_DEFAULT_WIDTH = 16  # stid's default for each of them
MLP_DEFAULT_HIDDEN = [64, 64]


def student_with(student: ModelConfig, knobs: dict[str, Any]) -> ModelConfig:
    """The student with ``width`` / ``depth`` / ``dropout`` set in its own parameters.

    stid: width sets each embedding's size (window, node, time of day, day of week; one switched off with 0
    stays off), depth the encoder layers. mlp: ``hidden`` becomes ``depth`` layers of ``width`` (the one not
    given is read from the current ``hidden``)."""
    params = dict(student.params)
    if "dropout" in knobs:
        params["dropout"] = float(knobs["dropout"])
    if student.name == "stid":
        if "width" in knobs:
            for key in STID_WIDTHS:
                if params.get(key, STID_DEFAULT_WIDTH) != 0:
                    params[key] = int(knobs["width"])
        if "depth" in knobs:
            params["layers"] = int(knobs["depth"])
    elif student.name == "mlp":
        hidden = list(params.get("hidden") or MLP_DEFAULT_HIDDEN)
        width = int(knobs.get("width", hidden[0]))
        depth = int(knobs.get("depth", len(hidden)))
        if "width" in knobs or "depth" in knobs:
            params["hidden"] = [width] * depth
    elif set(knobs) & {"width", "depth"}:
        raise ConfigError(f"--space: the {student.name} student has no width or depth to tune")
    return dataclasses.replace(student, params=params)
