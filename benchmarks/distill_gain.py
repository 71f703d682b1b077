"""Distillation gain per method and per alpha against the same student alone, paired over student seeds.

    python benchmarks/distill_gain.py --teacher-run bench-runs/evidence/los-loop/teacher-seed-0 --student mlp
    # -> docs/results/distill-gain-los-loop-mlp.json (one file per data set and student)
    python benchmarks/distill_gain.py --teacher-run bench-runs/evidence/akl-pedestrians/teacher-seed-0-stid-64 \
        --student stid --student-lags 1D 7D   # -> distill-gain-akl-pedestrians-stid-lags-1D-7D.json

The teachers of one run (trained once, their soft labels cached; by default seed 0 of
``benchmarks/evidence.py`` on Los-loop) are reused; only the student is retrained, with each method below
and with no teacher at all, from the same seeds. Per method the script reports the mean relative gain over
the plain student of the same seed with a 95 % bootstrap interval and the wins
(:func:`stkd.paired.paired_gain`); a gain is "established" only when the interval excludes zero. Single-teacher
methods use the run's teacher with the lowest validation MAE; "several teachers" uses all of them (and is
left out when the run has one teacher). Model selection (early stopping, ensemble weights, the method named
best) uses the validation split; the test column is reported. Each (method, seed) is written to the result
file as soon as it is measured, and a student whose training finished is re-scored rather than retrained,
so an interrupted invocation resumes. With ``--workers 2`` the students still to train train two at once, one
process each at one thread (on 2 cores well before two in turn), and are then scored in turn; the records say
which way they trained (``workers``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from common import RESULTS, command, machine_line, mean_std, merged_records, save_result, train_side_by_side
from evidence_compare import paired_row
from evidence_rows import (
    DATASETS,
    HELD_OUT,
    STUDENTS,
    lags_label,
    lags_slug,
    lr_label,
    lr_slug,
    min_epochs_problem,
    schedule_label,
    schedule_slug,
    student_config,
)
from evidence_train import learning_rate

PLAIN = "plain (no teacher)"
START_METHOD = "teacher's weights + response a=0.5"  # the default preset's distillation since 2026-12-06
METHODS = {
    # name: (distill overrides, teachers used: "best" = the run's teacher with the lowest validation MAE)
    PLAIN: (None, None),
    "response a=0.3": ({"alpha": 0.3}, "best"),
    "response a=0.5": ({"alpha": 0.5}, "best"),
    "response a=0.7": ({"alpha": 0.7}, "best"),
    "teacher only (a=0)": ({"alpha": 0.0}, "best"),
    "teacher-bounded": ({"alpha": 0.5, "bounded": True}, "best"),
    "response + feature (hint)": ({"alpha": 0.5, "feature_weight": 0.1}, "best"),
    "response + relation": ({"alpha": 0.5, "relation_weight": 1.0}, "best"),
    "response + multiscale": ({"alpha": 0.5, "multiscale_weight": 1.0}, "best"),
    "response + period (weight 1)": ({"alpha": 0.5, "period_weight": 1.0}, "best"),
    "response + period (weight 0.1)": ({"alpha": 0.5, "period_weight": 0.1}, "best"),
    "response + augment (noise, mask, mixup)": ({"alpha": 0.5, "augment": ["noise", "mask", "mixup"],
                                                 "augment_weight": 0.5}, "best"),
    "several teachers (val-weighted)": ({"alpha": 0.5, "ensemble": "weighted"}, "all"),
    # where the student starts (distill.init: teacher: the teacher's weights cut to its size), with the usual
    # objective, with the ground truth alone (what the start gives without soft labels) and with the teacher alone
    START_METHOD: ({"alpha": 0.5, "init": "teacher"}, "best"),
    "teacher's weights, ground truth only (a=1)": ({"alpha": 1.0, "init": "teacher"}, "best"),
    "teacher's weights + teacher only (a=0)": ({"alpha": 0.0, "init": "teacher"}, "best"),
}
PRESET_METHOD = "the 2026-12-05 preset's"
#: The default preset's distillation from 2026-12-05 to 2026-12-06 (``git show 8422b8a:src/stkd/presets.py``): the
#: start from the teacher's weights and the teacher's forecasts of masked and mixed windows, labelled online.
#: Pinned, so a method's name means one objective whatever the preset is today.
PRESET_DISTILL = {"alpha": 0.5, "loss": "huber", "augment": ["mask", "mixup"], "augment_weight": 1.0,
                  "augment_labels": "online", "init": "teacher"}
ADDED_TERMS = {  # a loss term added to an objective, with the weight every table gives it
    " + feature (hint)": {"feature_weight": 0.1},
    " + relation": {"relation_weight": 1.0},
    " + multiscale": {"multiscale_weight": 1.0},
    " + period (weight 0.1)": {"period_weight": 0.1},
}
PRESET_VARIANTS = {  # that objective with one setting changed or added
    "": {},
    ", a=0.3": {"alpha": 0.3},
    ", a=0.7": {"alpha": 0.7},
    ", teacher only (a=0)": {"alpha": 0.0},
    ", from the seed's weights": {"init": "random"},
    **ADDED_TERMS,
    # for a student of another kind than the teacher (it cannot start from its weights)
    ", from the seed's weights + feature (hint)": {"init": "random", "feature_weight": 0.1},
    ", from the seed's weights, teacher only (a=0)": {"init": "random", "alpha": 0.0},
}
METHODS.update({PRESET_METHOD + suffix: ({"preset": True, **change}, "best") for suffix, change in PRESET_VARIANTS.items()})
#: The default preset's distillation since 2026-12-06 (the start from the teacher's weights and its forecasts of the
#: training windows, ``START_METHOD``) with one loss term added: what each term adds for today's student.
METHODS.update({START_METHOD + suffix: ({**METHODS[START_METHOD][0], **change}, "best")
                for suffix, change in ADDED_TERMS.items()})


def distill_overrides(overrides: dict) -> dict:
    """A method's ``distill`` settings: its own, on top of :data:`PRESET_DISTILL` where it names that preset."""
    own = {k: v for k, v in overrides.items() if k != "preset"}
    return PRESET_DISTILL | own if overrides.get("preset") else own


