"""Experiment tracking: every epoch's log row (train loss, each distillation term, lr, validation
scores) to TensorBoard and/or MLflow, next to the run's own ``models/<name>/log.csv``.

Off by default. ``train.tensorboard: true`` writes event files to ``RUN/tensorboard/<model>/``
(``tensorboard --logdir RUN/tensorboard``); ``train.mlflow: <tracking uri>`` (e.g. ``file:./mlruns``,
``sqlite:///mlflow.db`` or ``http://host:5000``; a ``file:`` URI opts in to MLflow 3's file store) logs one MLflow run per model, in an experiment named after the run folder,
with the config as params. Both need the ``tracking`` extra (``pip install "stkd[tracking]"``).

Scalars are named as the columns of ``log.csv`` (``train_loss``, ``loss_hard``, ``loss_soft``, ...,
``lr``, ``val_mae``, ...), stepped by epoch (1-indexed); values that are not finite are left out.
Only rank 0 tracks (:func:`stkd.steps.train_model` opens a tracker there alone).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Self

from stkd.config import RunConfig, to_dict
from stkd.errors import ConfigError

MAX_PARAM_CHARS = 500  # an MLflow param value is short; long lists (node ids) are cut with an ellipsis


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's numbers worth plotting: everything but the epoch itself, finite values only."""
    out = {}
    for k, v in row.items():
        if k == "epoch" or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


def flat_params(cfg: RunConfig) -> dict[str, str]:
    """The config as MLflow params: dotted keys (``train.lr``), values as short strings."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
            return
        text = str(value)
        out[prefix] = text if len(text) <= MAX_PARAM_CHARS else text[:MAX_PARAM_CHARS - 3] + "..."

    walk("", to_dict(cfg))
    return out


class _TensorBoard:
    def __init__(self, log_dir: Path) -> None:
        try:  # an optional extra: imported only when asked for
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard needs the tensorboard package: pip install \"stkd[tracking]\"") \
                from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, epoch: int, scalars: dict[str, float]) -> None:
        for k, v in scalars.items():
            self.writer.add_scalar(k, v, global_step=epoch)
        self.writer.flush()

    def close(self, ok: bool) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, uri: str, experiment: str, run_name: str, params: dict[str, str],
                 tags: dict[str, str]) -> None:
        if uri.startswith("file:"):
            # MLflow 3 refuses its file store unless opted in; naming a file: URI in train.mlflow is that
            # opt-in (a database or server URI is used as it is)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError("train.mlflow needs the mlflow package: pip install \"stkd[tracking]\"") from None
        try:
            self.client = MlflowClient(tracking_uri=uri)
            exp = self.client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)
            self.run_id = self.client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
            items = [Param(k, v) for k, v in params.items()]
            for i in range(0, len(items), 100):  # MLflow takes at most 100 params a call
                self.client.log_batch(self.run_id, params=items[i:i + 100])
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - any backend failure is a config problem of train.mlflow
            raise ConfigError(f"train.mlflow {uri!r}: cannot log there ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None

    def log(self, epoch: int, scalars: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, epoch) for k, v in scalars.items()])

    def close(self, ok: bool) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if ok else "FAILED")


class Tracker:
    """One model's tracking sinks; :meth:`log_epoch` is what :func:`stkd.train.fit` calls each epoch.
    Use as a context manager (the MLflow run ends FAILED when training raises)."""

    def __init__(self, sinks: list) -> None:
        self.sinks = sinks

    def log_epoch(self, model_desc: str, row: dict[str, Any]) -> None:
        scalars = _scalars(row)
        for s in self.sinks:
            s.log(int(row["epoch"]), scalars)

    def close(self, ok: bool = True) -> None:
        for s in self.sinks:
            s.close(ok)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def open_tracker(cfg: RunConfig, run_dir: Path, label: str, role: str) -> Tracker | None:
    """The tracker of model ``label`` in ``run_dir`` as ``cfg.train`` asks, or None when tracking is off."""
    sinks: list = []
    run_dir = Path(run_dir)
    if cfg.train.tensorboard:
        sinks.append(_TensorBoard(run_dir / "tensorboard" / label))
    if cfg.train.mlflow:
        sinks.append(_MLflow(cfg.train.mlflow, experiment=run_dir.resolve().name or "stkd", run_name=label,
                             params=flat_params(cfg),
                             tags={"stkd.role": role, "stkd.run_dir": str(run_dir.resolve())}))
    return Tracker(sinks) if sinks else None
