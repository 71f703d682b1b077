"""The task interface: what a forecast and an event-classification run do differently.

A run is the same sequence for every task (:mod:`stkd.pipeline`): load the data, build the task, check
the models, open the run directory, train the teachers, read their soft labels, train the distilled and
the plain student, score everything and write the report. A :class:`Task` supplies the parts that
differ: the models' output shape (:meth:`spec`), the losses (:meth:`hard_loss`, :meth:`kd_loss`), the
validation score that picks checkpoints (:meth:`validator`, :attr:`monitor`), what the teachers pass on
(:meth:`teacher_signal`) and the evaluation (:meth:`score`). Shared steps live in :mod:`stkd.steps`.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from torch import nn

from stkd import names
from stkd.config import InputsConfig, RunConfig
from stkd.data.windows import WindowedData
from stkd.errors import STKDError
from stkd.evaluate import measure_speeds
from stkd.machine import compute_facts
from stkd.models.base import ModelSpec, STModel, count_params
from stkd.runs import Trained

LossFn = Callable[[Any, dict], tuple[Any, dict[str, float]]]


class TeacherSignal:
    """What the teachers pass to a distilled student: a loss over the student's outputs built by
    :meth:`Task.kd_loss`, plus what the model card records about the teachers."""

    def __init__(self, teachers: list[str], weights: list[float] | None) -> None:
        self.teachers = teachers  # the teachers' registry names, in order
        self.weights = weights  # one weight per teacher, or None for equal weights
        #: the teacher whose weights, cut down, the distilled student starts from (``distill.init: teacher``)
        self.start: STModel | None = None
        self.start_inputs: InputsConfig | None = None  # what that teacher reads (None: the plain window)

    def card(self) -> dict:
        return {"teachers": self.teachers, "teacher_weights": None if self.weights is None else list(self.weights)}


SignalT = TypeVar("SignalT", bound=TeacherSignal)


def to_teacher_entry(teachers: list[Trained], metric: str, value: float, **more: float) -> dict:
    """A student's metrics.json field ``to_teacher``: how closely it follows what it learned from on the test
    split (the teachers' ensemble where there are several, else the teacher), by ``metric`` (a key of
    :data:`stkd.names.TO_TEACHER_METRICS`). Beside the plain student's it says whether distillation brought the
    student nearer its teacher, which a gain in accuracy alone cannot tell. ``more``: other measures of the
    same closeness, kept beside it (events: ``probability_gap``)."""
    return {"to_teacher": {"teacher": taught_by(teachers), "metric": metric, "value": float(value),
                           **{k: float(v) for k, v in more.items()}}}


def taught_by(teachers: list[Trained]) -> str:
    """The name of the row a distilled student learns from: the teachers' ensemble where there are several."""
    return names.TEACHER_ENSEMBLE if len(teachers) >= 2 else teachers[0].name


def ensemble_entry(teachers: list[Trained], weights: list[float] | None) -> dict:
    """The metrics.json fields of the teachers' ensemble row beside its test scores: its members and
    their weights; no latency of its own (it is the members run one after the other); its training time
    is theirs together."""
    members = [t.name for t in teachers]
    seconds = [t.train_seconds for t in teachers]
    return {"model": " + ".join(members), "members": members,
            "weights": [1.0 / len(teachers)] * len(teachers) if weights is None else list(weights),
            "params": sum(count_params(t.model) for t in teachers), "latency_ms_batch1": None,
            "throughput_windows_per_s": None,
            "train_seconds": None if None in seconds else float(sum(s for s in seconds if s is not None))}