def dataset_name(data_cfg) -> str:
    """The builtin data set's name (``data`` for a user's files): the result file's and folders' name; the
    held-out years of one (:data:`evidence_rows.HELD_OUT`) by evidence.py's name for them, so their table does not
    overwrite the tuned years' one."""
    if data_cfg.source != "builtin" or not data_cfg.name:
        return "data"
    years = [str(t) for t in (data_cfg.time_range or [])]
    return next((name for name, h in HELD_OUT.items() if h["of"] == data_cfg.name and h["years"] == years),
                data_cfg.name)


def finished_student(model_dir: Path, wd, distill: dict | None):
    """The student a completed training left in ``model_dir`` (its best weights), or None. ``distill``: the
    method's ``distill`` settings as the run's config holds them (None: the plain student); a student trained
    with other settings (a method whose definition changed since) is refused, not re-scored under the new name."""
    from stkd.checkpoint import load_model
    from stkd.io import read_json

    last = model_dir / "last.json"
    if not (model_dir / "model.json").is_file() or not last.is_file() or not read_json(last).get("finished"):
        return None
    changed = settings_changed(read_json(model_dir / "model.json").get("distill"), distill)
    if changed:
        raise SystemExit(f"{model_dir} holds a student trained with other distill settings than this method's "
                         f"({changed}); remove that folder or pass another --out")
    return load_model(model_dir, adjacency=wd.data.adjacency)[0]


def settings_changed(there: dict | None, now: dict | None) -> str:
    """What differs between the ``distill`` settings a student was trained with and a method's, key by key
    ("": nothing). A setting its card lacks (one added to stkd after it trained) is not counted: it trained as
    the setting's default does, the behaviour from before the setting existed."""
    if there is None or now is None:
        return "" if there is now else f"distill {there!r} there, {now!r} now"
    keys = sorted(k for k in set(there) & set(now) if there[k] != now[k])
    return "; ".join(f"{k}: {there[k]!r} there, {now[k]!r} now" for k in keys)


