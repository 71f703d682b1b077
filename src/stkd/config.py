"""Run configuration: plain dataclasses, read from YAML with ``safe_load`` and validated.

Each dataclass field's docstring-comment becomes ``--help`` text. Unknown keys are errors that name
the key and the nearest valid one; nothing in a config can import or execute code.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stkd import names
from stkd.dataclass_dict import from_dict
from stkd.errors import ConfigError


# ----------------------------------------------------------------------------- data
@dataclass
class GraphConfig:
    """How the adjacency is built when no matrix file is given."""

    method: str = "auto"  # auto | file | gaussian | knn | none (auto: file, else gaussian on distances, else knn)
    k: int = 8  # neighbours per node for knn
    sigma: float | None = None  # kernel width (default: std of distances; knn: mean neighbour distance, km)
    threshold: float = 0.1  # Gaussian weights below this are dropped (DCRNN's sparsity rule)
    symmetric: bool = True  # symmetrise the result (max of A and A^T)


@dataclass
class WindowConfig:
    """Sliding-window lengths in steps."""

    input: int = 12  # P: steps of history the model sees
    horizon: int = 12  # H: steps ahead it forecasts


@dataclass
class SimulatorConfig:
    """Parameters of ``builtin: synthetic-traffic``."""

    nodes: int = 200
    days: int = 14
    freq: str = "5min"
    seed: int = 0
    incidents_per_day: float = 4.0  # expected incidents over the whole network per day
    missing_rate: float = 0.01  # share of isolated dropped readings
    outage_rate: float = 0.0005  # per node and step, chance a multi-step sensor outage starts
    noise: float = 1.5  # sensor noise std (mph)
    start: str = "2024-01-01 00:00"


@dataclass
class DataConfig:
    """Where the data comes from and how it is prepared for learning."""

    source: str = "builtin"  # csv-wide | csv-long | parquet-long | metr-la-h5 | pems-npz | sql | builtin
    name: str | None = "akl-pedestrians"  # with source builtin: akl-pedestrians | los-loop | synthetic-traffic
    path: str | None = None  # the data file
    url: str | None = None  # source sql: duckdb:///file.duckdb, duckdb:// (in memory) or postgresql://user@host:port/db
    query: str | None = None  # source sql: a SELECT returning long records (time, node, values...)
    table: str | None = None  # source sql: a table (or schema.table) of long records, instead of query
    time_column: str | None = None  # timestamp column (long files; wide files: optional)
    node_column: str | None = None  # sensor id column (long files)
    target: list[str] = field(default_factory=list)  # value columns to forecast (long files)
    covariates: list[str] = field(default_factory=list)  # extra input columns (long files)
    encode: list[str] = field(default_factory=list)  # non-numeric covariates to one-hot encode
    freq: str | None = None  # step, e.g. 5min or 1h; inferred when omitted
    start: str | None = None  # first timestamp, for a wide file without timestamps
    duplicates: str = "error"  # error | mean | first | last: what to do with repeated timestamps
    null_value: float | None = None  # a sentinel that means missing (e.g. 0 for METR-LA speeds)
    locations: str | None = None  # CSV of node, latitude, longitude
    adjacency: str | None = None  # matrix file (csv/npy/npz) or DCRNN pickle (metr-la-h5)
    distances: str | None = None  # CSV of (from, to, cost) pairwise distances (pems-npz)
    graph: GraphConfig = field(default_factory=GraphConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    split: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])  # train/val/test shares
    time_range: list[str] | None = None  # [start, end] to keep (inclusive), e.g. the last year
    nodes: list[str] | None = None  # keep only these nodes
    history: str | None = None  # e.g. 2d: keep only the last 2 days of the train part (val and test unchanged)
    impute: str = "ffill"  # ffill | seasonal | none: how missing *inputs* are filled
    clip_outliers: float | None = None  # k: clip values beyond median +- k * IQR (per feature, of the train part)
    scaler: str = "zscore"  # zscore | minmax
    scaler_scope: str = "node"  # node | global
    day_of_week: str = "auto"  # auto | on | off: day-of-week embeddings (auto: when training holds every weekday)
    clip: str = "auto"  # auto | nonnegative | none: forecasts not below 0 (auto: when no observed train target is < 0)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)


# --------------------------------------------------------------------------- models
@dataclass
class InputsConfig:
    """What a model reads of each window (docs/distillation.md, "Teachers that know more").

    By default every model reads the window's ``data.window.input`` steps of every feature. A teacher
    may read more than the deployed student can afford: a longer history, the same hours one day or
    one week earlier, covariates the student does without. Its soft labels stay aligned to the student's
    windows and target times: only what it reads changes.
    """

    length: int | None = None  # input steps ending at the window's last input step (default: data.window.input)
    lags: list[str] = field(default_factory=list)  # e.g. [1D, 7D]: the values that far back, at the same clock times
    features: list[str] | None = None  # data features it reads (default: all of them)


# what a model card's inputs add beside InputsConfig's own keys (stkd.steps.inputs_card): the resolved view
# and whether the serving path can feed it; readers of the config part leave these out
INPUTS_CARD_EXTRAS = ("view", "servable")


@dataclass
class ModelConfig:
    """A model by registry name and its hyper-parameters."""

    name: str = "gwnet"  # gwnet | staeformer | agcrn | mlp | stid | linear
    params: dict[str, Any] = field(default_factory=dict)  # model hyper-parameters
    epochs: int | None = None  # overrides train.epochs for this model
    inputs: InputsConfig = field(default_factory=InputsConfig)  # what it reads (privileged teachers read more)
    seed: int | None = None  # overrides train.seed for this model: copies of one model in a teacher ensemble
    lr: float | None = None  # overrides train.lr for this model: a small student may learn best at another rate


@dataclass
class DistillConfig:
    """How the student learns from the teacher(s)."""

    alpha: float = 0.5  # weight of the ground truth; 1 - alpha goes to the teacher
    loss: str = "huber"  # l1 | huber | mse
    bounded: bool = False  # teacher-bounded: penalise only where the student is worse than the teacher
    margin: float = 0.0  # teacher-bounded margin (original units)
    fill_missing: bool = True  # the teacher's prediction stands in for missing ground truth
    # all | observed-inputs: where the teacher's forecast of a sensor counts; observed-inputs leaves out windows
    # whose input of that sensor was imputed (docs/distillation.md, "Where readings are missing")
    teacher_scope: str = "observed-inputs"
    feature_weight: float = 0.0  # hint loss weight (0: off)
    relation_weight: float = 0.0  # relation loss weight (0: off)
    temperature: float = 2.0  # softmax temperature for event tasks
    ensemble: str = "mean"  # mean | weighted: 1 / validation MAE (forecasts) or cross-entropy (events), several teachers
    multiscale_weight: float = 0.0  # match the teacher's forecast averaged over 2 and 4 steps (0: off)
    period_weight: float = 0.0  # match the teacher's distribution over periods (amplitude spectrum; 0: off)
    period_temperature: float = 1.0  # softmax temperature of the period term
    augment: list[str] = field(default_factory=list)  # noise | mask | mixup | shift: inputs with no ground truth, teacher-labelled
    augment_weight: float = 0.0  # weight of the augmented term (0: off)
    augment_labels: str = "cached"  # cached | online: the clean window's cached forecast, or the teacher run on the input
    noise_std: float = 0.1  # augment noise: std of the Gaussian noise on the scaled inputs
    mask_share: float = 0.15  # augment mask: share of sensors whose inputs are blanked (set to the training mean)
    mixup_alpha: float = 0.4  # augment mixup: windows mixed with weight ~ Beta(alpha, alpha), targets alike
    max_shift: int = 2  # augment shift: each sensor's inputs delayed by 0..max_shift steps (readings arriving late)
    # random | teacher: the distilled student starts from the seed's weights, or from the first teacher's cut down to
    # its size (a teacher of the student's kind, reading the same inputs: docs/distillation.md)
    init: str = "random"


#: ``train`` settings that say where and how fast models train, not what they learn (the same seed gives the
#: same model on the same kernels and threads, whatever they are): a resumed run may change them and a search's
#: identity leaves them out.
PLACEMENT_TRAIN_KEYS = ("device", "threads", "workers")


@dataclass
class TrainConfig:
    """The optimisation loop."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    scheduler: str = "cosine"  # cosine | step | none
    patience: int = 6  # epochs without validation improvement before stopping
    # no early stop before this epoch: a lucky epoch while a cosine rate is still high does not end the schedule
    min_epochs: int = 0
    loss: str = "huber"  # l1 | huber | mse: loss of teachers and plain students
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | auto
    threads: int | None = None  # torch intra-op threads (default: torch's choice; with workers: the cores shared out)
    # models trained at once, one process each: a run's teachers, then its distilled and plain student (stkd.processes)
    workers: int = 1
    max_batches: int | None = None  # cap on training batches per epoch (large data)
    min_batches: int | None = None  # floor on batches per epoch: few windows are passed over several times an epoch
    node_subset: int | None = None  # teachers train each step on a sampled neighbourhood of this many nodes
    # fp32 | bf16 (the training forward under bfloat16 autocast) | auto (bf16 where it is fast: AMX, a bf16 GPU)
    precision: str = "fp32"
    time_budget: str | None = None  # per model, e.g. 10min: stop training cleanly when reached (the best epoch is kept)
    tensorboard: bool = False  # per-epoch losses (each term), lr and validation scores to RUN/tensorboard/<model>
    mlflow: str | None = None  # an MLflow tracking URI (e.g. file:./mlruns) to log the same there (extra: tracking)


