"""The training loop: AdamW, a learning-rate schedule, gradient clipping, early stopping on the
validation error, best-checkpoint keeping, a CSV log of every epoch, and exact resume.

One loop serves teachers, plain students and distilled students: what differs is the loss function
passed in (``loss_fn(batch, outputs) -> (total, named_terms)``), which is where distillation lives.
Data-parallel training (DDP under ``torchrun``) only changes which windows each rank sees and wraps
the model; rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from stkd.checkpoint import load_weights, save_weights
from stkd.config import TrainConfig, parse_duration
from stkd.distributed import sync_from_rank0, world
from stkd.errors import ConfigError, STKDError, TrainingDiverged
from stkd.io import read_json, write_json, write_text
from stkd.machine import add_machine, bf16_is_slow, compute_facts, describe, resolve_precision, same_kernels
from stkd.progress import bar as progress_bar

log = logging.getLogger(__name__)
_WARNED_BF16: list[str] = []  # the slow-bf16 warning, once per process (not once per model)

LossFn = Callable[["object", dict], tuple[torch.Tensor, dict[str, float]]]
#: ``on_epoch(epoch, score, val) -> stop``: called after every epoch (1-indexed ``epoch``, the monitored
#: validation ``score``, lower is better, and every validation metric); a true return stops training there.
EpochCallback = Callable[[int, float, dict[str, float]], "bool | None"]


def set_seed(seed: int) -> torch.Generator:
    """Seed every RNG a run touches; return the generator that orders training windows."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available; use cpu or auto")
    return torch.device(name)


def make_scheduler(opt: torch.optim.Optimizer, kind: str, epochs: int):
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs), eta_min=opt.defaults["lr"] * 0.05)
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.3)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    epochs_run: int
    train_seconds: float
    stopped_early: bool
    stop_reason: str | None = None  # "patience" | "time budget" | "requested" (on_epoch) | None
    #: The run had finished before this call (a resume of a finished model): nothing was trained or written,
    #: so the model's saved files (and their times) are left as they are.
    was_finished: bool = False
    #: The machines it trained on (:func:`stkd.machine.compute_facts`), one per change of machine over the
    #: sessions of a resumed run: the same seed repeats the numbers only on the same kernels.
    machines: list[dict] = field(default_factory=list)


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``1 h 2 min``: durations in words for messages and the plan."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


def precision_context(precision: str, device: torch.device):
    """A context factory for the training forward: ``fp32`` does nothing; ``bf16`` autocasts matrix products
    to bfloat16 (faster where AMX units or a GPU multiply bfloat16; slower than fp32 on other CPUs; the loss,
    the optimizer and the weights stay float32); ``auto`` is one of the two for this machine
    (:func:`stkd.machine.resolve_precision`). Sparse graph products stay float32
    (:mod:`stkd.models.teachers.gwnet`)."""
    if resolve_precision(precision, device.type)[0] == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


# ----------------------------------------------------------------- resumable state
def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split optimizer state into tensors (safetensors) and plain values (JSON)."""
    sd = opt.state_dict()
    tensors, plain = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        plain["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                plain["state"][str(pid)][k] = v
    return tensors, plain


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict) -> None:
    state: dict = {}
    for pid, st in plain["state"].items():
        state[int(pid)] = dict(st)
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_last(model_dir: Path, modules: dict[str, nn.Module], opt, sched, gen: torch.Generator, info: dict) -> None:
    tensors = {f"{prefix}.{k}": v for prefix, m in modules.items() for k, v in m.state_dict().items()}
    opt_t, opt_plain = _optimizer_tensors(opt)
    tensors.update(opt_t)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.gen"] = gen.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()  # dropout on the GPU draws from this one
    save_weights(model_dir / "last.safetensors", tensors)
    write_json(model_dir / "last.json", {**info, "optimizer": opt_plain, "scheduler": sched.state_dict()})


def has_last(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a checkpoint that a resumed run continues from (:func:`save_last`)."""
    return (model_dir / "last.json").is_file()