def teacher_fit(teacher_run: Path, base, wd, teacher) -> dict:
    """The chosen teacher's MAE from its soft-label cache on each split: on ``train`` it is how far the
    labels the student learns from are from the ground truth."""
    from stkd.tasks.forecast import ForecastTask

    signal = ForecastTask(base, wd).teacher_signal(Path(teacher_run), [teacher])
    return {split: signal.mae(wd, split) for split in ("train", "val", "test")}


def method_setup(teacher_run: Path, student: str, lags: list[str] | None) -> SimpleNamespace:
    """What every (method, seed) of a teacher run shares: the run's config (``base``), its windows (``wd``) and what
    the student reads of them (``swd``), its teachers (``chosen_by``: ``best``, the one lowest on validation, and
    ``all``), and the student's model and params."""
    from stkd.config import InputsConfig
    from stkd.data.windows import load_windowed
    from stkd.runs import load_run, load_trained

    base, _ = load_run(teacher_run)
    wd = load_windowed(base.data)
    teachers = load_trained(teacher_run, wd, roles=("teacher",))
    chosen_by = {"best": [min(teachers, key=lambda t: t.val_mae)], "all": teachers}
    dataset = dataset_name(base.data)
    if dataset in DATASETS:  # on akl-pedestrians the teacher run is the preset's: its STID for `stid`, as in the evidence
        chosen = student_config(dataset, student, base)
        model_name, params = chosen.name, chosen.params
    else:
        model_name, params = STUDENTS[student]
    return SimpleNamespace(base=base, wd=wd, swd=wd.view(InputsConfig(lags=list(lags))) if lags else wd,
                           chosen_by=chosen_by, model_name=model_name, params=params)


def method_config(setup: SimpleNamespace, method: str, seed: int, device: str, quick: bool,
                  lags: list[str] | None, lr: float | None, schedule: tuple[int, int] | None, min_epochs: int | None):
    """The config one (method, seed) trains its student under (:func:`run` gives the arguments)."""
    from stkd.config import parse_config, to_dict

    overrides = METHODS[method][0]
    raw = to_dict(setup.base)
    raw["student"] = {"name": setup.model_name, "params": dict(setup.params), "epochs": None, "lr": lr}
    if lags:
        raw["student"]["inputs"] = {"lags": list(lags)}
    raw["train"].update(seed=seed, device=device)
    if schedule:
        raw["train"].update(epochs=schedule[0], patience=schedule[1])
    if min_epochs:
        raw["train"].update(min_epochs=min_epochs)
    if quick:
        raw["train"].update(epochs=2, max_batches=5)
    if overrides:
        raw["distill"].update(distill_overrides(overrides))
    return parse_config(raw)


def method_dir(out: Path, method: str, seed: int) -> Path:
    """The folder of one (method, seed): the method's name made a folder name."""
    return out / "".join(c if c.isalnum() or c in ".-" else "_" for c in method) / f"seed-{seed}"


def student_folder(setup: SimpleNamespace, method: str) -> str:
    """The student's model folder in its run folder: distilled or plain."""
    return f"{setup.model_name}_{'kd' if METHODS[method][1] else 'plain'}"


