"""Does distillation pay on *your* data? The distilled and the plain student of one teacher, over seeds.

One run compares the distilled student with the same student trained alone from one seed, and a
difference of a few tenths of a percent is what another seed alone can make. ``stkd distill
--teacher-run RUN --seeds 0 1 2 3 4 --out DIR`` trains both students once per seed from the same initial
weights and batches (an ordinary ``stkd distill`` run per seed: the teachers and their soft-label cache are
read from RUN, never retrained), and compares them by :mod:`stkd.paired`'s rule: the mean gain, its 95 %
bootstrap interval over seeds, the wins, and whether the gain is established (enough seeds, an interval
clear of zero, a gain at least the seed spread). The same rule judges every comparison in docs/benchmarks.md.

Output folder (``--out``)::

    config.yaml       the student's config (the seed of each run is in its own folder)
    seeds.json        per seed the distilled and plain student's validation and test score; the
                      comparison on test and on validation; rewritten after each seed, so a stopped call
                      keeps what it finished (``--resume`` continues it)
    seeds.md          the same as a table and sentences computed from it
    seed-<S>/         an ordinary run folder per seed (models, metrics.json, report.md)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stkd.config import RunConfig, distinct_seeds, dump_config, with_seed
from stkd.distributed import barrier, is_rank0
from stkd.errors import STKDError
from stkd.io import write_json, write_text
from stkd.names import TO_TEACHER_METRICS
from stkd.paired import MIN_SEEDS, bound, describe_gain, paired_gain, signed, verdict
from stkd.pipeline import distill_from
from stkd.report.tables import PRIMARY_METRIC, split_value, student_summary
from stkd.runs import prepare_run_dir, require_run_dir, run_lock


def seed_record(seed: int, metrics: dict) -> dict:
    """One seed's scores from its run's metrics.json: the distilled and the plain student, validation and test."""
    s = student_summary(metrics)
    kd, plain = s["student_kd"], s["student_plain"]
    if kd is None or plain is None:
        raise STKDError(f"seed {seed}: the run has no distilled and plain student to compare")
    models = metrics["models"]
    key = s["metric"]
    record: dict[str, Any] = {"seed": int(seed), "metric": key, "student_kd": kd, "student_plain": plain}
    for split in ("test", "val"):
        record[f"kd_{split}"] = split_value(models[kd], key, split)
        record[f"plain_{split}"] = split_value(models[plain], key, split)
    if record["kd_test"] is None or record["plain_test"] is None:
        raise STKDError(f"seed {seed}: the students have no test {key} to compare")
    taught_by = s["taught_by"]
    teacher_test = split_value(models[taught_by], key, "test") if taught_by is not None else None
    if teacher_test is not None:
        record["teacher"], record["teacher_test"] = taught_by, teacher_test
    mine, other = (models[n].get("to_teacher") for n in (kd, plain))
    if mine and other:  # how closely each follows what the distilled one learns from (:mod:`stkd.fidelity`)
        record["to_teacher"] = {"teacher": mine["teacher"], "metric": mine["metric"], "kd": mine["value"],
                                "plain": other["value"]}
        if "probability_gap" in mine and "probability_gap" in other:  # events: how near their probabilities came
            record["to_teacher"].update(kd_gap=mine["probability_gap"], plain_gap=other["probability_gap"])
    return record


def compare(records: Sequence[dict], task: str) -> dict:
    """The paired comparison on test and (where every seed has one) on validation, by :func:`paired_gain`."""
    _, lower = PRIMARY_METRIC[task]
    out: dict[str, Any] = {"test": paired_gain([r["plain_test"] for r in records], [r["kd_test"] for r in records],
                                               lower_is_better=lower)}
    if all(r["kd_val"] is not None and r["plain_val"] is not None for r in records):
        out["val"] = paired_gain([r["plain_val"] for r in records], [r["kd_val"] for r in records],
                                 lower_is_better=lower)
    follows: list[dict] = [r["to_teacher"] for r in records if r.get("to_teacher")]
    if len(follows) == len(records) and all(math.isfinite(f["kd"]) and math.isfinite(f["plain"]) for f in follows):
        # the same rule for "nearer its teacher": per seed the distilled student's change of distance (agreement)
        out["to_teacher"] = paired_gain([f["plain"] for f in follows], [f["kd"] for f in follows],
                                        lower_is_better=TO_TEACHER_METRICS[follows[0]["metric"]])
        if all(math.isfinite(f.get("kd_gap", math.nan)) and math.isfinite(f.get("plain_gap", math.nan))
               for f in follows):  # events: the distance of the probabilities, lower is nearer
            out["probability_gap"] = paired_gain([f["plain_gap"] for f in follows], [f["kd_gap"] for f in follows],
                                                 lower_is_better=True)
    return out


def start_words(result: dict) -> str:
    """What the two students of a seed share: the initial weights too, unless the distilled one started from its
    teacher's (``distill.init: teacher``; results written before the field: the seed's)."""
    if result.get("student_init") == "teacher":
        return ("batches (the distilled one starting from its teacher's weights cut to its size, the plain one from "
                "the seed's)")
    return "initial weights and batches"


def render(result: dict) -> str:
    """seeds.md: the per-seed table and the sentences, computed from ``result`` (seeds.json)."""
    records, task = result["records"], result["task"]
    key, lower = PRIMARY_METRIC[task]
    label = key.upper()
    score = None if lower else label  # describe_gain's wording for a score that rises
    lines = [f"# Distillation across seeds: {result['teacher_run']}", "",
             f"The distilled student and the same student alone, trained from the same {start_words(result)} "
             f"for each seed; the teachers and their soft labels are those of `{result['teacher_run']}`. Gain: the "
             f"relative {'fall of the error' if lower else f'rise of {label}'} (positive: distillation helped); "
             f"established with {MIN_SEEDS} seeds or more, a 95 % bootstrap interval over seeds clear of zero, and "
             "a gain at least the seed spread (the plain student's standard deviation over seeds).", "",
             f"| seed | plain val {label} | distilled val {label} | plain test {label} | distilled test {label} | gain |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    gains = result["comparison"]["test"]["gains"]
    for r, g in zip(records, gains):
        val = [f"{v:.3f}" if v is not None else "n/a" for v in (r["plain_val"], r["kd_val"])]
        lines.append(f"| {r['seed']} | {val[0]} | {val[1]} | {r['plain_test']:.3f} | {r['kd_test']:.3f} | {signed(g)} % |")
    test = result["comparison"]["test"]
    lines += ["", f"- On test: {describe_gain(test, 'distillation', score)} Verdict: **{verdict(test)}**."]
    if "val" in result["comparison"]:
        lines.append(f"- On validation: {describe_gain(result['comparison']['val'], 'distillation', score)}")
    lead = teacher_lead_sentence(records, lower, label, made=test["mean"])
    if lead:
        lines.append(lead)
    if "to_teacher" in result["comparison"]:
        lines.append(following_sentence(records, result["comparison"]["to_teacher"],
                                        result["comparison"].get("probability_gap")))
    return "\n".join(lines) + "\n"


def teacher_lead_sentence(records: Sequence[dict], lower: bool, label: str, made: float) -> str | None:
    """seeds.md's line on how far the teacher (or the teachers' ensemble) is ahead of the plain student over
    the seeds: the gain a distilled student that matched its teacher would make, beside the gain made
    (``made``: the comparison's mean gain on test, %). One
    seed's plain student can flatter the teacher's lead; this is it over every seed. None for records written
    before the teacher's score was kept."""
    if not records or any(r.get("teacher_test") is None for r in records):
        return None

    def ahead(teacher: float, plain: float) -> float:  # %, positive: the teacher is the better
        return 100 * ((plain - teacher) if lower else (teacher - plain)) / abs(plain)

    per_seed = [ahead(r["teacher_test"], r["plain_test"]) for r in records]
    plain_mean = sum(r["plain_test"] for r in records) / len(records)
    teachers = {r["teacher_test"] for r in records}
    teacher = sum(r["teacher_test"] for r in records) / len(records)
    lead = ahead(teacher, plain_mean)
    side = ("below" if lower else "above") if lead >= 0 else ("above" if lower else "below")
    score = f"test {label} {teacher:.3f}" + ("" if len(teachers) == 1 else " on average over the seeds")
    return (f"- The teacher (`{records[0]['teacher']}`, {score}) is {abs(lead):.1f} % {side} the plain student's "
            f"mean over the {len(records)} seeds ({min(per_seed):+.1f} % to {max(per_seed):+.1f} % seed by seed, "
            "positive where the teacher is the better): a distilled student that matched its teacher would "
            f"{'gain' if lead >= 0 else 'lose'} about that much; the distilled students "
            f"{'gained' if made >= 0 else 'lost'} {abs(made):.1f} % on average.")


def following_sentence(records: Sequence[dict], g: dict, gap: dict | None = None) -> str:
    """seeds.md's line on how closely the students follow their teacher (each seed's ``to_teacher``), with the
    paired comparison ``g`` of the two: whether distillation brings the student nearer, by the rule of a gain.
    ``gap``: for events, the same comparison of their probabilities' distance to the teacher's."""
    f = [r["to_teacher"] for r in records]

    def mean(key: str) -> float:
        return sum(x[key] for x in f) / len(f)

    def interval(c: dict) -> str:
        return f"95 % interval {bound(c['ci'][0])} % to {bound(c['ci'][1])} %; on {c['wins']} of {c['n']} seeds"

    kd, plain = mean("kd"), mean("plain")
    if f[0]["metric"] == "agreement":
        where = (f"the distilled student decides the teacher's class on {100 * kd:.1f} % of the scored test targets, "
                 f"the plain one on {100 * plain:.1f} %: distillation changes that agreement by {signed(g['mean'])} % "
                 f"({interval(g)} higher)")
    else:
        where = (f"the distilled student's forecasts are {kd:.3f} from the teacher's on test (mean absolute "
                 f"difference), the plain one's {plain:.3f}: distillation brings the student {signed(g['mean'])} % "
                 f"nearer ({interval(g)} nearer)")
    text = f"- How closely it follows the teacher (`{f[0]['teacher']}`): {where}. Verdict: **{verdict(g)}**."
    if gap is not None:
        text += (f" Its probabilities are {mean('kd_gap'):.3f} from the teacher's (mean total variation), the plain "
                 f"one's {mean('plain_gap'):.3f}: distillation brings them {signed(gap['mean'])} % nearer "
                 f"({interval(gap)} nearer). Verdict: **{verdict(gap)}**.")
    return text


def distill_seeds(cfg: RunConfig, teacher_run: Path, out: Path, seeds: Sequence[int], *, overwrite: bool = False,
                  resume: bool = False, progress: bool = True) -> dict:
    """Distil and train alone the configured student once per seed from ``teacher_run``'s teachers; returns
    seeds.json's content (the module doc has the folder; under DDP the other ranks get no records)."""
    seeds = distinct_seeds(seeds)
    teacher_run = require_run_dir(teacher_run)
    out = Path(out)
    if out.resolve() == teacher_run.resolve():
        raise STKDError(f"--out {out} is the teacher run; give a new folder for the seeds' runs")
    result: dict[str, Any] = {"teacher_run": str(teacher_run), "task": cfg.task, "seeds": seeds, "records": [],
                              "student_init": cfg.distill.init}
    with run_lock(out):
        if is_rank0():  # under DDP (torchrun) every rank trains each seed's students; rank 0 alone writes
            prepare_run_dir(out, overwrite=overwrite, resume=resume)
            if not (out / "config.yaml").is_file():  # a resumed call keeps it: each seed's run refuses another config
                write_text(out / "config.yaml", dump_config(cfg))
        barrier()
        for seed in seeds:
            metrics = distill_from(with_seed(cfg, seed), teacher_run, out / f"seed-{seed}", resume=resume,
                                   progress=progress)
            if is_rank0():
                result["records"].append(seed_record(seed, metrics))
                result["comparison"] = compare(result["records"], cfg.task)
                write_json(out / "seeds.json", result)  # after every seed: a stopped call keeps its part
        if is_rank0():
            write_text(out / "seeds.md", render(result))
        barrier()
    return result
