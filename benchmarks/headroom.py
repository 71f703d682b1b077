"""How much could any distillation buy a student? Its learning curve says.

    python benchmarks/headroom.py --datasets los-loop --students stid-nb mlp --seeds 0 1 2
    python benchmarks/headroom.py --datasets akl-pedestrians --students stid mlp
    python benchmarks/headroom.py --datasets los-loop --students stid-nb mlp --layout blocks
    python benchmarks/headroom.py --datasets akl-pedestrians --students stid --student-lags 1D 7D
    python benchmarks/headroom.py --datasets akl-pedestrians --students stid --student-lags 1D 2D 3D 7D \
        --student-lr 0.008 --schedule 30 6   # the default preset's student of 2026-12-06, at its rate and schedule
    python benchmarks/headroom.py --datasets akl-pedestrians --students stid-nodrop --student-lags 1D 2D 3D 7D \
        --student-lr 0.008 --schedule 60 12 --min-epochs 40   # today's preset student (no dropout, 60 epochs)

Soft labels change the targets a student learns from, not its inputs or its capacity: at best they make
the student what it would be with unlimited training data of the same kind, the best function of its own
inputs. How far a student is from that point is its estimation error, and the learning curve measures it:
the plain student (evidence.py's configuration and schedule) trains on the last quarter, the last half and
all of the training period (``data.history``; validation and test unchanged) from the same seeds. With the
test MAE falling as ``a + b * n**-c`` in the data size ``n`` (the training windows; a power law, the usual
shape of learning curves), three points fix ``a``, ``b`` and ``c``: ``e(n) - a`` is what unlimited data would remove, the
most any training signal can give this student on these inputs *if the curve holds*. It is an estimate,
not a proof: a curve that does not fall, or does not flatten, is reported as such and not extrapolated,
and so is one where ``data.day_of_week: auto`` turns the embedding on for some histories and off for
others (the model itself changes). The issue's target (distilled at most 0.95x plain on Los-loop, 0.97x
on Auckland) needs that much headroom.

A training period of a few days is not the same data at every share: the last quarter of Los-loop's
Thursday-to-Monday period holds only the weekend and Monday. ``--layout blocks`` keeps the calendar
instead: the training period is cut into blocks of ``--block`` (8 hours: three a day, so every other
block, or every fourth, falls at other hours on successive days) and a share of 1/k keeps every k-th
block, with the windows lying wholly inside a kept block (no window reads a left-out step); every share
then spans the same days and hours, thinned. Results: ``docs/results/headroom-<dataset>.json``, one record per
(student, share, seed), written as soon as it is measured (an interrupted run resumes). With ``--workers 2``
the students train two at once, one process each at one thread, and each record says which way it trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from common import RESULTS, command, commands_line, machine_line, merged_records, save_result, train_side_by_side
from evidence_compare import TARGET_RATIO, row_comparisons, rows_by_student
from evidence_rows import (
    DATASETS,
    STUDENTS,
    config,
    lags_label,
    lags_slug,
    lr_label,
    lr_slug,
    min_epochs_problem,
    scarcity,
    schedule_label,
    schedule_slug,
    student_config,
    student_rate,
)
from evidence_train import learning_rate

SHARES = (0.25, 0.5, 1.0)  # of the training period: its last part, or every 4th / 2nd / block
LAYOUTS = ("last", "blocks")  # which part of the training period a share keeps (see the docstring)


def block_starts(starts: np.ndarray, lo: int, span: int, block: int, every: int) -> np.ndarray:
    """The window ``starts`` (training windows of ``span`` steps, the period starting at step ``lo``) that lie
    wholly inside a kept block: blocks of ``block`` steps counted from ``lo``, every ``every``-th kept (the
    first among them). ``every`` 1 keeps every window."""
    first = (starts - lo) // block
    last = (starts + span - 1 - lo) // block
    return starts[(first == last) & (first % every == 0)] if every > 1 else starts


def histories(dataset: str, quick: bool) -> dict[float, str | None]:
    """Per share, ``data.history`` keeping the last ``share`` of the training period in whole steps (None: all
    of it); the split does not depend on the seed, so the data set is prepared once for every run."""
    from stkd.config import parse_config
    from stkd.pipeline import prepare_task

    wd = prepare_task(parse_config(config(dataset, 0, quick))).wd
    lo, hi = wd.ranges["train"]
    minutes = wd.data.freq.total_seconds() / 60
    return {share: None if share >= 1 else f"{int(round(share * (hi - lo)) * minutes)}min" for share in SHARES}


def kept_steps(starts: np.ndarray, lo: int, hi: int, block: int) -> int:
    """How many steps of the training period ``[lo, hi)`` the blocks holding ``starts`` cover."""
    return sum(min(lo + (g + 1) * block, hi) - (lo + g * block) for g in set(((starts - lo) // block).tolist()))


def run_one(dataset: str, student: str, share: float, seed: int, runs: Path, quick: bool, history: str | None,
            schedule: tuple[int, int] | None = None, block: str | None = None, lags: list[str] | None = None,
            lr: float | None = None, min_epochs: int | None = None) -> dict:
    """One plain student on one share; ``block`` (a duration) thins the whole period into blocks (``--layout
    blocks``) instead of keeping its last part (``history``); ``lags``: the student also reads these lagged
    channels (evidence.py's ``--student-lags``); ``lr``: its own learning rate (``student.lr``; None: the data
    set's ``train.lr``, as evidence.py's ``--student-lr``); ``min_epochs``: no early stop before this epoch
    (``train.min_epochs``, evidence.py's ``--student-min-epochs``)."""
    from stkd.config import InputsConfig, parse_config, parse_duration
    from stkd.pipeline import prepare_task, train_student
    from stkd.runs import open_run_dir

    cfg = parse_config(config(dataset, seed, quick, history=history))
    if schedule:  # the student's own epochs and patience (a schedule long enough to converge)
        cfg.train = dataclasses.replace(cfg.train, epochs=schedule[0], patience=schedule[1])
    if min_epochs:
        cfg.train = dataclasses.replace(cfg.train, min_epochs=min_epochs)
    task = prepare_task(cfg)
    task.cfg.student = dataclasses.replace(student_config(dataset, student, cfg), lr=lr)
    if lags:
        task.cfg.student.inputs = InputsConfig(lags=list(lags))
    lo, hi = task.wd.ranges["train"]
    thinned = block is not None and share < 1
    every = int(round(1 / share))
    block_steps = int(round(parse_duration(block, "--block") / task.wd.data.freq.total_seconds())) if block else None
    if thinned:
        task.wd.starts["train"] = block_starts(task.wd.starts["train"], lo, task.wd.P + task.wd.H, block_steps, every)
    folder = runs / dataset / (student + schedule_slug(schedule, min_epochs) + lags_slug(lags) + lr_slug(lr)) / \
        (f"seed-{seed}-blocks-{block}-every-{every}" if thinned else f"seed-{seed}-share-{share:g}")
    # a run folder holds one student config and one set of training windows
    run_dir = open_run_dir(cfg, task.wd, folder, overwrite=False, resume=True)
    t0 = time.perf_counter()
    plain = train_student(task, run_dir, resume=True, progress=False, label=f"{student.replace('-', '_')}_plain")
    test = task.score(run_dir / "scores" / student, [plain])["models"][plain.name]["test"]
    return {"dataset": dataset, "student": student, "student_lags": list(lags or []), "student_lr": lr,
            "share": share, "seed": seed, "history": history,
            "layout": "blocks" if thinned else "last" if share < 1 else None,  # None: the whole period, either
            "block": block if thinned else None, "block_steps": block_steps if thinned else None,
            "schedule": list(schedule) if schedule else None, "epochs": cfg.train.epochs,
            "patience": cfg.train.patience, "min_epochs": min_epochs, "max_batches": cfg.train.max_batches,
            "train_days": (kept_steps(task.wd.starts["train"], lo, hi, block_steps) if thinned else hi - lo)
            * task.wd.data.freq.total_seconds() / 86400,
            "train_windows": int(len(task.wd.starts["train"])), "day_of_week": bool(task.wd.day_of_week),
            "val_mae": plain.val_mae, "test_mae": test["mae"], "seconds": time.perf_counter() - t0,
            "best_epoch": json.loads((run_dir / "models" / plain.name / "model.json").read_text())["best_epoch"],
            "command": command()}


def base_label(r: dict) -> str:
    """The student, the schedule it trained on (a data set's own schedule may change; the epoch before which it
    could not stop early, if any), the lagged channels it reads, if any, and its own learning rate, if it had one."""
    lags = r.get("student_lags")
    return (r["student"] + schedule_label((r["epochs"], r["patience"]), r.get("min_epochs"))
            + (lags_label(lags) if lags else "") + lr_label(r.get("student_lr")))


def row_label(r: dict) -> str:
    """A table row: :func:`base_label`, and for a curve thinned into blocks, their length."""
    return base_label(r) + (f", blocks of {r['block']}" if layout(r) == "blocks" else "")


def layout(r: dict) -> str | None:
    """Which part of the training period a record's share kept: ``last``, ``blocks``, or None for the whole
    period (it belongs to the curves of either layout; records from before ``--layout`` are ``last``)."""
    return r.get("layout") or ("last" if r["share"] < 1 else None)


def record_key(r: dict) -> tuple:
    """What one record measures: its row, share and seed."""
    return row_label(r), r["share"], r["seed"]


def power_law(sizes: list[float], errors: list[float]) -> dict | None:
    """``a + b * n**-c`` through the mean errors at three data sizes ``n`` (increasing). None where the errors
    do not fall with more data, or do not fall at a slowing rate in ``log n`` (no power law with ``c > 0``
    fits: as ``c`` tends to 0 the ratio of the successive drops tends to the ratio of the steps in ``log n``,
    and it grows without bound with ``c``)."""
    n1, n2, n3 = (float(n) for n in sizes)
    e1, e2, e3 = errors
    drops = (e1 - e2, e2 - e3)
    if min(drops) <= 0 or drops[0] / drops[1] <= math.log(n2 / n1) / math.log(n3 / n2):
        return None

    def excess(c: float) -> float:  # the drops' ratio at exponent c, minus the measured one
        return (n1 ** -c - n2 ** -c) / (n2 ** -c - n3 ** -c) - drops[0] / drops[1]

    hi = 1.0
    while excess(hi) < 0:  # the ratio grows like (n3/n2)**c, so this ends
        hi *= 2
    c = brentq(excess, 1e-9, hi, xtol=1e-12)
    reducible = drops[1] / (n2 ** -c - n3 ** -c) * n3 ** -c  # b * n3**-c
    return {"c": c, "reducible": reducible, "floor": e3 - reducible}


def measured_gains(dataset: str, student: str, epochs: int, lags: list[str] | None = None,
                   lr: float | None = None, min_epochs: int | None = None) -> dict[str, float]:
    """The distillation gains (mean over paired seeds, %) evidence.py measured for this very student (the same
    model, lagged channels, epochs and floor of early stopping) on the whole period with every reading, per
    evidence row (one per teacher or objective), in the file's order; the main teacher's row first where it has
    one. With ``lr`` only the rows whose students trained at that rate (``--student-lr``) count."""
    path = RESULTS / f"evidence-{dataset}.json"
    if not path.is_file():
        return {}
    result = json.loads(path.read_text())
    rows = {label: rs for label, rs in rows_by_student(result).items()
            if (label.split(",")[0] == student and list(rs[0].get("student_lags") or []) == list(lags or [])
                and rs[0].get("student_epochs", epochs) == epochs and scarcity(rs[0]) is None
                and (rs[0].get("student_min_epochs") or None) == (min_epochs or None)
                and not rs[0].get("earlier_rule") and (lr is None or student_rate(rs[0], dataset) == lr))}
    # a row measured at several learning rates counts once, each student at its own best rate
    gains = {label: row["gain"]["mean"] for label, (_, row) in row_comparisons(result, rows).items()}
    main = [label for label in gains if ", teachers " not in label]
    return {label: gains[label] for label in main + [label for label in gains if label not in main]}


def by_row(records: list[dict]) -> dict[str, dict[float, list[dict]]]:
    """Records per table row (student, schedule and layout), then per share; the whole period's records join
    every row of their student and schedule (a row of its own when no share of theirs is measured yet)."""
    by: dict[str, dict[float, list[dict]]] = {}
    base: dict[str, str] = {}  # row label -> its student and schedule
    for r in records:
        if layout(r) is not None:
            by.setdefault(row_label(r), {}).setdefault(r["share"], []).append(r)
            base[row_label(r)] = base_label(r)
    for r in records:
        if layout(r) is None:
            for label in [label for label, b in base.items() if b == base_label(r)] or [row_label(r)]:
                by.setdefault(label, {}).setdefault(r["share"], []).append(r)
    return by


def curve(dataset: str, shares: dict[float, list[dict]]) -> dict:
    """One complete row's mean training windows and test MAE per share, its power-law fit (None where the
    day-of-week embedding flips along the curve, or no law fits) and evidence.py's distillation gains for the
    same student (per evidence row)."""
    windows = [float(np.mean([r["train_windows"] for r in shares[s]])) for s in SHARES]
    test = [float(np.mean([r["test_mae"] for r in shares[s]])) for s in SHARES]
    mixed = len({r["day_of_week"] for s in SHARES for r in shares[s]}) > 1
    first = shares[SHARES[-1]][0]
    falling = test[0] > test[1] > test[2]  # per doubling of the windows, % of the whole period's error
    per_doubling = ([100 * (test[i] - test[i + 1]) / test[-1] / math.log2(windows[i + 1] / windows[i]) for i in (0, 1)]
                    if falling else None)
    return {"windows": windows, "test": test, "mixed_day_of_week": mixed, "per_doubling": per_doubling,
            "fit": None if mixed else power_law(windows, test),
            "gains": measured_gains(dataset, first["student"], first["epochs"], first.get("student_lags"),
                                    first.get("student_lr"), first.get("min_epochs"))}


def last_doubling(c: dict) -> float:
    """What the last doubling of the training windows gave (%, positive: the whole period's error is lower)."""
    return 100 * (c["test"][1] - c["test"][2]) / c["test"][2]


def beyond_data(c: dict, gain: float) -> str:
    """A sentence where distillation's best gain is more than the last doubling of the data gave: then what the
    teacher adds is not more windows of the kind the student has (empty otherwise)."""
    doubling = last_doubling(c)
    if gain <= 0 or gain <= doubling:
        return ""
    return (f" That is more than the last doubling of the training windows gave ({doubling:+.1f} %): what the "
            "teacher adds is not more data of this kind.")


def percent(x: float) -> str:
    """A share in % to one decimal, or to two significant digits below 0.1 (a headroom of 0.04 % is not 0.0 %)."""
    return f"{x:.1f}" if abs(x) >= 0.1 else f"{x:.2g}"


def share_text(r: dict) -> str:
    """What a record's share kept, for the sentences: "half the history", "1 block in 4", "the whole period"."""
    if layout(r) is None:
        return "the whole period"
    if layout(r) == "last":
        return {0.5: "half the history", 0.25: "a quarter"}.get(r["share"], f"the last {r['share']:g}")
    return f"1 block in {int(round(1 / r['share']))}"


def verdict(dataset: str, student: str, shares: dict[float, list[dict]]) -> str:
    c = curve(dataset, shares)
    test, fit = c["test"], c["fit"]
    full = test[-1]
    head = None if fit is None else 100 * fit["reducible"] / full  # % of the whole period's error
    half, quarter = share_text(shares[SHARES[1]][0]), share_text(shares[SHARES[0]][0])
    text = (f"- {student}: with {half} the test MAE is {100 * (test[1] - full) / full:+.1f} % against the "
            f"whole period, with {quarter} {100 * (test[0] - full) / full:+.1f} %.")
    target = TARGET_RATIO.get(dataset)
    if c["mixed_day_of_week"]:
        text += (" The day-of-week embedding is on for some histories and off for others (`data.day_of_week: "
                 "auto`), so the model changes along the curve: not extrapolated.")
    elif fit is None and c["per_doubling"]:
        per_doubling = c["per_doubling"]
        text += (f" Per doubling of the training windows the error falls by {per_doubling[0]:.1f} % of the whole "
                 f"period's over the first step and {per_doubling[1]:.1f} % over the last: it does not level off "
                 "over this range, so no power law fits and the headroom is not extrapolated.")
    elif fit is None:
        text += (" The error does not fall with more data at a slowing rate, so no power law fits: not "
                 "extrapolated.")
    else:
        text += (f" Fitted `a + b * n^-c` (c = {fit['c']:.2f}): with unlimited data of this kind the test MAE would "
                 f"be {fit['floor']:.3f}, {percent(head)} % below the whole period's {full:.3f}; that is the most soft labels "
                 "could give this student on these inputs if the curve holds.")
        if target is not None:
            need = 100 * (1 - target)
            text += (f" The issue's target asks for {need:.0f} %: "
                     + ("within that headroom." if head >= need else "more than the headroom."))
    gains = c["gains"]
    if gains:
        first, best = next(iter(gains)), max(gains, key=gains.__getitem__)
        text += f" Distillation measured {gains[first]:+.1f} % on the whole period (the evidence row `{first}`)"
        text += (f"; the best of its {len(gains)} rows {gains[best]:+.1f} % (`{best}`)." if best != first else ".")
        if head is not None and gains[best] < 0.5 * head:
            text += (" Soft labels on the same windows realise less than half of that headroom: what more data "
                     "would give is more inputs, and the teacher labels only the windows the student already has.")
        elif head is not None and gains[best] > head:
            text += f" The best row gains more than that headroom ({gains[best]:+.1f} % against {percent(head)} %)."
        elif head is not None and gains[best] > 0:
            text += f" The best row realises {100 * gains[best] / head:.0f} % of that headroom."
        text += beyond_data(c, gains[best])
    whole = [r["best_epoch"] for r in shares[SHARES[-1]] if "best_epoch" in r]
    epochs, patience = shares[SHARES[-1]][0]["epochs"], shares[SHARES[-1]][0]["patience"]
    if whole and min(whole) > epochs - patience:  # early stopping did not end any of them
        text += (f" On the whole period the schedule, not early stopping, ended every seed's run (best epoch "
                 f"{np.mean(whole):.0f} of {epochs} on average, patience {patience}): a longer one may lower the "
                 "last point.")
    return text


def best_epochs(rows: list[dict]) -> str:
    """The epochs early stopping kept, "mean (min-max)" over the seeds, of the epochs the schedule allowed: a
    share that levels off before its last epoch is not held back by its schedule (fewer windows are also
    fewer batches an epoch)."""
    best = [r["best_epoch"] for r in rows if "best_epoch" in r]
    if not best:
        return "n/a"
    return f"{np.mean(best):.0f} ({min(best)}-{max(best)}) of {rows[0]['epochs']}"


def render(result: dict) -> str:
    with_epochs = any("best_epoch" in r for r in result["records"])  # recorded since the block layout
    lines = ["| student | history | training windows | day of week | seeds | val MAE | test MAE (mean ± std) | "
             "test vs whole period |" + (" best epoch (range) |" if with_epochs else ""),
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |" + (" ---: |" if with_epochs else "")]
    verdicts = []
    for student, shares in by_row(result["records"]).items():
        full = float(np.mean([r["test_mae"] for r in shares.get(1.0, [])])) if 1.0 in shares else float("nan")
        for share in sorted(shares):
            rows = sorted(shares[share], key=lambda r: r["seed"])
            test = [r["test_mae"] for r in rows]
            std = float(np.std(test, ddof=1)) if len(test) > 1 else 0.0
            dow = "/".join(sorted({"on" if r["day_of_week"] else "off" for r in rows}))
            kept = {"last": f"last {share:g}", "blocks": f"1 in {int(round(1 / share))} blocks of {rows[0].get('block')}",
                    None: "all"}[layout(rows[0])]
            lines.append(f"| {student} | {kept} ({rows[0]['train_days']:.1f} d) | {rows[0]['train_windows']:,} | "
                         f"{dow} | {len(rows)} | {np.mean([r['val_mae'] for r in rows]):.3f} | {np.mean(test):.3f} ± "
                         f"{std:.3f} | {100 * (np.mean(test) - full) / full:+.1f} % |" + (f" {best_epochs(rows)} |" if with_epochs else ""))
        if all(s in shares for s in SHARES):
            verdicts.append(verdict(result["dataset"], student, shares))
    return (f"### Learning curves of the plain students on {result['dataset']}\n\n{commands_line(result)}  \n"
            f"{machine_line(result)}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n")


def headline(result: dict) -> str:
    """The README's line: the plain student best on validation, its headroom and what distillation measured."""
    complete = {label: shares for label, shares in by_row(result["records"]).items()
                if all(s in shares for s in SHARES)}
    curves = {label: curve(result["dataset"], shares) for label, shares in complete.items()}
    # the best on validation; among the curves of one student (the whole period is shared) one that fits,
    # else one that keeps the calendar (blocks)
    best = min(complete, key=lambda label: (np.mean([r["val_mae"] for r in complete[label][1.0]]),
                                            curves[label]["fit"] is None,
                                            layout(complete[label][SHARES[0]][0]) != "blocks"))
    c = curves[best]
    fit, gains = c["fit"], c["gains"]
    first = next(iter(gains), None)
    top = max(gains, key=gains.__getitem__) if gains else None  # the evidence row with the largest gain
    measured = "n/a" if first is None else f"{gains[first]:+.1f} %"
    if top is not None and top != first:
        measured += f", at best {gains[top]:+.1f} % (`{top}`)"
    if top is not None and beyond_data(c, gains[top]):
        measured += f", more than the last doubling of its training windows gave ({last_doubling(c):+.1f} %)"
    if fit:
        what = (f"unlimited data of this kind would lower its test MAE by about "
                f"{percent(100 * fit['reducible'] / c['test'][-1])} % (a power law through its learning curve; if it holds, "
                "the most any soft labels could give it)")
    elif c["per_doubling"] and c["per_doubling"][1] >= c["per_doubling"][0]:
        what = (f"its test MAE still falls by {c['per_doubling'][1]:.1f} % per doubling of the training windows up to "
                "the whole period, with no sign of levelling off: it is short of data, which soft labels on the same "
                "windows do not add")
    else:
        what = "its learning curve does not extrapolate"
    return (f"- **Headroom** ({result['dataset']}, plain {best}, the best on validation): {what}; distillation "
            f"measured {measured} ([benchmarks](docs/benchmarks.md#how-much-any-"
            f"training-signal-could-give-a-student)).")


def result_section(dataset: str) -> str:
    """The name of a data set's curves: their block on the page and their file, ``docs/results/<name>.json``."""
    return f"headroom-{dataset}"


def kept(records: list[dict], new: dict, dataset: str, args: argparse.Namespace) -> list[dict]:
    """``records`` with ``new`` added (and printed): saved at once, merged with what another invocation may have
    saved meanwhile, unless ``--quick``."""
    print(json.dumps(new), flush=True)
    if args.quick:
        return [*records, new]
    section = result_section(dataset)
    merged = merged_records(RESULTS / f"{section}.json", [new], record_key)
    save_result(section, "headroom", {"dataset": dataset, "records": merged}, vars(args) | {"runs": None})
    return merged


def headroom_job(job: dict, slot: int) -> None:
    """One (student, share, seed) of :func:`main`'s loop in a process of its own (``--workers 2``; ``slot``
    unused: no progress bar): :func:`run_one` from ``job`` (its arguments as JSON carries them), its record
    written to ``job["record"]`` for the parent to save, so the record keeps the seconds its training took."""
    from stkd.io import write_json

    args = dict(job)
    record_path = Path(args.pop("record"))
    workers = args.pop("workers")
    args["runs"] = Path(args["runs"])
    args["schedule"] = tuple(args["schedule"]) if args["schedule"] else None
    write_json(record_path, run_one(**args) | {"workers": workers})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["los-loop"], choices=list(DATASETS))
    ap.add_argument("--students", nargs="+", default=["stid-nb", "mlp"], choices=list(STUDENTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/headroom"))
    ap.add_argument("--schedule", nargs=2, type=int, default=None, metavar=("EPOCHS", "PATIENCE"),
                    help="the students' epochs and early-stopping patience (default: the data set's schedule)")
    ap.add_argument("--layout", choices=LAYOUTS, default="last",
                    help="a share keeps the last part of the training period, or every k-th block of it (default: last)")
    ap.add_argument("--block", default="8h", help="with --layout blocks: the blocks' length, a duration (default: 8h)")
    ap.add_argument("--student-lags", nargs="+", default=None, metavar="LAG",
                    help="the students also read these lagged channels, e.g. 1D 7D (as evidence.py's --student-lags)")
    ap.add_argument("--student-lr", type=learning_rate, default=None, metavar="LR",
                    help="the students' own learning rate (student.lr; default: the data set's train.lr), as "
                         "evidence.py's --student-lr")
    ap.add_argument("--min-epochs", type=int, default=None, metavar="EPOCH",
                    help="no early stop of the students before this epoch (train.min_epochs; evidence.py's "
                         "--student-min-epochs); needs --schedule")
    ap.add_argument("--workers", type=int, default=1, metavar="N",
                    help="train N students at once, one process each at a share of the cores (default 1: one after "
                         "the other in this process, at its threads, as every curve measured before this option; "
                         "other threads round differently)")
    ap.add_argument("--quick", action="store_true", help="2 epochs of 3 batches: a smoke test, nothing is saved")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers: at least 1")
    if problem := min_epochs_problem(args.min_epochs, args.schedule, ("--min-epochs", "--schedule")):
        ap.error(problem)
    block = args.block if args.layout == "blocks" else None
    for dataset in args.datasets:
        section = result_section(dataset)
        path = RESULTS / f"{section}.json"
        records = json.loads(path.read_text())["records"] if path.is_file() and not args.quick else []
        from stkd.config import parse_config

        train = parse_config(config(dataset, 0, args.quick)).train  # the data set's schedule, unless --schedule
        epochs, patience = args.schedule or (train.epochs, train.patience)
        history = {} if block else histories(dataset, args.quick)  # a thinned curve keeps the whole period
        todo = []  # run_one's arguments for every (student, share, seed) not measured yet
        for student in args.students:
            for share in SHARES:
                for seed in args.seeds:
                    key = record_key({"student": student, "epochs": epochs, "patience": patience, "share": share,
                                      "seed": seed, "layout": args.layout if share < 1 else None, "block": block,
                                      "min_epochs": args.min_epochs,
                                      "student_lags": args.student_lags, "student_lr": args.student_lr})
                    if not any(record_key(r) == key for r in records):
                        todo.append({"dataset": dataset, "student": student, "share": share, "seed": seed,
                                     "runs": args.runs, "quick": args.quick, "history": history.get(share),
                                     "schedule": args.schedule, "block": block, "lags": args.student_lags,
                                     "lr": args.student_lr, "min_epochs": args.min_epochs})

        if args.workers > 1 and todo:
            with tempfile.TemporaryDirectory() as tmp:
                jobs = [{**a, "runs": str(a["runs"]), "record": str(Path(tmp) / f"{i}.json"), "workers": args.workers}
                        for i, a in enumerate(todo)]
                try:
                    train_side_by_side("headroom.headroom_job", jobs, args.workers,
                                       lambda j: f"{j['student']} share {j['share']:g} seed {j['seed']}")
                finally:  # what finished is kept, whatever stopped the others
                    for j in jobs:
                        if Path(j["record"]).is_file():
                            records = kept(records, json.loads(Path(j["record"]).read_text()), dataset, args)
        else:
            for a in todo:
                records = kept(records, run_one(**a) | {"workers": 1}, dataset, args)
        if args.quick:
            print(json.dumps(records, indent=1))
        else:
            print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