def train_method(setup: SimpleNamespace, cfg, teacher_run: Path, out: Path, method: str, seed: int):
    """Train one (method, seed)'s student under ``cfg`` in its folder, from the method's teachers (none for the
    plain student); the same call in turn (:func:`run`) and in a process of its own (:func:`train_method_student`).
    Returns the trained model."""
    from stkd.pipeline import train_student
    from stkd.tasks.forecast import ForecastTask

    names = METHODS[method][1]
    task = ForecastTask(cfg, setup.wd)
    signal = task.teacher_signal(teacher_run, setup.chosen_by[names]) if names else None
    run_dir = method_dir(out, method, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    return train_student(task, run_dir, signal, progress=False).model


def train_method_student(job: dict, slot: int) -> None:
    """One (method, seed) of :func:`run` trained in a process of its own (``--workers 2``; ``slot`` unused: the
    student trains without a progress bar): rebuilt from ``job``, all of :func:`run`'s arguments that shape the
    student, as JSON carries them. :func:`run` then reads the finished student back as it reads one trained before."""
    setup = method_setup(Path(job["teacher_run"]), job["student"], job["lags"])
    cfg = method_config(setup, job["method"], job["seed"], job["device"], job["quick"], job["lags"], job["lr"],
                        job["schedule"], job["min_epochs"])
    train_method(setup, cfg, Path(job["teacher_run"]), Path(job["out"]), job["method"], job["seed"])


def run(teacher_run: Path, out: Path, seeds: list[int], device: str, student: str, quick: bool,
        records: list[dict], save, methods: list[str], lags: list[str] | None = None,
        lr: float | None = None, schedule: tuple[int, int] | None = None,
        min_epochs: int | None = None, workers: int = 1) -> tuple[list[dict], dict]:
    """Train and score every (method, seed) not in ``records``; ``save(records, fit)`` after each (``fit``:
    :func:`teacher_fit` of the single-teacher methods' teacher); ``lags``: the student also reads these lagged
    channels (``student.inputs.lags``); ``lr``: the student's own learning rate (``student.lr``; None: the
    teacher run's ``train.lr``); ``schedule`` (epochs, patience) and ``min_epochs``: the student's own schedule
    and the epoch before which it never stops early (None: the teacher run's ``train``; the teacher is trained
    already, so the run's ``train`` is the students' alone here). With ``workers`` of 2 or more the students not
    yet trained train that many at once first (``common.train_side_by_side``), then every one is scored here."""
    from stkd.config import to_dict
    from stkd.evaluate import evaluate_forecaster, model_forecaster

    setup = method_setup(teacher_run, student, lags)
    chosen_by, swd = setup.chosen_by, setup.swd
    fit = teacher_fit(teacher_run, setup.base, setup.wd, chosen_by["best"][0])
    done = {(r["method"], r["seed"]) for r in records}
    todo = [(m, seed) for m in methods if not (METHODS[m][1] == "all" and len(chosen_by["all"]) < 2)
            for seed in seeds if (m, seed) not in done]  # one teacher: "all" is the same as "response a=0.5"

    def finished(method: str, seed: int):
        cfg = method_config(setup, method, seed, device, quick, lags, lr, schedule, min_epochs)
        return cfg, finished_student(method_dir(out, method, seed) / "models" / student_folder(setup, method),
                                     setup.wd, to_dict(cfg.distill) if METHODS[method][1] else None)

    found = {}  # with workers: what each (method, seed) had before they trained, so none is loaded twice
    if workers > 1:
        found = {key: finished(*key) for key in todo}
        jobs = [{"teacher_run": str(teacher_run), "out": str(out), "student": student, "method": m, "seed": seed,
                 "device": device, "quick": quick, "lags": lags, "lr": lr, "schedule": schedule,
                 "min_epochs": min_epochs} for m, seed in todo if found[m, seed][1] is None]
        if jobs:
            train_side_by_side("distill_gain.train_method_student", jobs, workers,
                               lambda j: f"{j['method']} seed {j['seed']}")
    for method, seed in todo:
        overrides, names = METHODS[method]
        cfg, model = found.get((method, seed), (None, None))
        if model is None:  # not looked at yet, or trained by a worker since
            cfg, model = finished(method, seed)
        if model is None:
            model = train_method(setup, cfg, Path(teacher_run), out, method, seed)
        model.cpu()
        mae = {split: evaluate_forecaster(model_forecaster(model, swd), swd, split, [3, 6, 12],
                                          keep_bytes=0).metrics["mae"] for split in ("val", "test")}
        records.append({"method": method, "seed": seed, "val_mae": mae["val"], "test_mae": mae["test"],
                        "teachers": [t.name for t in chosen_by[names]] if names else [],
                        "distill": distill_overrides(overrides) if overrides else None, "workers": workers,
                        "command": command()})
        save(records, fit)
        print(f"{method:32s} seed {seed}: val MAE {mae['val']:.4f}, test MAE {mae['test']:.4f}", flush=True)
    return records, fit


START_ALONE = "teacher's weights, ground truth only (a=1)"


def starts_from_teacher(method: str) -> bool:
    """Whether a method starts the student from the teacher's weights (``distill.init: teacher``)."""
    overrides = METHODS[method][0]
    return bool(overrides) and distill_overrides(overrides).get("init") == "teacher"


def against(by_method: dict[str, dict[int, dict]], method: str, base: str, what: str) -> str | None:
    """``method`` against ``base``, paired by seed on the seeds both have: the test gain (``what`` names it) and
    the mean validation MAE of each with the seeds where ``method``'s is lower; None where they share no seed."""
    from stkd.paired import describe_gain, paired_gain

    seeds = sorted(s for s in by_method.get(method, {}) if s in by_method.get(base, {}))
    if not seeds:
        return None
    theirs = [by_method[base][s] for s in seeds]
    mine = [by_method[method][s] for s in seeds]
    g = paired_gain([r["test_mae"] for r in theirs], [r["test_mae"] for r in mine])
    lower = sum(m["val_mae"] < t["val_mae"] for m, t in zip(mine, theirs))
    return (describe_gain(g, what) + f" Validation MAE {np.mean([r['val_mae'] for r in mine]):.3f} against "
            f"{np.mean([r['val_mae'] for r in theirs]):.3f} (lower on {lower} of {len(seeds)} seeds).")


def beyond_the_start(by_method: dict[str, dict[int, dict]]) -> list[str]:
    """Per method that starts from the teacher's weights and also learns from the teacher, what that adds to
    the same start with the ground truth alone (:data:`START_ALONE`), paired by seed: where the start does
    the work, the soft labels' own share is this comparison, not the one against the plain student."""
    out = []
    for method in [m for m in METHODS if m in by_method and m != START_ALONE and starts_from_teacher(m)]:
        said = against(by_method, method, START_ALONE, f"learning from the teacher in `{method}`")
        if said:
            out.append(f"- Against the same start with the ground truth alone (`{START_ALONE}`): {said}")
    return out


#: The 2026-12-05 preset's distillation and the same without the teacher's forecasts of augmented windows (the
#: preset's since 2026-12-06; the teacher run's config gives it the preset's Huber loss).
WITHOUT_AUGMENT = (PRESET_METHOD, START_METHOD)


def augmented_windows(by_method: dict[str, dict[int, dict]]) -> list[str]:
    """What the teacher's forecasts of augmented windows add to the objective without them (:data:`WITHOUT_AUGMENT`),
    paired by seed: the choice the preset of 2026-12-06 made, on every data set that has both methods."""
    with_them, without = WITHOUT_AUGMENT
    said = against(by_method, with_them, without, f"adding the augmented windows of `{with_them}`")
    return [f"- Against the same objective without them (`{without}`, today's preset's): {said}"] if said else []


def added_terms(by_method: dict[str, dict[int, dict]]) -> list[str]:
    """What each loss term of :data:`ADDED_TERMS` adds to today's objective (:data:`START_METHOD`), paired by seed:
    the question the table of today's student asks, where the comparison with the plain student would count the
    start's and the soft labels' share too."""
    out = []
    for suffix in ADDED_TERMS:
        said = against(by_method, START_METHOD + suffix, START_METHOD, f"adding{suffix.removeprefix(' +')}")
        if said:
            out.append(f"- Against today's objective alone (`{START_METHOD}`): {said}")
    return out


def records_by_method(result: dict) -> dict[str, dict[int, dict]]:
    by_method: dict[str, dict[int, dict]] = {}
    for r in result["records"]:
        by_method.setdefault(r["method"], {})[r["seed"]] = r
    return by_method


def method_rows(result: dict) -> dict[str, dict]:
    """Per method (the plain student's row left out), on the seeds the plain student has too: the paired
    comparison in the shape of :func:`evidence_compare.row_summary` (``teacher``: the single teacher's test MAE from its
    cache; None for the several-teachers method), which the targets block reads like an evidence row."""
    by_method = records_by_method(result)
    plain = by_method.get(PLAIN, {})
    fit = result.get("teacher_fit") or {}
    out = {}
    for method in [m for m in METHODS if m in by_method and m != PLAIN]:
        seeds = sorted(s for s in by_method[method] if s in plain)
        if seeds:
            single = METHODS[method][1] == "best"
            out[method] = paired_row(result.get("dataset", ""), [plain[s]["test_mae"] for s in seeds],
                                     [by_method[method][s]["test_mae"] for s in seeds],
                                     fit.get("test") if single else None,
                                     [plain[s]["val_mae"] for s in seeds],
                                     [by_method[method][s]["val_mae"] for s in seeds],
                                     fit.get("val") if single else None)
    return out


def render(result: dict) -> str:
    from stkd.paired import describe_gain, gain_cell

    by_method = records_by_method(result)
    summaries = method_rows(result)
    rows = ["| method | seeds | val MAE | test MAE (mean ± std) | mean gain vs plain (95 % interval) | wins |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    verdicts, val = [], {}
    for method in [m for m in METHODS if m in by_method]:
        recs = by_method[method]
        val[method] = float(np.mean([r["val_mae"] for r in recs.values()]))
        cells = f"| {method} | {len(recs)} | {val[method]:.3f} | {mean_std([r['test_mae'] for r in recs.values()])} |"
        if method not in summaries:
            rows.append(cells + " | |")
            continue
        g = summaries[method]["gain"]
        rows.append(cells + f" {gain_cell(g)} | {g['wins']}/{g['n']} |")
        verdicts.append("- " + describe_gain(g, method))
    verdicts += beyond_the_start(by_method) + augmented_windows(by_method) + added_terms(by_method)
    text = ""
    kd = [m for m in val if m != PLAIN]
    if kd:
        best = min(kd, key=val.get)
        text = (f"Lowest mean validation MAE among the methods: **{best}** ({val[best]:.3f}"
                + (f" against {val[PLAIN]:.3f} for the plain student" if PLAIN in val else "") + ").\n\n")
    first = result["records"][0] if result["records"] else {}
    single = next((r["teachers"] for r in result["records"] if r["method"] == "response a=0.5"), None)
    several = next((r["teachers"] for r in result["records"] if r["method"] == "several teachers (val-weighted)"), None)
    teachers = ""
    if single:
        teachers = f"Teacher: {', '.join(single)} (the run's best on validation) for the single-teacher methods"
        teachers += (f"; {', '.join(several)} for several teachers.  \n" if several
                     else "; the run has one teacher, so there is no several-teachers row.  \n")
    fit = result.get("teacher_fit")
    if fit:
        closer = 100 * (1 - fit["train"] / fit["val"])
        teachers += (f"The teacher's MAE from its cached soft labels: {fit['train']:.3f} on the training windows the "
                     f"student learns from, {fit['val']:.3f} on validation, {fit['test']:.3f} on test (on the "
                     f"training windows its labels are {abs(closer):.0f} % {'closer to' if closer >= 0 else 'farther from'} "
                     "the truth than on validation).  \n")
    commands = sorted({r.get("command", result["command"]) for r in result["records"]})
    n_seeds = len({r["seed"] for r in result["records"]})
    data = f"{result['dataset']}, " if result.get("dataset") else ""
    student = result["student"] + (lags_label(result["student_lags"]) if result.get("student_lags") else "")
    student += lr_label(result.get("student_lr"))
    student += schedule_label(result.get("student_schedule"), result.get("student_min_epochs"))
    if any(r["method"].startswith(PRESET_METHOD) for r in result["records"]):
        teachers += (f"{PRESET_METHOD[0].upper()}{PRESET_METHOD[1:]} distillation (the default preset's from 2026-12-05 "
                     "to 2026-12-06): " + ", ".join(f"`{k}: {v}`" for k, v in PRESET_DISTILL.items())
                     + "; each row named after it changes or adds the setting it names.  \n")
    return (f"### Distillation gain per method ({data}{student} student, {n_seeds} seeds, paired with the plain "
            f"student of the same seed)\n\nCommand{'s' if len(commands) > 1 else ''}: "
            + "; ".join(f"`{c}`" for c in commands) + "  \n" + teachers
            + f"{machine_line(result)}\n\n" + "\n".join(rows) + "\n\n" + text + "\n".join(verdicts) + "\n"
            + ("" if first else "No run measured yet.\n"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher-run", type=Path, default=Path("bench-runs/evidence/los-loop/teacher-seed-0"))
    ap.add_argument("--out", type=Path, default=Path("bench-runs/distill_gain"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--student", default="stid", choices=list(STUDENTS),
                    help="a student of benchmarks/evidence.py (stid: the wide STID, on akl-pedestrians the default "
                         "preset's own; stid-nb: reading its neighbours)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS),
                    help="only these methods (default: all; the plain student is always trained)")
    ap.add_argument("--student-lags", nargs="+", default=None, metavar="LAG",
                    help="the student also reads these lagged channels, e.g. 1D 7D (evidence.py's --student-lags): "
                         "another student, in a result file of its own")
    ap.add_argument("--student-lr", type=learning_rate, default=None, metavar="LR",
                    help="the student's own learning rate (student.lr; default: the teacher run's train.lr): "
                         "another training, in a result file of its own")
    ap.add_argument("--student-schedule", type=int, nargs=2, default=None, metavar=("EPOCHS", "PATIENCE"),
                    help="the student's epochs and early-stopping patience (evidence.py's --student-schedule; "
                         "default: the teacher run's): another training, in a result file of its own")
    ap.add_argument("--student-min-epochs", type=int, default=None, metavar="EPOCH",
                    help="no early stop of the student before this epoch (train.min_epochs; evidence.py's "
                         "--student-min-epochs); needs --student-schedule")
    ap.add_argument("--workers", type=int, default=1, metavar="N",
                    help="train N students at once, one process each at a share of the cores (default 1: one after "
                         "the other in this process, at its threads, as every table measured before this option; "
                         "other threads round differently)")
    ap.add_argument("--quick", action="store_true", help="2 epochs of 5 batches: a smoke test, printed, nothing saved")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers: at least 1")
    if problem := min_epochs_problem(args.student_min_epochs, args.student_schedule):
        ap.error(problem)
    from stkd.runs import load_run

    dataset = dataset_name(load_run(args.teacher_run)[0].data)
    lags = list(args.student_lags or [])
    student = args.student + lags_slug(lags)  # the result file's and folders' name
    student += lr_slug(args.student_lr) + schedule_slug(args.student_schedule, args.student_min_epochs)
    section = f"distill-gain-{dataset}-{student}"
    path = RESULTS / f"{section}.json"
    old = json.loads(path.read_text()) if path.is_file() and not args.quick else {}
    records = old.get("records", [])
    methods = [PLAIN, *(m for m in args.methods if m != PLAIN)]
    run_args = vars(args) | {"teacher_run": None, "out": None}

    def save(recs: list[dict], fit: dict) -> None:
        if args.quick:
            return
        merged = merged_records(path, recs, lambda r: (r["method"], r["seed"]))  # other methods may run beside
        save_result(section, "distill_gain", {"dataset": dataset, "student": args.student, "student_lags": lags,
                                              "student_lr": args.student_lr, "student_schedule": args.student_schedule,
                                              "student_min_epochs": args.student_min_epochs,
                                              "teacher_fit": fit, "records": merged}, run_args)

    out = (args.out / "quick" if args.quick else args.out) / dataset / student
    records, fit = run(args.teacher_run, out, args.seeds, args.device, args.student, args.quick, records, save,
                       methods, lags, args.student_lr, args.student_schedule, args.student_min_epochs, args.workers)
    if args.quick:
        print(render({"dataset": dataset, "student": args.student, "student_lags": lags,
                      "student_lr": args.student_lr, "student_schedule": args.student_schedule,
                      "student_min_epochs": args.student_min_epochs, "records": records,
                      "teacher_fit": fit, "command": command(),
                      "machine": "this machine", "versions": {"stkd": "", "commit": ""}, "date": "today"}))
    elif path.is_file():
        print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
