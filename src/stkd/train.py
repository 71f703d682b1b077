"""The training loop: AdamW, a learning-rate schedule, gradient clipping, early stopping on the
validation error, best-checkpoint keeping, a CSV log of every epoch, and exact resume.

One loop serves teachers, plain students and distilled students: what differs is the loss function
passed in (``loss_fn(batch, outputs) -> (total, named_terms)``), which is where distillation lives.
Data-parallel training (DDP under ``torchrun``) only changes which windows each rank sees and wraps
the model; rank 0 alone writes files.
"""

from __future__ import annotations

import csv
import io
import math
import queue
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from stkd.checkpoint import load_weights, save_weights
from stkd.config import TrainConfig
from stkd.distributed import sync_from_rank0, world
from stkd.errors import ConfigError, STKDError
from stkd.io import read_json, write_json, write_text

LossFn = Callable[["object", dict], tuple[torch.Tensor, dict[str, float]]]


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


def load_last(model_dir: Path, modules: dict[str, nn.Module], opt, sched, gen: torch.Generator) -> dict:
    tensors = load_weights(model_dir / "last.safetensors")
    info = read_json(model_dir / "last.json")
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
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


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
) -> FitResult:
    """Train ``model`` on ``data``'s train windows and keep the weights with the best validation score.

    ``validate(model)`` returns metrics on the validation split (lower ``monitor`` is better).
    ``extra_modules`` (e.g. a hint projection) are trained alongside the model and checkpointed with it.
    ``node_subset=K`` trains every step on the breadth-first neighbourhood of K nodes around a random
    sensor (:func:`stkd.data.graph.neighbourhood_sample`) and validates on the whole network: the
    way to train a graph teacher whose full-network step does not fit in memory. Only models without
    per-node weights support it (``model.supports_node_subsets()``).
    The best weights are written to ``model_dir/model.safetensors`` by the caller-visible
    ``best.safetensors`` contract: after ``fit`` returns, ``model`` holds the best weights.
    """
    from tqdm.auto import tqdm

    model_dir = Path(model_dir)
    rank, world_size = world()
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # tiny weights late in training must not slow CPU kernels down
    gen = set_seed(cfg.seed)
    epochs = epochs or cfg.epochs
    extra_modules = dict(extra_modules or {})
    model.to(device)
    for m in extra_modules.values():
        m.to(device)
    modules = {"model": model, **extra_modules}
    sample_nodes = _node_sampler(model, data, node_subset, gen, desc)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    if not params:
        raise STKDError(f"{desc}: the model has no trainable parameters")
    train_model: nn.Module = model
    if world_size > 1:
        # Graph supports are sparse buffers built from the data on every rank; DDP cannot broadcast
        # sparse tensors, and they need no syncing, so DDP is told to leave them alone.
        sparse = [n for n, b in model.named_buffers() if b.layout != torch.strided]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, sparse)
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=None if device.type == "cpu" else [device],
            find_unused_parameters=True)  # some models return parts (e.g. hidden) no loss uses
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = make_scheduler(opt, cfg.scheduler, epochs)

    log_rows: list[dict] = []
    start_epoch, best_score, best_epoch, bad_epochs, elapsed = 0, math.inf, -1, 0, 0.0
    stopped_early, epochs_done = False, None
    best_state = {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in modules.items()}
    if resume and (model_dir / "last.json").is_file():
        try:
            info = load_last(model_dir, modules, opt, sched, gen)
        except (RuntimeError, ValueError, KeyError) as e:
            raise STKDError(f"{desc}: the checkpoint in {model_dir} does not match this model ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]}); was the config changed? Resume with the same "
                            "config, or start again with --overwrite") from None
        start_epoch, best_score, best_epoch = info["epoch"] + 1, info["best_score"], info["best_epoch"]
        bad_epochs, elapsed, log_rows = info["bad_epochs"], info["elapsed"], info["log"]
        if (model_dir / "best.safetensors").is_file():
            tensors = load_weights(model_dir / "best.safetensors")
            for k in modules:
                best_state[k] = {n[len(k) + 1:]: v for n, v in tensors.items() if n.startswith(k + ".")}
        if best_score is None:
            best_score = math.inf
        stopped_early = bool(info.get("stopped_early"))
        if info.get("finished") or bad_epochs >= cfg.patience:
            # nothing left to train (a finished run, or one killed after it decided to stop early):
            # fall through to loading the best weights
            stopped_early = stopped_early or bad_epochs >= cfg.patience
            start_epoch = max(start_epoch, epochs)
            epochs_done = info["epoch"] + 1

    bar = tqdm(range(start_epoch, epochs), desc=desc, disable=not (progress and rank == 0), leave=False,
               initial=start_epoch, total=epochs)
    epoch = start_epoch - 1
    for epoch in bar:
        t0 = time.perf_counter()
        for m in modules.values():
            m.train()
        total, count = 0.0, 0
        for batch in prefetch(train_batches(data, cfg, gen, rank, world_size, sample_nodes)):
            batch = batch.to(device)
            if sample_nodes is not None:
                model.set_node_subset(batch.nodes)
            out = train_model(batch.x, batch.tod, batch.dow)
            loss, _terms = loss_fn(batch, out)
            if not torch.isfinite(loss):
                raise STKDError(f"{desc}: the loss became {loss.item()} at epoch {epoch + 1}; "
                                "try a lower train.lr or check the data for extreme values")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip and cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            total += float(loss.detach())
            count += 1
        sched.step()
        if sample_nodes is not None:
            model.set_node_subset(None)  # validate (and keep weights) on the whole network
        for m in modules.values():
            sync_from_rank0(m)  # batch-norm statistics are per rank: validate rank 0's model everywhere
            m.eval()
        val = validate(model)
        score = float(val.get(monitor, math.nan))
        if not any(isinstance(v, (int, float)) and math.isfinite(v) for v in val.values()):
            # nothing to validate on (a val share of 0, or no observed target in it): follow the training
            # loss, or early stopping would stop after `patience` epochs and keep the untrained weights
            score = total / max(count, 1)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        row = {"epoch": epoch + 1, "train_loss": total / max(count, 1),
               **{f"val_{k}": v for k, v in val.items()}, "lr": opt.param_groups[0]["lr"], "seconds": seconds}
        log_rows.append(row)
        improved = math.isfinite(score) and score < best_score - 1e-9
        if improved:
            best_score, best_epoch, bad_epochs = score, epoch + 1, 0
            best_state = {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in modules.items()}
        else:
            bad_epochs += 1
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", **{f"val_{monitor}": f"{score:.4f}"})
        if rank == 0:
            _write_log(model_dir / "log.csv", log_rows)
            if improved:
                save_weights(model_dir / "best.safetensors",
                             {f"{k}.{n}": t for k, sd in best_state.items() for n, t in sd.items()})
            save_last(model_dir, modules, opt, sched, gen,
                      {"epoch": epoch, "best_score": best_score if math.isfinite(best_score) else None,
                       "best_epoch": best_epoch, "bad_epochs": bad_epochs, "elapsed": elapsed, "log": log_rows})
        if bad_epochs >= cfg.patience:
            stopped_early = True
            break
    bar.close()
    if epochs_done is None:
        epochs_done = epoch + 1
    if rank == 0 and (model_dir / "last.json").is_file():
        info = read_json(model_dir / "last.json")
        info["finished"] = True
        info["stopped_early"] = stopped_early
        write_json(model_dir / "last.json", info)
    for k, m in modules.items():
        m.load_state_dict(best_state[k])
        sync_from_rank0(m)  # every rank holds the model rank 0 saved (its soft labels are the cached ones)
        m.eval()
    return FitResult(best_epoch=best_epoch, best_score=best_score, epochs_run=epochs_done,
                     train_seconds=elapsed, stopped_early=stopped_early)


