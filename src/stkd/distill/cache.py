"""The soft-label cache: a teacher's outputs for every window of every split, written once, reused.

Running a big teacher over all windows is the expensive part of distillation; students (any number,
trained now or later) only read. Entries live in ``run_dir/cache/<key>/`` where the key hashes the
teacher's identity (registry name, hyper-parameters, a digest of its weights) and the data
fingerprint (values, mask, index, nodes and the preparation config), so a changed teacher or data set
never reads stale labels. Arrays are plain ``.npy`` (memory-mapped on read), metadata JSON.
Event teachers (``kind="classify"``) share the cache: their logits ``[W, H, N, K]`` are the pred array,
and the kind is part of the key and of ``meta.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from stkd import names
from stkd.errors import STKDError
from stkd.io import AtomicNpy, read_json, read_npy, write_json, write_npy
from stkd.progress import bar as progress_bar

if TYPE_CHECKING:
    from stkd.models.base import STModel

SPLITS = names.SPLITS


def weights_digest(model: nn.Module) -> str:
    """A sha256 over the model's parameters and buffers: the teacher's identity."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if t.layout != torch.strided:
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(teacher_name: str, hparams: dict, digest: str, data_fingerprint: str,
              kind: str = "forecast", view: dict | None = None) -> str:
    """The entry's folder name. ``kind`` ("forecast" or "classify") is hashed only when not the default,
    so forecast keys are unchanged and an event teacher never shares an entry with a forecaster."""
    ident = {"teacher": teacher_name, "hparams": hparams, "weights": digest, "data": data_fingerprint}
    if kind != "forecast":
        ident["kind"] = kind
    if view is not None:  # a privileged teacher's inputs (keys of plain teachers are unchanged)
        ident["view"] = view
    blob = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class CacheEntry:
    """Read access to one teacher's cached outputs."""

    path: Path
    meta: dict
    built: bool  # True when this call ran the teacher; False when it was read from disk

    def __post_init__(self):
        self._starts = {s: self._read(f"{s}_starts.npy") for s in SPLITS}
        self._pred = {s: self._read(f"{s}_pred.npy", mmap=True) for s in SPLITS}
        self._hidden = {s: self._read(f"{s}_hidden.npy", mmap=True)
                        for s in SPLITS if (self.path / f"{s}_hidden.npy").is_file()}

    def _read(self, name: str, mmap: bool = False) -> np.ndarray:
        """One array of the cache; a damaged, truncated or pickled (object) file is an error saying to
        delete the cache folder so that it is rebuilt (it holds nothing that cannot be recomputed)."""
        try:
            return read_npy(self.path / name, mmap=mmap)
        except (ValueError, OSError) as e:
            raise STKDError(f"soft-label cache file {self.path / name} cannot be read ({str(e)[:160]}); delete "
                            f"the folder {self.path} and run again to rebuild it") from None

    @property
    def has_hidden(self) -> bool:
        return len(self._hidden) == len(SPLITS)

    def _rows(self, split: str, starts: np.ndarray) -> np.ndarray:
        known = self._starts[split]
        rows = np.searchsorted(known, starts)
        if (rows >= len(known)).any() or (known[np.minimum(rows, len(known) - 1)] != starts).any():
            raise STKDError(f"soft-label cache {self.path.name}: windows {starts[:5]}... are not in the "
                            f"{split} split it was built for; rebuild it (different data or window config?)")
        return rows

    @property
    def kind(self) -> str:
        """``forecast`` (predictions in original units) or ``classify`` (logits ``[W, H, N, K]``)."""
        return self.meta.get("kind", "forecast")

    def pred(self, split: str, starts) -> torch.Tensor:
        """Teacher outputs for these window starts: forecasts in original units ``[B, H, N, F_out]``, or
        for an event teacher (``kind == "classify"``) its logits ``[B, H, N, K]``."""
        rows = self._rows(split, np.asarray(starts))
        return torch.from_numpy(np.ascontiguousarray(self._pred[split][rows]))

    def hidden(self, split: str, starts) -> torch.Tensor:
        """Teacher hidden features for these windows: [B, N, D]."""
        if split not in self._hidden:
            raise STKDError(f"soft-label cache {self.path.name} holds no hidden features; "
                            "it was built without feature distillation")
        rows = self._rows(split, np.asarray(starts))
        return torch.from_numpy(np.ascontiguousarray(self._hidden[split][rows]))

    def all_pred(self, split: str) -> np.ndarray:
        return self._pred[split]