@dataclass
class EvalConfig:
    """What the report measures."""

    horizons: list[int] = field(default_factory=lambda: [3, 6, 12])  # 1-indexed steps
    baselines: list[str] = field(default_factory=lambda: ["last", "seasonal", "ridge"])
    latency_repeats: int = 50


@dataclass
class EventsConfig:
    """Event labels for ``task: classify`` and how the event models learn (see docs/events.md).

    Labels are per (step, node): ``rule: threshold`` marks the steps where ``target op value`` holds,
    ``rule: bands`` gives ordered classes cut at ``edges``, ``rule: given`` reads labels (the
    simulator's incidents, a column of the long data file, or an event file). With ``within: k`` the
    label of step t looks ahead: the worst class at steps t .. t+k-1 (for a threshold: an event
    anywhere in the next k steps, t included).
    """

    rule: str = "threshold"  # threshold | bands | given
    target: str | None = None  # feature the rule reads (threshold, bands); default the first target
    op: str = "<"  # threshold comparison: < | <= | > | >=
    value: float | None = None  # threshold value, in the target's original units
    edges: list[float] = field(default_factory=list)  # bands: increasing cut points; K = len(edges) + 1 classes
    within: int = 1  # look-ahead in steps: label of step t = worst class over steps t .. t+within-1
    source: str = "simulator"  # given labels: simulator | column | file
    column: str | None = None  # given/column: the label column of the long data file (data.path)
    path: str | None = None  # given/file: CSV/parquet of (timestamp, node, label) or (start, end, node, label)
    time_column: str = "timestamp"  # given/file: timestamp column (or use start/end columns)
    node_column: str = "node"  # given/file: node id column
    label_column: str = "label"  # given/file: integer label column (0 = no event)
    classes: int | None = None  # given: number of classes K (default: largest label + 1, at least 2)
    class_weights: str | list[float] = "auto"  # auto (inverse frequency on train) | none | one weight per class
    focal_gamma: float = 0.0  # > 0: focal loss (Lin et al. 2017) instead of cross-entropy
    teacher_kind: str = "classify"  # classify (teacher trained on the labels) | forecast (a forecaster's event probabilities)
    forecast_prob: str = "gaussian"  # teacher_kind forecast: gaussian (Phi((value - forecast) / val RMSE per horizon))
    threshold_metric: str = "f1"  # binary decision threshold chosen on validation data: f1 | balanced_accuracy | accuracy
    detection_horizon: int = 1  # horizon step (1-indexed) whose alarms score incident detection


