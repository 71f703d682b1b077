"""Cross-fitted soft labels: does a teacher that never saw a training window teach more about it?

    python benchmarks/crossfit.py --folds 4 --seeds 0 1 2 3 4     # writes docs/results/crossfit-los-loop.json

On Los-loop a teacher's soft labels are much closer to the truth on the training windows than on new ones
(evidence.py's ensemble row; ``ForecastSignal.mae``): fitted to those very windows, they hand the student
little beyond the ground truth. Here the training windows are cut into ``--folds`` contiguous blocks; a
teacher (the ``stid-nb`` architecture, seed ``--teacher-seed``) is trained once per block on the other
blocks, leaving out also every window that shares a time step with the block, and labels the block it
never saw. The student (``stid-nb``) then learns from these out-of-fold labels (alpha 0.5, Huber, as
evidence.py), paired per seed with the same student alone (same initial weights and batches).
Validation and test labels are the fold teachers' mean (never read in training: they only score the
teacher). Choices (early stopping) use the validation split only. Results: one record per seed, written as
it is measured (an interrupted run resumes; two invocations with other seeds can run side by side once
the fold teachers exist).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from common import RESULTS, command, commands_line, machine_line, merged_records, save_result
from evidence_rows import config, student_config

DATASET = "los-loop"


def fold_blocks(train_starts: np.ndarray, folds: int, reach: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per fold, (the block's starts, the starts a teacher for that block may train on). A window spans
    ``reach`` steps (input + horizon): a training window starting within ``reach`` of the block shares
    a time step with one of its windows, so it is left out too (no leak of the block's values)."""
    out = []
    for block in np.array_split(train_starts, folds):
        lo, hi = int(block.min()), int(block.max())
        keep = (train_starts <= lo - reach) | (train_starts >= hi + reach)
        out.append((block, train_starts[keep]))
    return out


def crossfit_cache(task, run_dir: Path, folds: int, teacher_seed: int):
    """Train the fold teachers and write their out-of-fold soft-label cache once (every later seed reads
    it): ``train`` rows from the teacher that did not see them, ``val`` / ``test`` rows the folds' mean.
    Returns the cache and the fold teachers' validation MAE."""
    import torch

    from stkd.config import ModelConfig
    from stkd.distill.cache import SPLITS, CacheEntry, write_cache
    from stkd.evaluate import model_forecaster
    from stkd.steps import train_model
    from stkd.tasks.forecast import ForecastTask

    cache = run_dir / "cache" / f"crossfit-{folds}-seed-{teacher_seed}"
    meta_path = cache / "meta.json"  # written last, so the arrays beside it are whole
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if "fold_val" in meta:
        return CacheEntry(cache, meta, built=False), meta["fold_val"]
    wd = task.wd
    mcfg = ModelConfig(name="stid", params=dict(student_config(DATASET, "stid-nb", task.cfg).params), seed=teacher_seed)
    hard = task.hard_loss()
    preds: dict[str, list] = {s: [] for s in SPLITS}
    val_mae = []
    blocks = fold_blocks(np.asarray(wd.starts["train"]), folds, wd.P + wd.H)
    for k, (block, allowed) in enumerate(blocks):
        fwd = copy.copy(wd)
        fwd.starts = {**wd.starts, "train": allowed}  # the block and its neighbours are never seen
        trained = train_model(
            ForecastTask(task.cfg, fwd),
            mcfg,
            f"fold_{k}",
            "teacher",
            run_dir,
            lambda _: (hard, {}),
            resume=True,
            progress=False,
        )
        val_mae.append(trained.val_mae)
        forecast = model_forecaster(trained.model, wd)
        with torch.no_grad():
            for split in SPLITS:
                starts = block if split == "train" else np.asarray(wd.starts[split])
                rows = [forecast(wd.batch(starts[i : i + 256])).numpy() for i in range(0, len(starts), 256)]
                preds[split].append(np.concatenate(rows))  # [W, H, N, F_out] original units
    merged = {split: np.concatenate(preds[split]) if split == "train" else np.mean(preds[split], axis=0)
              for split in SPLITS}
    meta = {"teacher": f"stid-nb, {folds} folds", "kind": "forecast", "folds": folds, "teacher_seed": teacher_seed,
            "fold_val": val_mae}
    return write_cache(cache, merged, wd.starts, meta), val_mae


