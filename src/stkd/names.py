"""The allowed values every part of stkd reads: one list per concept, in one place.

Config validation, the loaders, the CLI, the pipeline and the deploy path all take their choices from
here, so adding a data source, a builtin data set, a baseline or a loss is one edit. This module
imports nothing (no torch, pandas or scikit-learn): ``stkd --help`` reads it.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------ tasks
TASKS = ("forecast", "classify")

# ------------------------------------------------------------------------------------- data
#: Builtin data sets (``data: {source: builtin, name: ...}``), each with a one-line description.
BUILTIN_DATASETS: dict[str, str] = {
    "akl-pedestrians": "hourly pedestrian counts, 21 sensors in central Auckland, 2019-2025 (CC BY 4.0)",
    "los-loop": "5-minute traffic speeds, 207 Los Angeles loop detectors, 7 days of March 2012 (MIT)",
    "synthetic-traffic": "a seeded road-network speed simulator with labelled incidents",
}
DEFAULT_BUILTIN = "akl-pedestrians"
#: Data sources that read a file (``data.path``), with a one-line description each.
FILE_SOURCES: dict[str, str] = {
    "csv-wide": "one column per sensor, one row per step",
    "csv-long": "records of (time, node, value columns...)",
    "parquet-long": "the same records in Parquet",
    "metr-la-h5": "the METR-LA / PEMS-BAY HDF5 frame",
    "pems-npz": "the PEMS03/04/07/08 npz array [T, N, F]",
}
#: Database sources (``data: {source: sql, url: ..., query: ... | table: ...}``): URL schemes they take.
SQL_SCHEMES: dict[str, str] = {
    "duckdb": "DuckDB, embedded: duckdb:///file.duckdb, or duckdb:// in memory (a query over Parquet/CSV files)",
    "postgresql": "PostgreSQL server: postgresql://user:password@host:port/database (psycopg 3)",
}
SOURCES = (*FILE_SOURCES, "sql", "builtin")
LONG_SOURCES = ("csv-long", "parquet-long")  # sources whose records carry extra columns (labels, covariates)
DUPLICATE_POLICIES = ("error", "mean", "first", "last")  # what to do with repeated timestamps
IMPUTE_METHODS = ("ffill", "seasonal", "none")
SCALERS = ("zscore", "minmax")
SCALER_SCOPES = ("node", "global")
#: data.clip: forecasts kept in the target's valid range (auto: not below 0 when the train targets never are)
CLIP_MODES = ("auto", "nonnegative", "none")
GRAPH_METHODS = ("auto", "file", "gaussian", "knn", "none")
DAY_OF_WEEK = ("auto", "on", "off")  # day-of-week embeddings: auto = when training holds every weekday
SPLITS = ("train", "val", "test")
#: Column names recognised, case-insensitively, as the timestamp / node id / coordinates of a file.
TIME_COLUMNS = ("timestamp", "time", "datetime", "date_time", "date", "ts")
NODE_COLUMNS = ("node", "sensor_id", "node_id", "sensor", "station", "station_id", "id")
LAT_COLUMNS = ("latitude", "lat")
LON_COLUMNS = ("longitude", "lon", "lng", "long")

# --------------------------------------------------------------------------------- training
LOSSES = ("l1", "huber", "mse")
SCHEDULERS = ("cosine", "step", "none")
DEVICES = ("cpu", "cuda", "auto")
#: ``auto``: bf16 where bfloat16 matrix products are fast (AMX units, a bf16 GPU), else fp32
#: (:func:`stkd.machine.resolve_precision`)
PRECISIONS = ("fp32", "bf16", "auto")
ENSEMBLES = ("mean", "weighted")
#: Input augmentations a distilled student also learns from, with the teacher's soft labels as targets.
AUGMENTATIONS = ("noise", "mask", "mixup", "shift")
# where an augmented input's target comes from (distill.augment_labels): the cached forecast of the clean
# window, or the teacher run on the augmented input itself (consistent teaching)
AUGMENT_LABELS = ("cached", "online")
# where a sensor's forecast from the teacher counts (distill.teacher_scope): everywhere, or only in windows
# whose input of that sensor was observed at every step (elsewhere the teacher forecast from imputed inputs)
TEACHER_SCOPES = ("all", "observed-inputs")
# where a distilled student's weights start (distill.init): the seed's random draw, or the first teacher's weights
# cut down to the student's size (a student of the teacher's own kind: stkd.models.students.stid_shrink)
STUDENT_INITS = ("random", "teacher")

# ------------------------------------------------------------------------------- evaluation
#: Forecast baselines: config name -> the name of its row in metrics.json and the report.
BASELINES: dict[str, str] = {"last": "last_value", "seasonal": "seasonal_avg", "ridge": "ridge"}
#: Roles of the models of a run, in report order (``teacher_ensemble``: the row of several teachers' (weighted)
#: mean, what a distilled student learns from; scored from their caches, not a model of its own).
ROLES = ("teacher", "teacher_ensemble", "student_kd", "student_plain", "baseline")
#: The name of that row in metrics.json and the report.
TEACHER_ENSEMBLE = "teachers_ensemble"
ROLE_ORDER = {role: i for i, role in enumerate(ROLES)}
#: The students' roles: distilled, and the same student trained alone (on a tie of validation scores the
#: distilled one is served first).
STUDENT_ROLES = ("student_kd", "student_plain")
#: How closely a student follows its teacher on the test split (a student's ``to_teacher`` in metrics.json):
#: metric -> whether lower is nearer. ``mae``: a forecaster's mean absolute difference to the teacher's forecast
#: where targets are observed, in the data's units; ``agreement``: the share of scored targets where an event
#: student decides the class the teacher decides, each at its own threshold (its ``probability_gap`` beside it: the
#: mean total-variation distance of their class probabilities, :func:`stkd.metrics.probability_gap`).
TO_TEACHER_METRICS: dict[str, bool] = {"mae": True, "agreement": False}
#: ``stkd transfer``: the ways to forecast a place with little history, scored side by side on its test split
#: (the student alone; the source teacher as it is; fine-tuned; a student distilled from either).
TRANSFER_ROUTES = ("target_only", "source_zero_shot", "finetuned", "kd_source", "kd_finetuned")

# ----------------------------------------------------------------------------------- events
EVENT_RULES = ("threshold", "bands", "given")
EVENT_OPS = ("<", "<=", ">", ">=")
EVENT_LABEL_SOURCES = ("simulator", "column", "file")
EVENT_TEACHER_KINDS = ("classify", "forecast")
EVENT_FORECAST_PROBS = ("gaussian",)
THRESHOLD_METRICS = ("f1", "balanced_accuracy", "accuracy")
CLASS_WEIGHT_MODES = ("auto", "none")

# ----------------------------------------------------------------------------------- tuning
#: What `stkd tune` searches (keys of a `--space` file), with a one-line description each. ``student.width``
#: and ``student.depth`` mean the student's own parameters (stid: embed/node/tod/dow dims and layers; mlp:
#: hidden widths and their count); a linear student has neither.
TUNE_PARAMS: dict[str, str] = {
    "distill.alpha": "weight of the ground truth (1 - alpha goes to the teacher)",
    "distill.loss": "distillation loss (forecasts)",
    "distill.temperature": "softmax temperature of the soft labels (events)",
    "train.lr": "learning rate",
    "train.weight_decay": "AdamW weight decay",
    "student.width": "student width (stid: each embedding's size; mlp: hidden layer width)",
    "student.depth": "student depth (stid: encoder layers; mlp: hidden layers)",
    "student.dropout": "student dropout",
}
#: `stkd tune`'s study storage when --storage is not given: a SQLite file in the output folder.
TUNE_STORAGE_FILE = "study.db"
TUNE_STUDY = "stkd-tune"  # default study name (--study)

# ----------------------------------------------------------------------------------- deploy
EXPORT_FORMATS = ("onnx", "torchscript")
BACKENDS = ("torch", "onnx", "torchscript")
SERVE_BACKENDS = ("torch", "onnx")  # `stkd serve --backend` (an exported folder serves with its own)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")  # `stkd serve --log-level` (uvicorn's)
#: `stkd serve --sync`: when a post is acknowledged (SQLite's synchronous setting of the state file):
#: full = on disk (survives a machine crash), normal = in SQLite's log (survives a server crash).
STATE_SYNC_MODES = ("full", "normal")
#: `stkd serve --max-clock-skew` default: how far ahead of the server's clock a posted timestamp may be.
MAX_CLOCK_SKEW = "1h"
#: File suffix -> table format of ``stkd predict --out``.
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