def load_last(model_dir: Path, modules: dict[str, nn.Module], opt, sched, gen: torch.Generator) -> dict:
    fix = (f"delete last.safetensors and last.json in {model_dir} to train this model from the start, "
           "or start again with --overwrite")
    tensors = load_weights(model_dir / "last.safetensors", fix=fix)
    info = read_json(model_dir / "last.json", fix=fix)
    for prefix, m in modules.items():
        sub = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        m.load_state_dict(sub)
    _restore_optimizer(opt, tensors, info["optimizer"])
    sched.load_state_dict(info["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.gen"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return info


# ----------------------------------------------------------------------- the loop
def _write_log(path: Path, rows: list[dict]) -> None:
    """``log.csv``: one row per epoch, columns in the order they first appear. Rows may differ in columns: the
    epoch-0 row of a fine-tuned model (``validate_start``) has no loss terms, the epochs after it have one per
    term; a row without a column leaves its cell empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


@dataclass
class _Progress:
    """Where early stopping stands: the best score so far and how long it has not improved."""

    epoch: int = 0  # epochs done
    best_score: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    elapsed: float = 0.0  # seconds of training (this model), over every session of a resumed run
    log: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    stop_reason: str | None = None  # "patience" | "time budget" | "requested" | None (ran all epochs)
    finished: bool = False
    machines: list[dict] = field(default_factory=list)  # where it trained (stkd.machine), one per change


class Trainer:
    """One model's training run: :meth:`run` = resume, then per epoch :meth:`train_epoch` (batches),
    :meth:`validate` and :meth:`end_epoch` (log, checkpoint, early stopping), then :meth:`finish` (the best
    weights back into the model). See :func:`fit` for the contract."""

    def __init__(self, model: nn.Module, data, loss_fn: LossFn, validate: Callable[[nn.Module], dict[str, float]],
                 cfg: TrainConfig, model_dir: Path, *, epochs: int | None = None,
                 extra_modules: dict[str, nn.Module] | None = None, monitor: str = "mae", desc: str = "train",
                 progress: bool = True, node_subset: int | None = None, tracker=None,
                 on_epoch: EpochCallback | None = None, validate_start: bool = False) -> None:
        self.validate_start = validate_start
        self.model, self.data, self.loss_fn, self.validate_fn = model, data, loss_fn, validate
        self.cfg, self.model_dir, self.monitor, self.desc = cfg, Path(model_dir), monitor, desc
        self.rank, self.world_size = world()
        self.device = resolve_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.set_flush_denormal(True)  # tiny weights late in training must not slow CPU kernels down
        self.precision, why = resolve_precision(cfg.precision, self.device.type)  # auto: this machine's choice
        if self.precision == "bf16" and bf16_is_slow(self.device.type) and self.rank == 0 and not _WARNED_BF16:
            _WARNED_BF16.append(why)  # once per process: every model of a run trains at the same precision
            log.warning("%s: %s. Set train.precision: auto or fp32 to train faster", desc, why)
        # after the threads are set: they fix the numbers as much as the kernels do (and so does the precision)
        self.machine = {**compute_facts(), "precision": self.precision}
        self.gen = set_seed(cfg.seed)
        self.epochs = epochs or cfg.epochs
        self.modules = {"model": model, **dict(extra_modules or {})}
        for m in self.modules.values():
            m.to(self.device)
        self.sample_nodes = _node_sampler(model, data, node_subset, self.gen, desc)
        self.params = [p for m in self.modules.values() for p in m.parameters() if p.requires_grad]
        if not self.params:
            raise STKDError(f"{desc}: the model has no trainable parameters")
        self.train_model = self._wrap_ddp(model)
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = make_scheduler(self.opt, cfg.scheduler, self.epochs)
        self.budget = parse_duration(cfg.time_budget, "train.time_budget") if cfg.time_budget else None
        self.autocast = precision_context(self.precision, self.device)
        self.state = _Progress()
        self.best_state = self._snapshot()
        self.progress = progress and self.rank == 0
        self.tracker = tracker
        self.on_epoch = on_epoch
        self.batches_per_epoch = num_train_batches(data, cfg)

    # ------------------------------------------------------------------ setup
    def _wrap_ddp(self, model: nn.Module) -> nn.Module:
        if self.world_size <= 1:
            return model
        # Graph supports are sparse buffers built from the data on every rank; DDP cannot broadcast
        # sparse tensors, and they need no syncing, so DDP is told to leave them alone.
        sparse = [n for n, b in model.named_buffers() if b.layout != torch.strided]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, sparse)
        return nn.parallel.DistributedDataParallel(
            model, device_ids=None if self.device.type == "cpu" else [self.device],
            find_unused_parameters=True)  # some models return parts (e.g. hidden) no loss uses

    def _snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        return {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in self.modules.items()}

    def resume(self) -> None:
        """Continue from ``last.safetensors`` + ``last.json``: weights, optimizer, schedule, random state,
        early-stopping state and log, so the resumed run ends exactly as an uninterrupted one."""
        md, st = self.model_dir, self.state
        try:
            info = load_last(md, self.modules, self.opt, self.sched, self.gen)
        except STKDError:  # a damaged checkpoint file: its own message says which and what to do
            raise
        except (RuntimeError, ValueError, KeyError) as e:
            raise STKDError(f"{self.desc}: the checkpoint in {md} does not match this model ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]}); was the config changed? Resume with the same "
                            "config, or start again with --overwrite") from None
        st.epoch, st.best_epoch, st.bad_epochs = info["epoch"] + 1, info["best_epoch"], info["bad_epochs"]
        st.best_score = math.inf if info["best_score"] is None else info["best_score"]
        st.elapsed, st.log = info["elapsed"], info["log"]
        st.stopped_early, st.stop_reason = bool(info.get("stopped_early")), info.get("stop_reason")
        st.machines = list(info.get("machines") or [])  # absent from checkpoints written before it was kept
        if (md / "best.safetensors").is_file():
            tensors = load_weights(md / "best.safetensors",
                                   fix=f"delete it with last.safetensors and last.json in {md} to train this "
                                       "model from the start, or start again with --overwrite")
            for k in self.modules:
                self.best_state[k] = {n[len(k) + 1:]: v for n, v in tensors.items() if n.startswith(k + ".")}
        if info.get("finished") or self.out_of_patience():
            # nothing left to train (a finished run, or one killed after it decided to stop early)
            st.stopped_early = st.stopped_early or self.out_of_patience()
            st.stop_reason = st.stop_reason or ("patience" if st.stopped_early else None)
            st.finished = True

    def out_of_patience(self) -> bool:
        """Whether early stopping ends training now: ``train.patience`` epochs without a better validation score,
        and at least ``train.min_epochs`` epochs run (Keras's ``start_from_epoch``, Lightning's ``min_epochs``):
        under a cosine schedule the rate is still high early on, and one lucky epoch there would otherwise stop
        the model before the low-rate epochs where it gains most."""
        st = self.state
        return st.bad_epochs >= self.cfg.patience and st.epoch >= self.cfg.min_epochs

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int, bar) -> tuple[float, dict[str, float], bool]:
        """One pass over the training batches: ``(mean loss, mean of each named loss term, out of time)``."""
        for m in self.modules.values():
            m.train()
        terms_sum: dict[str, float]
        total, count, terms_sum = 0.0, 0, {}
        t_start = time.perf_counter() - self.state.elapsed
        out_of_time = False
        # cut here, between steps: a thread that cut them ahead slowed the steps down on a CPU (its gathers ran
        # a second OpenMP team beside the step's) and gained nothing measurable (benchmarks/batch_stream.py)
        batches = train_batches(self.data, self.cfg, self.gen, self.rank, self.world_size, self.sample_nodes)
        for batch in batches:
            loss, terms = self.step(batch.to(self.device), epoch)
            total += loss
            count += 1
            for k, v in terms.items():
                terms_sum[k] = terms_sum.get(k, 0.0) + v
            bar.update(1)
            if self.budget is not None and time.perf_counter() - t_start >= self.budget:
                out_of_time = True  # stop cleanly after this batch; it still validates and may be kept
                break
        self.sched.step()
        n = max(count, 1)
        return total / n, {k: v / n for k, v in terms_sum.items()}, out_of_time

    def step(self, batch, epoch: int) -> tuple[float, dict[str, float]]:
        """Forward (under ``train.precision``), loss, backward, clipping and the optimizer step."""
        if self.sample_nodes is not None:
            self.model.set_node_subset(batch.nodes)  # type: ignore[operator]
        with self.autocast():
            out = self.train_model(batch.x, batch.tod, batch.dow)
        out = {k: v.float() if torch.is_tensor(v) else v for k, v in out.items()}  # the loss in float32
        loss, terms = self.loss_fn(batch, out)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"{self.desc}: the loss became {loss.item()} at epoch {epoch + 1}; "
                            "try a lower train.lr or check the data for extreme values")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip and self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        return float(loss.detach()), terms

    def validate(self, train_loss: float) -> tuple[dict[str, float], float]:
        """Validation scores on the whole network and the monitored score (lower is better)."""
        if self.sample_nodes is not None:
            self.model.set_node_subset(None)  # type: ignore[operator]  # validate (and keep weights) on the whole network
        for m in self.modules.values():
            sync_from_rank0(m)  # batch-norm statistics are per rank: validate rank 0's model everywhere
            m.eval()
        val = self.validate_fn(self.model)
        score = float(val.get(self.monitor, math.nan))
        if not any(isinstance(v, (int, float)) and math.isfinite(v) for v in val.values()):
            # nothing to validate on (a val share of 0, or no observed target in it): follow the training
            # loss, or early stopping would stop after `patience` epochs and keep the untrained weights
            score = train_loss
        return val, score

    def end_epoch(self, epoch: int, train_loss: float, terms: dict[str, float], val: dict, score: float,
                  seconds: float) -> None:
        """Log the epoch, keep the best weights, checkpoint (rank 0) and update early stopping."""
        st = self.state
        st.elapsed += seconds
        st.epoch = epoch + 1
        row = {"epoch": epoch + 1, "train_loss": train_loss,
               **{f"loss_{k}": v for k, v in terms.items() if len(terms) > 1},
               **{f"val_{k}": v for k, v in val.items()}, "lr": self.opt.param_groups[0]["lr"], "seconds": seconds}
        st.log.append(row)
        improved = math.isfinite(score) and score < st.best_score - 1e-9
        if improved:
            st.best_score, st.best_epoch, st.bad_epochs = score, epoch + 1, 0
            self.best_state = self._snapshot()
        else:
            st.bad_epochs += 1
        if self.rank == 0:
            _write_log(self.model_dir / "log.csv", st.log)
            if improved:
                save_weights(self.model_dir / "best.safetensors",
                             {f"{k}.{n}": t for k, sd in self.best_state.items() for n, t in sd.items()})
            self.checkpoint()
            if self.tracker is not None:
                self.tracker.log_epoch(self.desc, row)

    def checkpoint(self) -> None:
        st = self.state
        save_last(self.model_dir, self.modules, self.opt, self.sched, self.gen,
                  {"epoch": st.epoch - 1, "best_score": st.best_score if math.isfinite(st.best_score) else None,
                   "best_epoch": st.best_epoch, "bad_epochs": st.bad_epochs, "elapsed": st.elapsed, "log": st.log,
                   "stopped_early": st.stopped_early, "stop_reason": st.stop_reason, "finished": st.finished,
                   "machines": st.machines})

    def start_epoch(self) -> None:
        """Score the starting weights as epoch 0: the weights to beat. Fine-tuning a model trained
        elsewhere keeps it when no epoch of training improves its validation score, so it never returns
        weights worse on validation than those it was given. Its log row has no training loss (NaN).
        Without a validation score (nothing to validate on) there is nothing to compare: no row."""
        val, score = self.validate(math.nan)
        if math.isfinite(score):
            self.end_epoch(-1, math.nan, {}, val, score, 0.0)

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False) -> FitResult:
        st = self.state
        if resume and has_last(self.model_dir):
            self.resume()
        was_finished = st.finished
        if not st.finished:
            self.note_machine()
        if self.validate_start and not st.log:
            self.start_epoch()
        start = st.epoch if not st.finished else self.epochs
        total = self.epochs * self.batches_per_epoch
        bar = progress_bar(total=total, initial=min(start, self.epochs) * self.batches_per_epoch, desc=self.desc,
                           unit="batch", progress=self.progress)
        for epoch in range(start, self.epochs):
            t0 = time.perf_counter()
            train_loss, terms, out_of_time = self.train_epoch(epoch, bar)
            val, score = self.validate(train_loss)
            self.end_epoch(epoch, train_loss, terms, val, score, time.perf_counter() - t0)
            bar.set_postfix(epoch=f"{epoch + 1}/{self.epochs}", loss=f"{train_loss:.4f}",
                            **{f"val_{self.monitor}": f"{score:.4f}"})
            if self.on_epoch is not None and self.on_epoch(epoch + 1, score, val):
                st.stopped_early, st.stop_reason = True, "requested"
                break
            if self.out_of_patience():
                st.stopped_early, st.stop_reason = True, "patience"
                break
            if out_of_time:
                st.stop_reason = "time budget"
                log.warning("%s: stopped after %s of training (train.time_budget %s), at epoch %d of %d; the best "
                            "epoch so far (%d) is kept", self.desc, format_duration(st.elapsed),
                            self.cfg.time_budget, epoch + 1, self.epochs, st.best_epoch)
                break
        bar.close()
        return self.finish(was_finished=was_finished)

    def note_machine(self) -> None:
        """Add this machine to the ones the model trained on; say so where a resumed model goes on with other
        kernels than it started with (its numbers then differ from an uninterrupted run's)."""
        st = self.state
        if self.rank == 0 and st.machines and not same_kernels(st.machines[-1], self.machine):
            log.warning("%s: resumed on %s; its epochs so far ran on %s. Other CPU kernels round differently: "
                        "the model will not end exactly where an uninterrupted run would", self.desc,
                        describe(self.machine), describe(st.machines[-1]))
        st.machines = add_machine(st.machines, self.machine)

    def finish(self, *, was_finished: bool = False) -> FitResult:
        """Mark the run finished (a resume trains nothing more) and put the best weights in the model.
        ``was_finished``: it was already (a resumed finished model); ``last.json`` is then left untouched,
        so that its time still says when the model finished training."""
        st = self.state
        st.finished = True
        if self.rank == 0 and not was_finished and (self.model_dir / "last.json").is_file():
            info = read_json(self.model_dir / "last.json")
            info.update(finished=True, stopped_early=st.stopped_early, stop_reason=st.stop_reason)
            write_json(self.model_dir / "last.json", info)
        for k, m in self.modules.items():
            m.load_state_dict(self.best_state[k])
            sync_from_rank0(m)  # every rank holds the model rank 0 saved (its soft labels are the cached ones)
            m.eval()
        return FitResult(best_epoch=st.best_epoch, best_score=st.best_score, epochs_run=st.epoch,
                         train_seconds=st.elapsed, stopped_early=st.stopped_early, stop_reason=st.stop_reason,
                         was_finished=was_finished, machines=list(st.machines))


def fit(
    model: nn.Module,
    data,
    loss_fn: LossFn,
    validate: Callable[[nn.Module], dict[str, float]],
    cfg: TrainConfig,
    model_dir: Path,
    *,
    epochs: int | None = None,
    extra_modules: dict[str, nn.Module] | None = None,
    resume: bool = False,
    monitor: str = "mae",
    desc: str = "train",
    progress: bool = True,
    node_subset: int | None = None,
    tracker=None,
    on_epoch: EpochCallback | None = None,
    validate_start: bool = False,
) -> FitResult:
    """Train ``model`` on ``data``'s train windows and keep the weights with the best validation score.

    ``validate(model)`` returns metrics on the validation split (lower ``monitor`` is better).
    ``extra_modules`` (e.g. a hint projection) are trained alongside the model and checkpointed with it.
    ``node_subset=K`` trains every step on the breadth-first neighbourhood of K nodes around a random
    sensor (:func:`stkd.data.graph.neighbourhood_sample`) and validates on the whole network: the
    way to train a graph teacher whose full-network step does not fit in memory. Only models without
    per-node weights support it (``model.supports_node_subsets()``).
    ``cfg.precision`` bf16 (or auto where bf16 is fast) runs the training forward under bfloat16 autocast (the
    loss and the weights stay float32); ``cfg.time_budget`` stops the model cleanly once its training time reaches it.
    ``tracker`` (:mod:`stkd.tracking`) receives every epoch's log row (losses per term, lr, validation).
    ``on_epoch(epoch, score, val)`` sees every epoch's monitored validation score once the epoch is logged
    and checkpointed; returning true stops training there, cleanly (the best epoch so far is kept). It is
    how a caller steers training from outside without the loop knowing it: a hyper-parameter search
    reports each epoch to its pruner and stops a trial the pruner gives up on (:mod:`stkd.tuning`).
    ``validate_start`` scores the weights ``model`` starts with as epoch 0 of the log (fine-tuning): if
    no epoch beats them, they are the ones kept (``best_epoch`` 0).
    After ``fit`` returns, ``model`` holds the best weights (also in ``model_dir/best.safetensors``).
    """
    trainer = Trainer(model, data, loss_fn, validate, cfg, model_dir, epochs=epochs, extra_modules=extra_modules,
                      monitor=monitor, desc=desc, progress=progress, node_subset=node_subset, tracker=tracker,
                      on_epoch=on_epoch, validate_start=validate_start)
    return trainer.run(resume=resume)


def _node_sampler(model: nn.Module, data, k: int | None, gen: torch.Generator, desc: str):
    """``() -> [K] node indices`` for node-subset training, or None when ``k`` is unset (or >= N).

    The draws come from ``gen`` (checkpointed with the run), so a resumed run samples the same subsets
    and every DDP rank (same seed) trains on the same sub-graph."""
    from stkd.data.graph import neighbourhood_sample
    from stkd.models.base import uses_node_subsets

    if not uses_node_subsets(model, k, desc):  # type: ignore[arg-type]
        return None
    adjacency = data.data.adjacency
    if adjacency is None:
        raise ConfigError(f"{desc}: train.node_subset needs a graph to sample neighbourhoods from "
                          "(data.graph, e.g. method: knn)")

    assert k is not None  # uses_node_subsets is False without k

    def sample() -> np.ndarray:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        return neighbourhood_sample(adjacency, k, np.random.default_rng(seed))

    return sample


def num_train_batches(data, cfg: TrainConfig) -> int:
    """Training batches per epoch: whole batches of ``train.batch_size`` (at least one), at least
    ``train.min_batches`` (an epoch then passes over few windows several times) and at most
    ``train.max_batches``."""
    n = len(data.starts["train"])
    n_batches = max(n // cfg.batch_size if n >= cfg.batch_size else 1, cfg.min_batches or 1)
    return min(n_batches, cfg.max_batches) if cfg.max_batches else n_batches


def train_batches(data, cfg: TrainConfig, gen: torch.Generator, rank: int, world_size: int,
                  sample_nodes=None) -> Iterable:
    """The train windows in a seeded random order; under DDP each rank takes its own share of every
    global batch (global batch = cfg.batch_size), so 1 and N processes see the same windows per step.
    With ``sample_nodes`` every batch is cut to a freshly sampled node subset. Where an epoch holds more
    batches than one pass over the windows (``train.min_batches``), the passes follow one another, each in
    its own random order."""
    starts = torch.as_tensor(data.starts["train"])
    bs = cfg.batch_size
    n_batches = num_train_batches(data, cfg)
    passes = max(1, -(-n_batches * bs // len(starts))) if cfg.min_batches else 1  # ceil: windows for every batch
    order = torch.cat([starts[torch.randperm(len(starts), generator=gen)] for _ in range(passes)])
    for b in range(n_batches):
        chunk = order[b * bs:(b + 1) * bs]
        if world_size > 1:
            chunk = chunk[rank::world_size]
        yield data.batch(chunk.numpy(), nodes=None if sample_nodes is None else sample_nodes())