def run_seed(seed: int, folds: int, teacher_seed: int, runs: Path, quick: bool) -> dict:
    from stkd.config import parse_config
    from stkd.pipeline import check_models, prepare_task, train_student
    from stkd.runs import open_run_dir
    from stkd.tasks.forecast import ForecastSignal

    cfg = parse_config(config(DATASET, seed, quick, precision="bf16"))
    cfg.student = student_config(DATASET, "stid-nb", cfg)
    task = prepare_task(cfg)
    check_models(task, teachers=False)
    teacher_dir = open_run_dir(
        cfg, task.wd, runs / f"folds-{folds}-teacher-seed-{teacher_seed}", overwrite=False, resume=True
    )
    entry, fold_val = crossfit_cache(task, teacher_dir, folds, teacher_seed)
    signal = ForecastSignal([entry], [entry.meta["teacher"]], None)
    run_dir = open_run_dir(
        cfg, task.wd, runs / f"folds-{folds}-teacher-seed-{teacher_seed}-seed-{seed}", overwrite=False, resume=True
    )  # a student resumed only with its own fold teachers
    t0 = time.perf_counter()
    kd = train_student(task, run_dir, signal, resume=True, progress=False, label="stid_nb_kd")
    plain = train_student(task, run_dir, resume=True, progress=False, label="stid_nb_plain")
    metrics = task.score(run_dir / "scores", [kd, plain])["models"]
    return {
        "seed": seed,
        "folds": folds,
        "teacher_seed": teacher_seed,
        "fold_val": fold_val,
        "soft_train": signal.mae(task.wd, "train"),
        "soft_val": signal.mae(task.wd, "val"),
        "soft_test": signal.mae(task.wd, "test"),
        "plain_mae": metrics[plain.name]["test"]["mae"],
        "kd_mae": metrics[kd.name]["test"]["mae"],
        "plain_val": plain.val_mae,
        "kd_val": kd.val_mae,
        "precision": cfg.train.precision,
        "seconds": time.perf_counter() - t0,
        "command": command(),
    }


def record_key(r: dict) -> tuple[int, int, int]:
    """A record is one student seed distilled from one set of fold teachers (their count and seed)."""
    return r["seed"], r["folds"], r["teacher_seed"]


def render(result: dict) -> str:
    from stkd.paired import describe_gain, gain_cell, paired_gain

    lines = [
        "| folds | seeds | fold teachers' mean, test MAE | soft labels vs truth: train / val | plain MAE | "
        "distilled MAE | mean gain (95 % interval) | wins |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    by_teachers: dict[tuple[int, int], list[dict]] = {}
    for r in result["records"]:
        by_teachers.setdefault((r["folds"], r["teacher_seed"]), []).append(r)
    several = len({ts for _, ts in by_teachers}) > 1  # name the teachers' seed only where rows differ by it
    for (folds, teacher_seed), rows in sorted(by_teachers.items()):
        seed_note = f", teachers' seed {teacher_seed}" if several else ""
        rows = sorted(rows, key=lambda r: r["seed"])
        g = paired_gain([r["plain_mae"] for r in rows], [r["kd_mae"] for r in rows])
        tr, va = rows[0]["soft_train"], rows[0]["soft_val"]
        lines.append(
            f"| {folds}{seed_note} | {g['n']} | {rows[0]['soft_test']:.3f} | {tr:.3f} / {va:.3f} | "
            f"{np.mean([r['plain_mae'] for r in rows]):.3f} | {np.mean([r['kd_mae'] for r in rows]):.3f} | "
            f"{gain_cell(g)} | {g['wins']}/{g['n']} |"
        )
        closer = 100 * (va - tr) / va
        verdicts.append(
            f"- {folds} folds{seed_note}: "
            + describe_gain(g, "distillation from out-of-fold labels")
            + f" The soft labels are {abs(closer):.0f} % {'closer to' if closer >= 0 else 'further from'} "
            f"the truth on the training windows than on validation."
        )
    return (
        f"### Cross-fitted soft labels on {DATASET} (stid-nb teachers and student, paired seeds)\n\n"
        f"{commands_line(result)}  \n{machine_line(result)}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--teacher-seed", type=int, default=100, help="the fold teachers' seed (not a student's)")
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/crossfit"))
    ap.add_argument("--quick", action="store_true", help="2 epochs of 3 batches: a smoke test, nothing is saved")
    args = ap.parse_args()
    if args.folds < 2:
        ap.error("--folds: at least 2 (one fold would leave the teacher nothing to train on)")
    if args.quick:  # never let a smoke test's models be resumed by a real run
        import tempfile

        args.runs = Path(tempfile.mkdtemp(prefix="crossfit-quick-"))
    section = f"crossfit-{DATASET}"
    path = RESULTS / f"{section}.json"
    done = set()
    if path.is_file() and not args.quick:
        done = {record_key(r) for r in json.loads(path.read_text())["records"]}
    for seed in args.seeds:
        if (seed, args.folds, args.teacher_seed) in done:
            continue
        record = run_seed(seed, args.folds, args.teacher_seed, args.runs, args.quick)
        if args.quick:
            print(json.dumps(record, indent=1))
            continue
        records = merged_records(path, [record], record_key)
        save_result(section, "crossfit", {"dataset": DATASET, "records": records}, vars(args) | {"runs": None})
    if not args.quick and path.is_file():
        print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