def _node_sampler(model: nn.Module, data, k: int | None, gen: torch.Generator, desc: str):
    """``() -> [K] node indices`` for node-subset training, or None when ``k`` is unset (or >= N).

    The draws come from ``gen`` (checkpointed with the run), so a resumed run samples the same subsets
    and every DDP rank (same seed) trains on the same sub-graph."""
    from stkd.data.graph import neighbourhood_sample
    from stkd.models.base import uses_node_subsets

    if not uses_node_subsets(model, k, desc):
        return None
    adjacency = data.data.adjacency
    if adjacency is None:
        raise ConfigError(f"{desc}: train.node_subset needs a graph to sample neighbourhoods from "
                          "(data.graph, e.g. method: knn)")

    def sample() -> np.ndarray:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        return neighbourhood_sample(adjacency, k, np.random.default_rng(seed))

    return sample


def train_batches(data, cfg: TrainConfig, gen: torch.Generator, rank: int, world_size: int,
                   sample_nodes=None) -> Iterable:
    """The train windows in a seeded random order; under DDP each rank takes its own share of every
    global batch (global batch = cfg.batch_size), so 1 and N processes see the same windows per step.
    With ``sample_nodes`` every batch is cut to a freshly sampled node subset."""
    starts = torch.as_tensor(data.starts["train"])
    order = starts[torch.randperm(len(starts), generator=gen)]
    bs = cfg.batch_size
    n_batches = len(order) // bs if len(order) >= bs else 1
    if cfg.max_batches:
        n_batches = min(n_batches, cfg.max_batches)
    for b in range(n_batches):
        chunk = order[b * bs:(b + 1) * bs]
        if world_size > 1:
            chunk = chunk[rank::world_size]
        yield data.batch(chunk.numpy(), nodes=None if sample_nodes is None else sample_nodes())


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def prefetch(batches: Iterable, depth: int = 2) -> Iterator:
    """Yield from ``batches`` while a background thread cuts the next ``depth`` batches.

    Why: cutting a batch (gathers from the prepared arrays, ~1 ms at batch 64 on Los-loop) is most of a
    tiny student's step on a CPU; torch's gathers release the GIL, so a thread overlaps that with the
    step's compute. One thread consumes ``batches``, so the batches, their order and every random draw
    they make (shuffling, node subsets) are exactly those of ``batches`` alone: results do not change.
    An error while cutting a batch is raised here; leaving the loop early stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for b in batches:
                if not put(b):
                    return
            put(_DONE)
        except BaseException as e:  # handed to the consumer, which raises it
            put(_Failed(e))

    worker = threading.Thread(target=work, name="stkd-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