@dataclass
class RunConfig:
    """Everything needed to re-run a job; saved as ``config.yaml`` in the run directory."""

    task: str = "forecast"  # forecast | classify
    data: DataConfig = field(default_factory=DataConfig)
    teacher: list[ModelConfig] = field(default_factory=lambda: [ModelConfig(name="gwnet")])
    student: ModelConfig = field(default_factory=lambda: ModelConfig(name="stid"))
    distill: DistillConfig = field(default_factory=DistillConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    events: EventsConfig | None = None  # label rules for task: classify (see docs/events.md)


@dataclass
class TuneConfig:
    """A hyper-parameter search (``stkd tune``): its budget, where the study lives, how many processes.

    Not part of a run's config: a search trains many runs' students; its best one is written as an ordinary
    run config (``best.yaml``).
    """

    trials: int | None = 20  # trials in the whole study, those of earlier sessions included (None: until timeout)
    timeout: str | None = None  # this session's wall time, e.g. 30min: then no trial starts and running ones stop
    workers: int = 1  # processes on this machine, each running trials against the same study
    storage: str | None = None  # an optuna storage URL (default sqlite:///OUT/study.db); postgresql://... for machines
    study: str = names.TUNE_STUDY  # the study's name in the storage: the same name joins (or resumes) it
    prune_warmup: int = 2  # epochs every trial trains before the pruner may stop it
    prune_startup: int = 3  # trials that finish before the pruner stops any


def validate_tune(t: TuneConfig) -> TuneConfig:
    """Check a :class:`TuneConfig` (errors name the command-line flag)."""
    if t.trials is not None and t.trials < 1:
        raise ConfigError(f"--trials: must be >= 1, got {t.trials}")
    if t.timeout is not None:
        parse_duration(t.timeout, "--timeout")
    if t.trials is None and t.timeout is None:
        raise ConfigError("--trials / --timeout: a search needs a budget: a number of trials, a time, or both")
    if t.workers < 1:
        raise ConfigError(f"--workers: must be >= 1, got {t.workers}")
    if not t.study or not t.study.strip():
        raise ConfigError("--study: the study needs a name")
    if t.prune_warmup < 0 or t.prune_startup < 0:
        raise ConfigError(f"pruner: warm-up epochs and startup trials must be >= 0, got {t.prune_warmup} and "
                          f"{t.prune_startup}")
    return t


def parse_duration(text: str, key: str) -> float:
    """Seconds of a duration like ``90s``, ``10min``, ``1h30min`` or ``2h`` (a ConfigError naming ``key``)."""
    import pandas as pd  # a second of import time: only configs with a duration need it

    try:
        # "2d" as "2D": pandas deprecates the lower-case day unit, and a user writes days as 1d, 2d
        seconds = pd.Timedelta(re.sub(r"(?<=\d)d", "D", str(text).replace(" ", ""))).total_seconds()
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: {text!r} is not a duration like 90s, 10min or 1h30min") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{key}: must be a positive duration, got {text!r}")
    return seconds