class Task(ABC):
    """One kind of learning problem over windowed spatio-temporal data (see the module doc)."""

    name: ClassVar[str]  #: ``forecast`` | ``classify`` (``RunConfig.task``)
    monitor: ClassVar[str]  #: key of the validator's dict that early stopping minimises
    channels_meaning: ClassVar[str]  #: what the last axis of ``pred`` holds, for error messages

    def __init__(self, cfg: RunConfig, wd: WindowedData) -> None:
        self.cfg = cfg
        self.wd = wd

    @classmethod
    def build(cls, cfg: RunConfig, wd: WindowedData) -> "Task":
        """The task of a config on prepared data; bad task input (e.g. labels) fails here."""
        return cls(cfg, wd)

    # ---------------------------------------------------------------- models
    @abstractmethod
    def spec(self) -> ModelSpec:
        """The shape of the models this task trains."""

    def for_inputs(self, inputs: InputsConfig | None) -> Self:
        """This task on the data as a model with ``inputs`` reads it (a privileged teacher's longer
        history, lags or covariates): the same windows, targets and labels; only the batches' inputs
        differ. Returns ``self`` for the plain window."""
        wd = self.wd.view(inputs)
        if wd is self.wd:
            return self
        out = copy.copy(self)
        out.wd = wd
        return out

    def with_config(self, cfg: RunConfig) -> Self:
        """This task under ``cfg``, a config that differs from this one only in how models are built and
        trained (student, distill, train, eval): the prepared data and labels are reused instead of being
        loaded again, as a hyper-parameter search does for each of its trials. A config with other data,
        labels or task kind is refused (the prepared windows would not be its data)."""
        for key in ("task", "data", "events"):
            if getattr(cfg, key) != getattr(self.cfg, key):
                raise STKDError(f"{key}: differs from the config this task prepared its data for; prepare the "
                                "task again for other data")
        out = copy.copy(self)
        out.cfg = cfg
        return out

    def teacher_task(self) -> "Task":
        """The task the teachers are trained under: this one, unless the teachers are of another kind
        (event students taught by forecasters)."""
        return self

    def summary_extra(self) -> dict:
        """Extra fields of the run's ``data.json``."""
        return {}

    def card_extra(self) -> dict:
        """Extra fields of every model card this task writes."""
        return {}

    # ---------------------------------------------------------------- losses and validation
    @abstractmethod
    def hard_loss(self) -> LossFn:
        """The loss of teachers and plain students, on the ground truth only."""

    @abstractmethod
    def kd_loss(self, signal: TeacherSignal, student: nn.Module) -> tuple[LossFn, dict[str, nn.Module]]:
        """The distilled ``student``'s loss over the teachers' signal, and any module trained with it
        (e.g. a hint projection from its hidden width to the teacher's)."""

    @abstractmethod
    def validator(self, batch_size: int) -> Callable[[nn.Module], dict[str, float]]:
        """``model -> validation scores``; early stopping minimises ``scores[self.monitor]``."""

    @abstractmethod
    def val_record(self, best_score: float) -> dict:
        """The validation scores a model card and :class:`~stkd.runs.Trained` keep, from the best monitored
        value (``{"mae": ...}`` or ``{"f1": ...}``)."""

    # ---------------------------------------------------------------- teachers to students
    def check_teachers(self, teachers: list[Trained], teacher_run: Path) -> None:
        """Teachers saved in another run must be of the kind this task's teachers are."""
        want = self.teacher_task().name
        kinds = sorted({t.kind for t in teachers})
        if kinds != [want]:
            raise STKDError(f"{teacher_run} holds {'/'.join(kinds)} teachers but this config's teachers are "
                            f"{want} models; distil from a teacher run of the same task")

    @abstractmethod
    def teacher_signal(self, run_dir: Path, teachers: list[Trained], *, progress: bool = False) -> TeacherSignal:
        """Read (building once if needed) the teachers' soft-label cache in ``run_dir`` and weigh them;
        ``progress``: a bar per cache built (:mod:`stkd.progress`). Implementations return it through
        :meth:`with_start`."""

    def with_start(self, signal: SignalT, teachers: list[Trained]) -> SignalT:
        """``signal`` with the teacher the distilled student starts from (``distill.init: teacher``: the first
        one; :func:`stkd.pipeline.check_start` checks before anything trains that the student can be cut from it)."""
        if self.cfg.distill.init == "teacher":
            first = teachers[0].model
            assert isinstance(first, STModel)
            signal.start, signal.start_inputs = first, teachers[0].inputs
        return signal

    # ---------------------------------------------------------------- evaluation
    @abstractmethod
    def load_models(self, run_dir: Path, roles: tuple[str, ...]) -> list[Trained]:
        """The saved models of a run that this task scores (for ``stkd evaluate`` and ``distill``)."""

    def metrics_header(self) -> dict:
        """The fields metrics.json opens with, for every task: the data set, the task, and the machine that
        scored the models (their latencies were measured there; each model's ``trained_on`` says where it
        trained)."""
        data = self.wd.data
        return {"dataset": {"name": data.name, "nodes": data.num_nodes, "steps": data.num_steps,
                            "freq": data.freq_str},
                "task": self.name, "scored_on": compute_facts()}

    def speeds(self, models: list[Trained], batch_size: int, *, progress: bool = False) -> dict[str, dict]:
        """Each model's batch-1 latency and throughput on CPU (as reported), all measured together in rounds
        (:func:`stkd.evaluate.measure_speeds`), each on the inputs it reads; by model name."""
        return measure_speeds({m.name: (m.model.cpu(), self.wd.view(m.inputs)) for m in models},
                              repeats=self.cfg.eval.latency_repeats, throughput_batch=batch_size, progress=progress)

    @abstractmethod
    def score(self, run_dir: Path, models: list[Trained], *, progress: bool = False,
              teachers_together: bool = True) -> dict:
        """Score every model and the baselines on the test split; write predictions and metrics.json.
        ``progress``: a bar per model scored, latency measured and baseline (:mod:`stkd.progress`).
        ``teachers_together``: the run's teachers teach its distilled students together (their ensemble, or the
        one teacher): each student gets its ``to_teacher`` (:func:`to_teacher_entry`) against that, and several
        teachers their ensemble's row. False where the teachers are alternatives, each teaching a student of its
        own (``stkd transfer``'s routes): neither, since no student learned from them together."""