def write_cache(path: Path, preds: dict[str, np.ndarray], starts: dict[str, np.ndarray], meta: dict) -> CacheEntry:
    """A cache entry from outputs already in memory (``preds[split]``: ``[W, H, N, C]`` for the windows
    ``starts[split]``), in the layout :class:`CacheEntry` reads: the arrays first, ``meta.json`` last, so a
    folder with a meta file holds whole arrays. For soft labels that no single teacher run produces (e.g.
    cross-fitted labels, each window labelled by a teacher that never saw it); one teacher's outputs go
    through :func:`build_or_load`."""
    path = Path(path)
    for split in SPLITS:
        write_npy(path / f"{split}_starts.npy", np.asarray(starts[split], dtype=np.int64))
        write_npy(path / f"{split}_pred.npy", np.asarray(preds[split], dtype=np.float32))
    write_json(path / "meta.json", meta)
    return CacheEntry(path, meta, built=True)


@torch.no_grad()
def build_or_load(run_dir: Path, teacher: STModel, teacher_name: str, data, *, with_hidden: bool,
                  batch_size: int = 256, device: str | torch.device | None = None, kind: str = "forecast",
                  progress: bool = False, label: str | None = None) -> CacheEntry:
    """Return the cache entry of ``teacher`` on ``data``, running the teacher only if it is absent.

    With ``progress`` a bar ``cache <label>`` (default: the teacher's name) counts the windows run
    through the teacher, over every split: on a large graph this is minutes of work.

    ``kind="forecast"``: the teacher's predictions in original units ``[W, H, N, F_out]``.
    ``kind="classify"``: an event teacher (``out_classes = K``, ``out_features = 1``); its raw logits
    ``[W, H, N, K]`` are stored as the pred array (soft targets at any temperature come from them).
    """
    from stkd.evaluate import to_original_units

    if kind not in ("forecast", "classify"):
        raise ValueError(f"cache kind {kind!r} is not forecast or classify")
    hparams = dict(getattr(teacher, "hparams", {}))
    key = cache_key(teacher_name, hparams, weights_digest(teacher), data.fingerprint(), kind, data.view_key())
    path = Path(run_dir) / "cache" / key
    meta_path = path / "meta.json"
    if meta_path.is_file():
        meta = read_json(meta_path, fix=f"delete the folder {path} and run again to rebuild the cache")
        if not with_hidden or meta.get("hidden_dim"):
            return CacheEntry(path, meta, built=False)
    if device is None:  # run the teacher where it already lives (a GPU after GPU training)
        first = next(iter(teacher.parameters()), None)
        device = first.device if first is not None else "cpu"
    teacher.eval().to(device)
    hidden_dim = None
    with progress_bar(desc=f"cache {label or teacher_name}", total=sum(len(data.starts[s]) for s in SPLITS),
                      unit="window", progress=progress) as bar:
        for split in SPLITS:
            starts = np.asarray(data.starts[split], dtype=np.int64)
            W = len(starts)
            channels = teacher.spec.out_channels if kind == "classify" else data.out_features
            # Written through on-disk memmaps so a large train split never sits in RAM at once.
            preds = AtomicNpy(path / f"{split}_pred.npy", (W, data.H, data.num_nodes, channels))  # [W, H, N, C]
            hid = None
            try:
                i = 0  # the first window of the batch
                for b in data.iterate(split, batch_size):
                    b = b.to(device)
                    out = teacher(b.x, b.tod, b.dow)
                    if kind == "classify":
                        preds.array[i:i + len(b.start)] = out["pred"].float().cpu().numpy()  # logits
                    else:
                        preds.array[i:i + len(b.start)] = to_original_units(data, out["pred"]).cpu().numpy()
                    if with_hidden:
                        h = out["hidden"].float().cpu().numpy()  # [B, N, D]
                        if hid is None:
                            hidden_dim = h.shape[-1]
                            hid = AtomicNpy(path / f"{split}_hidden.npy", (W, data.num_nodes, hidden_dim))
                        hid.array[i:i + len(b.start)] = h
                    bar.update(len(b.start))
                    i += len(b.start)
            except BaseException:
                for part in (preds, hid):
                    if part is not None:
                        part.discard()
                raise
            preds.commit()
            if hid is not None:
                hid.commit()
            write_npy(path / f"{split}_starts.npy", starts)
    meta = {"teacher": teacher_name, "kind": kind, "hparams": hparams, "data_fingerprint": data.fingerprint(),
            "hidden_dim": hidden_dim, "windows": {s: int(len(data.starts[s])) for s in SPLITS}}
    write_json(meta_path, meta)
    return CacheEntry(path, meta, built=True)