# ------------------------------------------------------------------------ from dict
def to_dict(cfg) -> dict:
    """The plain-data form of a config (what ``config.yaml`` holds)."""
    return dataclasses.asdict(cfg)


# ------------------------------------------------------------------------ validation
CHOICES = {
    "task": names.TASKS,
    "data.source": names.SOURCES,
    "data.duplicates": names.DUPLICATE_POLICIES,
    "data.impute": names.IMPUTE_METHODS,
    "data.scaler": names.SCALERS,
    "data.scaler_scope": names.SCALER_SCOPES,
    "data.clip": names.CLIP_MODES,
    "data.graph.method": names.GRAPH_METHODS,
    "data.day_of_week": names.DAY_OF_WEEK,
    "distill.loss": names.LOSSES,
    "distill.ensemble": names.ENSEMBLES,
    "distill.teacher_scope": names.TEACHER_SCOPES,
    "distill.augment_labels": names.AUGMENT_LABELS,
    "train.loss": names.LOSSES,
    "train.scheduler": names.SCHEDULERS,
    "train.device": names.DEVICES,
    "train.precision": names.PRECISIONS,
}


def _get(cfg, dotted: str):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _check_choice(key: str, value, choices) -> None:
    """A value outside its allowed set is an error that names the key and the nearest choice."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}{hint}")


SEED_LIMIT = 2**63  # seeds lie in [0, SEED_LIMIT): offsets added to a seed (augmentation's stream, tuning trials)
# stay within the 64 bits torch.manual_seed takes, and numpy's generators take no negative seed


def _check_seed(key: str, seed: int, hint: str = "") -> None:
    """One bound for every seed of a config (``train.seed`` and a model's own ``seed``)."""
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"{key}: must be an integer from 0 to {SEED_LIMIT - 1}{hint}, got {seed}")


def _check_lr(key: str, lr: float, hint: str = "") -> None:
    """One bound for every learning rate of a config (``train.lr`` and a model's own ``lr``)."""
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"{key}: must be a finite number > 0{hint}, got {lr}")


def distinct_seeds(seeds) -> list[int]:
    """The seeds of a comparison across seeds (``--seeds``): at least one, none twice, each a valid seed."""
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"--seeds: give distinct seeds, got {out}")
    for s in out:
        _check_seed("--seeds", s)
    return out


def with_seed(cfg: RunConfig, seed: int) -> RunConfig:
    """``cfg`` trained from ``seed`` (``train.seed``): one seed of a comparison across seeds."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=int(seed)))


def validate(cfg: RunConfig) -> RunConfig:
    """Check values that types alone cannot; raise :class:`ConfigError` naming the key."""
    for key, choices in CHOICES.items():
        _check_choice(key, _get(cfg, key), choices)
    d = cfg.data
    from stkd.data.splits import check_ratios  # the one check of the shares (here at load, there at split)

    check_ratios(d.split)
    if d.clip_outliers is not None and not (d.clip_outliers > 0 and math.isfinite(d.clip_outliers)):
        raise ConfigError(f"data.clip_outliers: must be a number > 0 (k in median +- k * IQR), got {d.clip_outliers}")
    if d.history is not None:
        parse_duration(d.history, "data.history")
    if d.window.input < 1 or d.window.horizon < 1:
        raise ConfigError(f"data.window: input and horizon must be >= 1, got {d.window}")
    if d.source == "builtin":
        _check_choice("data.name", d.name, tuple(names.BUILTIN_DATASETS))
    if d.source == "sql":
        if not d.url:
            raise ConfigError("data.url: source sql needs a database URL (duckdb:///file.duckdb, duckdb://, "
                              "or postgresql://user@host:port/db)")
        if bool(d.query) == bool(d.table):
            raise ConfigError("data.query / data.table: source sql needs exactly one of them")
    elif d.source != "builtin" and not d.path:
        raise ConfigError(f"data.path: source {d.source!r} needs a path to the data file")
    if not 0.0 <= cfg.distill.alpha <= 1.0:
        raise ConfigError(f"distill.alpha: must lie in [0, 1], got {cfg.distill.alpha}")
    if cfg.distill.temperature <= 0:
        raise ConfigError(f"distill.temperature: must be > 0, got {cfg.distill.temperature}")
    for kind in cfg.distill.augment:
        _check_choice("distill.augment", kind, names.AUGMENTATIONS)
    for key in ("multiscale_weight", "period_weight", "augment_weight", "noise_std", "mixup_alpha"):
        if getattr(cfg.distill, key) < 0:
            raise ConfigError(f"distill.{key}: must be >= 0, got {getattr(cfg.distill, key)}")
    if cfg.distill.period_temperature <= 0:
        raise ConfigError(f"distill.period_temperature: must be > 0, got {cfg.distill.period_temperature}")
    if not 0.0 <= cfg.distill.mask_share <= 1.0:
        raise ConfigError(f"distill.mask_share: must lie in [0, 1], got {cfg.distill.mask_share}")
    if "shift" in cfg.distill.augment and not 1 <= cfg.distill.max_shift < d.window.input:
        raise ConfigError(f"distill.max_shift: augment shift needs 1..{d.window.input - 1} (data.window.input - 1) "
                          f"steps, got {cfg.distill.max_shift}")
    if cfg.distill.augment_weight > 0 and not cfg.distill.augment:
        raise ConfigError("distill.augment_weight > 0 needs distill.augment (noise, mask, mixup and/or shift)")
    if not cfg.teacher:
        raise ConfigError("teacher: at least one teacher model is needed")
    _check_choice("distill.init", cfg.distill.init, names.STUDENT_INITS)
    if cfg.distill.init == "teacher":
        first = cfg.teacher[0]
        if first.name != cfg.student.name:
            raise ConfigError(f"distill.init: teacher: the student starts from the first teacher's weights, so it must "
                              f"be of the student's kind; the first teacher is {first.name!r}, the student "
                              f"{cfg.student.name!r} (put a {cfg.student.name} teacher first, or use distill.init: random)")
    t = cfg.train
    for key in ("epochs", "batch_size", "patience"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key}: must be >= 1, got {getattr(t, key)}")
    if t.min_epochs < 0:
        raise ConfigError(f"train.min_epochs: must be >= 0 (0: early stopping may stop at any epoch), got {t.min_epochs}")
    _check_seed("train.seed", t.seed)
    _check_lr("train.lr", t.lr)
    if t.time_budget is not None:
        parse_duration(t.time_budget, "train.time_budget")
    if t.workers < 1:
        raise ConfigError(f"train.workers: must be >= 1 (1: one model at a time), got {t.workers}")
    for key in ("max_batches", "min_batches", "threads", "node_subset"):
        if getattr(t, key) is not None and getattr(t, key) < 1:
            raise ConfigError(f"train.{key}: must be >= 1 (or left out), got {getattr(t, key)}")
    if t.min_batches and t.max_batches and t.min_batches > t.max_batches:
        raise ConfigError(f"train.min_batches ({t.min_batches}) is more than train.max_batches ({t.max_batches}): "
                          "an epoch cannot hold both; set them equal for epochs of exactly that many batches")
    for key, value in (("train.weight_decay", t.weight_decay), ("train.grad_clip", t.grad_clip),
                       ("distill.feature_weight", cfg.distill.feature_weight),
                       ("distill.relation_weight", cfg.distill.relation_weight),
                       ("distill.margin", cfg.distill.margin)):
        if value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value}")
    for m in [*cfg.teacher, cfg.student]:
        if m.epochs is not None and m.epochs < 1:
            raise ConfigError(f"{m.name}.epochs: must be >= 1 (or left out to use train.epochs), got {m.epochs}")
        if m.seed is not None:
            _check_seed(f"{m.name}.seed", m.seed, " (or left out to use train.seed)")
        if m.lr is not None:
            _check_lr(f"{m.name}.lr", m.lr, " (or left out to use train.lr)")
    # the same model from the same seed trains to the same weights; a teacher without a seed of its own trains
    # from train.seed, so one with seed 101 repeats it when train.seed is 101
    seeded = [dataclasses.replace(m, seed=t.seed if m.seed is None else m.seed) for m in cfg.teacher]
    for i, a in enumerate(seeded):
        for j, earlier in enumerate(seeded[:i]):
            if a == earlier:
                raise ConfigError(f"teacher: teachers {j + 1} and {i + 1} ({a.name}) have the same settings and seed "
                                  f"({a.seed}; a teacher without a seed trains from train.seed), so they would train "
                                  f"to the same weights and the ensemble would hold one model twice; give each copy "
                                  f"its own seed, e.g. teacher: [{{name: {a.name}, seed: 1}}, {{name: {a.name}, seed: 2}}]")
    for b in cfg.eval.baselines:
        _check_choice("eval.baselines", b, tuple(names.BASELINES))
    if cfg.eval.latency_repeats < 1:
        raise ConfigError(f"eval.latency_repeats: must be >= 1, got {cfg.eval.latency_repeats}")
    if any(h < 1 or h > d.window.horizon for h in cfg.eval.horizons):
        raise ConfigError(f"eval.horizons: each must lie in 1..{d.window.horizon} (data.window.horizon), "
                          f"got {cfg.eval.horizons}")
    if cfg.task == "classify" and cfg.events is None:
        raise ConfigError("events: task classify needs an events section, e.g. events: {rule: threshold, "
                          "target: speed, op: '<', value: 40}; see docs/events.md")
    if cfg.events is not None:
        validate_events(cfg.events, cfg.data)
    return cfg


EVENT_CHOICES = {
    "rule": names.EVENT_RULES,
    "op": names.EVENT_OPS,
    "source": names.EVENT_LABEL_SOURCES,
    "teacher_kind": names.EVENT_TEACHER_KINDS,
    "forecast_prob": names.EVENT_FORECAST_PROBS,
    "threshold_metric": names.THRESHOLD_METRICS,
}


def validate_events(e: EventsConfig, d: DataConfig) -> EventsConfig:
    """Check an :class:`EventsConfig` on its own (the data-dependent checks run when labels are built)."""
    for key, choices in EVENT_CHOICES.items():
        _check_choice(f"events.{key}", getattr(e, key), choices)
    if e.within < 1:
        raise ConfigError(f"events.within: must be >= 1 step, got {e.within}")
    if e.detection_horizon < 1 or e.detection_horizon > d.window.horizon:
        raise ConfigError(f"events.detection_horizon: must lie in 1..{d.window.horizon} (data.window.horizon), "
                          f"got {e.detection_horizon}")
    if e.focal_gamma < 0:
        raise ConfigError(f"events.focal_gamma: must be >= 0, got {e.focal_gamma}")
    if e.rule == "threshold" and e.value is None:
        raise ConfigError("events.value: rule threshold needs a value (e.g. value: 40 with op: '<')")
    if e.rule == "bands":
        if not e.edges:
            raise ConfigError("events.edges: rule bands needs increasing cut points, e.g. edges: [35, 75, 150]")
        if any(b <= a for a, b in zip(e.edges, e.edges[1:])):
            raise ConfigError(f"events.edges: cut points must increase strictly, got {e.edges}")
    if e.rule == "given":
        if e.source == "column" and not e.column:
            raise ConfigError("events.column: given labels from a column need the column name (events.column)")
        if e.source == "column" and d.source not in names.LONG_SOURCES:
            raise ConfigError(f"events.source: column reads a column of a long data file, but data.source is "
                              f"{d.source!r}; use source: file with an event file instead")
        if e.source == "file" and not e.path:
            raise ConfigError("events.path: given labels from a file need the file's path (events.path)")
        if e.source == "simulator" and not (d.source == "builtin" and d.name == "synthetic-traffic"):
            raise ConfigError("events.source: simulator labels exist only with data builtin synthetic-traffic; "
                              "use source: file or column for other data")
        if e.classes is not None and e.classes < 2:
            raise ConfigError(f"events.classes: at least 2 classes are needed, got {e.classes}")
    if e.teacher_kind == "forecast" and e.rule == "given":
        raise ConfigError("events.teacher_kind: forecast turns forecasts into event probabilities through the "
                          "label rule, so it needs rule threshold or bands, not given")
    if isinstance(e.class_weights, str):
        if e.class_weights not in names.CLASS_WEIGHT_MODES:
            raise ConfigError(f"events.class_weights: {e.class_weights!r} is not auto, none or a list of weights")
    elif any(w < 0 for w in e.class_weights) or not any(w > 0 for w in e.class_weights):
        raise ConfigError(f"events.class_weights: weights must be >= 0 with one > 0, got {e.class_weights}")
    return e


def parse_config(raw: dict | None, where: str = "config") -> RunConfig:
    """Validate a raw mapping into a :class:`RunConfig`. A bare ``data:`` mapping is accepted too."""
    raw = dict(raw or {})
    if "teacher" in raw and isinstance(raw["teacher"], (dict, str)):
        raw["teacher"] = [raw["teacher"]]
    if isinstance(raw.get("teacher"), list):
        raw["teacher"] = [{"name": t} if isinstance(t, str) else t for t in raw["teacher"]]
    if isinstance(raw.get("student"), str):
        raw["student"] = {"name": raw["student"]}
    return validate(from_dict(RunConfig, raw, where))


def read_yaml_mapping(path: str | Path, *, missing: str, where: str, top_level: str) -> dict | None:
    """The mapping a YAML file holds (``yaml.safe_load``: no tags that build objects), or None for an empty
    file. ``missing`` names the file in the "does not exist" error, ``where`` prefixes the others and
    ``top_level`` says what the top-level mapping should hold."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{missing} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of {top_level}, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config file safely (:func:`read_yaml_mapping`)."""
    path = Path(path)
    raw = read_yaml_mapping(path, missing=f"config file {path}", where=str(path), top_level="sections")
    return parse_config(raw, where=path.name)


def dump_config(cfg: RunConfig) -> str:
    """YAML text of a config, loadable by :func:`load_config`."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
