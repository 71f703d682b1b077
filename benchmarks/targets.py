"""The distillation issue's targets, each beside the value measured for it, and where a gain or a loss holds.

    python benchmarks/targets.py    # writes docs/results/targets.json; python benchmarks/render.py renders it

Nothing is trained here. The block is computed, when the page is rendered, from the result files of the
benchmarks that measured each target (``SOURCES``), so it follows them: a new evidence row that meets a
target turns its line to "met" at the next render. The targets are the issue's (the plain STID's level,
the teacher's bar, distilled / plain on Los-loop and the Auckland default, the default run's time and
table); the same-data targets are judged on rows with the whole training period and every reading (the
rows with less data or outages are a different question, reported in their tables), of the student that the
data set's default deploys (on the Auckland counts the preset's, which reads the lags 1D, 2D, 3D and 7D and trains
at its own learning rate). A distilled / plain target is judged on the row a user would pick without the test
split, the one with the lowest distilled / plain on validation (``chosen_on_validation``), and a distilled /
teacher target on the row whose student is closest to its teacher on validation. The second part lists
every paired comparison on the page where distillation is established better than the same student
alone: the measured frontier of where it pays; the third every one where it is established worse: where it
costs. A row measured at several learning rates of the students counts once, each student at the rate where its
validation MAE is lowest (``evidence_compare.row_comparisons``).
"""

from __future__ import annotations

import json

import numpy as np

from common import RESULTS, save_result, teacher_role
from default_run import wall_time
from distill_gain import method_rows
from events import f1_by_arm
from evidence_compare import row_comparisons, rows_by_student, teacher_bar
from evidence_rows import scarcity, student_rate, teacher_epochs_label, teacher_lags_label
from recipe import TEACHER_CANDIDATES, best_student
from stkd.paired import bound, signed

SOURCES = ("recipe-los-loop", "evidence-los-loop", "evidence-akl-pedestrians", "evidence-akl-pedestrians-2020-2022",
           "evidence-akl-pedestrians-2019",
           "evidence-synthetic-traffic",
           "distill-gain-los-loop-mlp", "distill-gain-los-loop-mlp-nb-id", "distill-gain-synthetic-traffic-stid-nb",
           "distill-gain-akl-pedestrians-stid", "distill-gain-akl-pedestrians-stid-lags-1D-7D",
           "distill-gain-akl-pedestrians-mlp-id-lags-1D-7D", "distill-gain-akl-pedestrians-stid-lags-1D-2D-3D-7D-lr-0.008",
           "distill-gain-akl-pedestrians-stid-nodrop-lags-1D-2D-3D-7D-lr-0.008-epochs-60-patience-12-min-epochs-40",
           "distill-gain-akl-pedestrians-mlp-id-cal-lags-1D-2D-3D-7D-lr-0.008", "default-run",
           "transfer-akl-pedestrians", "transfer-akl-pedestrians-same", "transfer-akl-pedestrians-same-nodes",
           "transfer-los-loop", "transfer-los-loop-same", "transfer-los-loop-same-nodes", "transfer-simulator",
           "transfer-simulator-stid-nb", "events-simulator", "events-los-loop", "kernels")
PLAIN_STID_LOS_LOOP = 3.85  # the independent reference model's level (issue: plain STID at or below it, seed 0)
TEACHER_BELOW_STUDENT = 5.0  # % below the best plain student, on validation
TEACHER_VS_LAST = 0.80  # the teacher at most this times the last-value baseline's test MAE
KD_VS_TEACHER = 1.03  # the distilled student within this times its teacher's test MAE
DEFAULT_RUN_SECONDS = 6 * 60
STUDENT_FAMILIES = ("stid", "mlp")  # the students the issue names for distilled / plain
PLACES = (("los-loop", "Los-loop"), ("akl-pedestrians", "Auckland default"))  # data sets with distilled / plain targets


def load(section: str) -> dict | None:
    """A result file of ``docs/results/`` as it is now; None when it was never written."""
    path = RESULTS / f"{section}.json"
    return json.loads(path.read_text()) if path.exists() else None


def default_student_lags(dataset: str) -> list[str]:
    """What the data set's default student reads besides its window: on the Auckland counts the default
    preset's lags (``src/stkd/presets.py``), elsewhere nothing (the README's configs read the window only)."""
    from stkd.presets import DEFAULT_PRESET

    if dataset != DEFAULT_PRESET["data"]["name"]:
        return []
    return list(DEFAULT_PRESET["student"].get("inputs", {}).get("lags", []))


def default_student_lr(dataset: str) -> float | None:
    """The learning rate of the data set's default student where the default preset gives it one of its own
    (on the Auckland counts: ``student.lr``); None elsewhere (any rate the benchmarks chose)."""
    from stkd.presets import DEFAULT_PRESET

    if dataset != DEFAULT_PRESET["data"]["name"]:
        return None
    return DEFAULT_PRESET["student"].get("lr")


def reads_like_default(measured: dict, dataset: str) -> bool:
    """Whether an evidence record or a per-method result (``student_lags``) is of a student that reads what the
    data set's default student reads (:func:`default_student_lags`) and, for the default's own model where the
    default gives its student a learning rate of its own, trains at it (``evidence_rows.student_rate``): a student at
    another rate is another training of it, and at the rate of 2026-12-05 the plain student trailed its best
    (docs/benchmarks.md, the rows at several learning rates)."""
    from stkd.presets import DEFAULT_PRESET

    lr = default_student_lr(dataset)
    if (lr is not None and family(str(measured.get("student", ""))) == DEFAULT_PRESET["student"]["name"]
            and student_rate(measured, dataset) != float(lr)):
        return False
    return list(measured.get("student_lags") or []) == default_student_lags(dataset)


def whole_period(rows_by: dict[str, list[dict]], dataset: str) -> dict[str, list[dict]]:
    """The rows with the whole training period and every reading, measured under today's rules, of students
    that read what the data set's default student reads (:func:`default_student_lags`): the targets are about
    the student a user of the default deploys; a student reading other inputs is another student."""
    return {s: rows for s, rows in rows_by.items() if scarcity(rows[0]) is None and not rows[0].get("earlier_rule")
            and reads_like_default(rows[0], dataset)}


def line(target: str, asked: str, measured: str, where: str, met: bool) -> dict:
    """One row of the targets table: the target, what the issue asks, the value measured and its row."""
    return {"target": target, "asked": asked, "measured": measured, "where": where, "met": met}


def teacher_lines(recipe: dict, evidence: dict) -> list[dict]:
    """The Los-loop teacher's bar: against the last value (test) and the best plain student (validation), the
    best teacher on validation among the single teacher of the evidence, its ensembles, the extra teachers that
    taught alone, the teachers that read more (privileged: other lags) or trained for other epochs and the
    recipe's candidates, against the best plain student of either benchmark."""
    rows_by = rows_by_student(evidence)
    bar = teacher_bar(evidence, rows_by)
    out = []
    if bar is not None:
        t_test = float(np.mean([r["teacher_mae"] for r in bar["records"]]))
        last = float(np.mean([r["last_value_mae"] for r in bar["records"]]))
        out.append(line("Los-loop: the teacher against the last value (test MAE)", f"at most {TEACHER_VS_LAST:.2f}x",
                        f"{t_test / last:.2f}x ({t_test:.3f} against {last:.3f})",
                        "evidence on Los-loop, the single teacher", t_test / last <= TEACHER_VS_LAST))
    teachers = {}  # name -> validation MAE
    if bar is not None:
        teachers[f"the evidence's teacher, {bar['records'][0]['teacher']}"] = bar["teacher_val"]
    for s, rows in whole_period(rows_by, "los-loop").items():
        if "ensemble_val" in rows[0]:
            teachers[f"ensemble of the row `{s}`"] = float(np.mean([r["ensemble_val"] for r in rows]))
        elif rows[0].get("teacher_val") is not None and (
                ", teachers " in s  # one extra teacher, alone
                or teacher_lags_label("los-loop", rows[0].get("teacher_lags"))  # reading more (privileged)
                or teacher_epochs_label("los-loop", rows[0].get("teacher_epochs"))):  # trained longer or shorter
            teachers[f"the teacher of the row `{s}`"] = float(np.mean([r["teacher_val"] for r in rows]))
    for r in recipe["runs"]:
        if r["variant"] in TEACHER_CANDIDATES:
            teachers[f"recipe candidate {r['variant']}"] = r["val_mae"]
    students = {f"recipe {best_student(recipe)['variant']}": best_student(recipe)["val_mae"]}
    if bar is not None:
        students[f"evidence row `{bar['best']}`"] = bar["best_val"]
    if teachers:
        t_name = min(teachers, key=teachers.__getitem__)
        s_name = min(students, key=students.__getitem__)
        below = 100 * (1 - teachers[t_name] / students[s_name])
        out.append(line("Los-loop: the best teacher against the best plain student (validation MAE)",
                        f"at least {TEACHER_BELOW_STUDENT:g} % below",
                        f"{abs(below):.1f} % {'below' if below >= 0 else 'above'} ({teachers[t_name]:.3f} against "
                        f"{students[s_name]:.3f})", f"{t_name}; {s_name}", below >= TEACHER_BELOW_STUDENT))
    return out


def family(student: str) -> str:
    """``stid`` for ``stid``, ``stid-nb`` and ``stid-nb, 150 epochs``: the student families the issue names."""
    return student.split(",")[0].split("-")[0]


def paired_rows(blobs: dict[str, dict], dataset: str) -> dict[str, tuple[str, dict]]:
    """Every whole-period paired comparison on ``dataset``: ``where -> (student family, row)`` (rows in the shape of
    :func:`evidence_compare.row_summary`), from its evidence (one row per student) and the per-method tables of
    ``distill_gain.py`` (one row per method)."""
    out: dict[str, tuple[str, dict]] = {}
    for section, blob in blobs.items():
        if blob.get("dataset") != dataset:
            continue
        if blob["kind"] == "evidence":
            rows_by = whole_period(rows_by_student(blob), dataset)
            for label, (s, row) in row_comparisons(blob, rows_by).items():
                out[f"row `{label}`"] = (family(s), {**row, "extra_lags": extra_lags(rows_by[s][0])})
        elif blob["kind"] == "distill_gain" and reads_like_default(blob, dataset):
            for m, row in method_rows(blob).items():
                out[f"{section}, method `{m}`"] = (family(blob["student"]), row)
    return out


def extra_lags(record: dict) -> list[str]:
    """The lags an evidence record's teacher read and its student did not (none: the teacher knew no more of
    the past than the student; its edge is its width, depth or what it reads of other sensors)."""
    student = set(record.get("student_lags") or [])
    return [lag for lag in record.get("teacher_lags") or [] if lag not in student]


def chosen_on_validation(rows: dict[str, dict], val: str = "val_ratio", test: str = "ratio") -> str:
    """The row a user would pick from ``rows`` (``where -> row``, :func:`evidence_compare.paired_row`'s shape) without
    looking at the test split: the lowest ratio on validation (``val``: distilled / plain, or ``val_vs_teacher``),
    rows without one after every row with one; ties go to the lower test ratio (``test``). Why: the lowest test
    ratio of many rows is partly luck on the test split (the more rows, the more), so a target judged on it would
    be judged on the split it reports."""
    return min(rows, key=lambda s: (rows[s][val] is None, rows[s][val] or 0.0, rows[s][test]))


def choice_words(rows: dict[str, dict], chosen: str, val: str, test: str) -> tuple[str, str]:
    """What a line says of the row :func:`chosen_on_validation` picked from ``rows``: its validation ratio against
    how many rows had one (for inside the brackets), and the row lowest on test where that is another (named, not
    counted; for after them)."""
    r = rows[chosen]
    lowest = min(rows, key=lambda s: rows[s][test])
    n = sum(x[val] is not None for x in rows.values())
    inside = ("" if r[val] is None else f"; validation {r[val]:.3f}, "
              + ("the only row measured on validation" if n == 1 else f"the lowest of the {n} rows measured on validation"))
    after = ("" if lowest == chosen else f"; the lowest on test, {rows[lowest][test]:.3f}, is the {lowest} "
             f"(validation {fmt_ratio(rows[lowest][val])}), not counted: chosen on the test split")
    return inside, after


def ratio_lines(rows: dict[str, tuple[str, dict]], place: str, dataset: str) -> list[dict]:
    """Per student family, the row chosen on validation (:func:`chosen_on_validation`) with its test distilled /
    plain, naming the row of the lowest test ratio where that is another; and (on Los-loop) the row closest to
    its teacher on validation, the same way (``rows``: :func:`paired_rows`)."""
    out = []
    for fam in STUDENT_FAMILIES:
        mine = {where: r for where, (f, r) in rows.items() if f == fam}
        if not mine:
            continue
        best = chosen_on_validation(mine)
        r = mine[best]
        g = r["gain"]
        inside, after = choice_words(mine, best, "val_ratio", "ratio")
        out.append(line(f"{place}: distilled / plain, {fam} students", f"at most {r['target']:.2f}, established",
                        f"{r['ratio']:.3f} ({signed(g['mean'])} %, 95 % interval {bound(g['ci'][0])} to {bound(g['ci'][1])}, "
                        f"{g['wins']}/{g['n']} seeds{inside}){after}", best, bool(r["met"])))
        taught = {s: r for s, r in mine.items() if r["teacher"] is not None}
        if dataset == "los-loop" and taught:
            near = chosen_on_validation(taught, "val_vs_teacher", "vs_teacher")
            t = taught[near]
            p = t["plain"] / t["teacher"]  # how much of it the student had untaught
            inside, after = choice_words(taught, near, "val_vs_teacher", "vs_teacher")
            out.append(line(f"{place}: distilled / teacher, {fam} students", f"at most {KD_VS_TEACHER:.2f}",
                            f"{t['vs_teacher']:.3f} (its plain student {p:.3f}{inside}){after}", near,
                            t["vs_teacher"] <= KD_VS_TEACHER))
    return out


def fmt_ratio(ratio: float | None) -> str:
    """A ratio to three places, or that it was not measured."""
    return "not measured" if ratio is None else f"{ratio:.3f}"


def teacher_room(rows: dict[str, tuple[str, dict]], place: str) -> list[str]:
    """Per student family, what the teachers measured allow the distilled / plain target at most: a distilled
    student exactly as good as its teacher scores the teacher's test MAE, so no row can reach below its teacher /
    plain. Where even the best such ratio is above the target, the target needs a teacher further ahead of the
    student than any measured, whatever the distillation; where it is below, the teachers are far enough ahead
    and the student falls short of them (``rows``: :func:`paired_rows`)."""
    out = []
    for fam in STUDENT_FAMILIES:
        taught = {where: r for where, (f, r) in rows.items() if f == fam and r["teacher"] is not None}
        if not taught:
            continue
        best = min(taught, key=lambda s: taught[s]["teacher"] / taught[s]["plain"])
        r = taught[best]
        room = r["teacher"] / r["plain"]
        if room > r["target"]:
            beat = 100 * (1 - r["target"] * r["plain"] / r["teacher"])
            verdict = (f"above the {r['target']:.2f} asked: there the distilled student would have to be {beat:.1f} % "
                       "better than its teacher; short of that, the target needs a teacher further ahead of this "
                       "student than any measured")
        else:
            reached = min(x["ratio"] for x in taught.values())
            verdict = (f"below the {r['target']:.2f} asked: a teacher is far enough ahead, and the distilled students "
                       f"reached {reached:.3f} at best")
        out.append(f"- {place}, {fam} students: a distilled student as good as its teacher would reach "
                   f"{room:.3f} of its plain self at best ({best}: teacher {r['teacher']:.3f}, plain {r['plain']:.3f}), "
                   f"{verdict}." + same_lags_room(taught, r))
    return out


def same_lags_room(taught: dict[str, dict], best: dict) -> str:
    """The same bound among the evidence rows whose teacher read no lag the student did not (``extra_lags``
    empty; the per-method tables, which do not record the teacher's lags, are left out): how much of the room is
    left where the teacher's edge is what the student could in principle compute from its own past (width,
    depth, other sensors), not history it never sees."""
    same = {where: r for where, r in taught.items() if r.get("extra_lags") == []}
    if not same:
        return ""
    where = min(same, key=lambda s: same[s]["teacher"] / same[s]["plain"])
    r = same[where]
    room = r["teacher"] / r["plain"]
    if r is best:
        return " That teacher read no lag the student did not."
    side = "below" if room <= r["target"] else "above"
    return (f" Among teachers that read no lag the student did not (their edge is width, depth or other sensors, "
            f"not history the student never sees), the best would allow {room:.3f} ({where}: teacher "
            f"{r['teacher']:.3f}, plain {r['plain']:.3f}), {side} the {r['target']:.2f} asked.")


def teacher_below_plain(models: dict) -> float:
    """How far (%) the teacher's test MAE (:func:`teacher_role`) is below the plain student's, in a run's ``models``
    (metrics.json's, or the kernels benchmark's per arm)."""
    def mae(role: str) -> float:
        m = next(v for v in models.values() if v["role"] == role)
        return m["test"]["mae"] if "test" in m else m["test_mae"]

    return 100 * (1 - mae(teacher_role(models)) / mae("student_plain"))


def default_run_lines(result: dict, kernels: dict | None = None) -> list[dict]:
    """The default run's targets; with the kernels benchmark (``kernels``), the teacher's lead also in the other
    runs of the preset it made (another seed, other kernels, fp32), so one lucky run does not stand alone."""
    m = result["metrics"]["models"]
    role = teacher_role(m)
    teacher, plain = (next(v["test"]["mae"] for v in m.values() if v["role"] == r) for r in (role, "student_plain"))
    below = teacher_below_plain(m)
    where = "the default run" + (", the teachers' ensemble" if role == "teacher_ensemble" else "")
    if kernels:
        # each other outcome of the teacher's lead once: runs whose teacher and plain student repeated another's to
        # the digit (the same kernels; fp32 under every cap) are one outcome, whatever their distilled student did
        # (the lead does not depend on it, and the preset's distillation may have changed since)
        lead = (role, "student_plain")
        outcomes = {tuple(sorted((v["role"], v["test_mae"]) for v in a["models"].values() if v["role"] in lead)):
                    a["models"] for a in kernels["arms"]}
        mine = tuple(sorted((v["role"], v["test"]["mae"]) for v in m.values() if v["role"] in lead))
        others = [teacher_below_plain(v) for k, v in outcomes.items() if k != mine]
        if mine not in outcomes:  # none of its runs repeats the default run: it ran another preset (or machine)
            others = []
            where += ("; `kernels.json` ran the preset of an earlier commit (no run of it repeats the default run's "
                      "teacher and plain student), so its outcomes are not counted here")
        if others:
            held = sum(v >= TEACHER_BELOW_STUDENT for v in others)
            where += (f"; the {len(others)} other outcomes of the preset in `kernels.json` (another seed, other "
                      f"kernels, fp32): {min(others):.1f} % to {max(others):.1f} % below, at least "
                      f"{TEACHER_BELOW_STUDENT:g} % in {held} of {len(others)}")
    return [line("Default run: wall time on 2 cores", f"within {DEFAULT_RUN_SECONDS // 60} min",
                 wall_time(result), "the default run", result["wall_seconds"] <= DEFAULT_RUN_SECONDS),
            line("Default run: the teacher ahead of the plain student (test MAE)",
                 f"clearly: at least {TEACHER_BELOW_STUDENT:g} % below", f"{below:.1f} % below ({teacher:.1f} against "
                 f"{plain:.1f})", where, below >= TEACHER_BELOW_STUDENT)]


def established(blobs: dict[str, dict]) -> list[tuple[str, float]]:
    """Every paired comparison on the page where distillation is established better or worse than the same
    student alone (the interval excludes no change): its words and its mean gain (%, negative: a loss)."""
    from stkd.transfer.report import summarise

    out = []
    for section, blob in blobs.items():
        if blob["kind"] == "evidence":
            for label, (_, row) in row_comparisons(blob, rows_by_student(blob)).items():
                g = row["gain"]
                if g["established"]:
                    out.append((f"{section}, row `{label}`: {g['mean']:+.1f} % ({g['wins']}/{g['n']} seeds)", g["mean"]))
        elif blob["kind"] == "distill_gain":
            for m, row in method_rows(blob).items():
                g = row["gain"]
                if g["established"]:
                    out.append((f"{section}, method `{m}`: {g['mean']:+.1f} % ({g['wins']}/{g['n']} seeds)", g["mean"]))
        elif blob["kind"] == "transfer":
            for h, routes in summarise(blob["transfer"]).items():
                for route in ("kd_source", "kd_finetuned"):
                    g = routes.get(route)
                    if g is not None and g["established"]:
                        out.append((f"{section}, {h} of history, {route}: {g['mean']:+.1f} % against the student "
                                    f"alone ({g['wins']}/{g['n']} seeds)", g["mean"]))
        elif blob["kind"] == "events" and blob["records"]:
            _, g = f1_by_arm(blob["records"])
            if g["established"]:
                out.append((f"{section}: test F1 {g['mean']:+.1f} % ({g['wins']}/{g['n']} seeds)", g["mean"]))
    return out


def gains_and_losses(compared: list[tuple[str, float]]) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The comparisons of :func:`established` where distillation is better than the student alone, and those where
    it is worse."""
    return [c for c in compared if c[1] > 0], [c for c in compared if c[1] < 0]


def source_blobs(result: dict) -> dict[str, dict]:
    """The block's source files as they are now, by section; those never written left out."""
    return {s: b for s in result["sources"] if (b := load(s)) is not None}


def assess(result: dict) -> tuple[list[dict], list[tuple[str, float]]]:
    """Each target's line (:func:`line`) and the established comparisons (:func:`established`: gains and losses),
    from the source files as they are now."""
    lines, compared, _ = assess_blobs(source_blobs(result))
    return lines, compared


def assess_blobs(blobs: dict[str, dict]) -> tuple[list[dict], list[tuple[str, float]], list[str]]:
    """:func:`assess` of the source files ``blobs`` (:func:`source_blobs`) and :func:`teacher_room`'s sentences for
    the places with a distilled / plain target, read once: each place's paired rows serve its ratio lines and its
    room alike."""
    lines: list[dict] = []
    room: list[str] = []
    if "recipe-los-loop" in blobs:
        best = best_student(blobs["recipe-los-loop"])
        lines.append(line("Los-loop: plain STID, seed 0 (test MAE)", f"at most {PLAIN_STID_LOS_LOOP}",
                          f"{best['test_mae']:.3f}", f"recipe, {best['variant']} (chosen on validation)",
                          best["test_mae"] <= PLAIN_STID_LOS_LOOP))
        if "evidence-los-loop" in blobs:
            lines += teacher_lines(blobs["recipe-los-loop"], blobs["evidence-los-loop"])
    for dataset, place in PLACES:
        rows = paired_rows(blobs, dataset)
        lines += ratio_lines(rows, place, dataset)
        room += teacher_room(rows, place)
    if "default-run" in blobs:
        lines += default_run_lines(blobs["default-run"], blobs.get("kernels"))
    return lines, established(blobs), room


def met_count(lines: list[dict]) -> str:
    return f"{sum(x['met'] for x in lines)} of {len(lines)} targets met"


def render(result: dict) -> str:
    lines, compared, room = assess_blobs(source_blobs(result))
    gains, losses = gains_and_losses(compared)
    table = ["| target | asked | measured | where | met |", "| --- | --- | --- | --- | --- |"]
    table += [f"| {x['target']} | {x['asked']} | {x['measured']} | {x['where']} | {'yes' if x['met'] else 'no'} |"
              for x in lines]
    missed = [x["target"] for x in lines if not x["met"]]
    summary = met_count(lines) + (f"; not met: {'; '.join(missed)}." if missed else ".")
    room_text = ("What the teachers allow: a distilled student that matched its teacher would score the teacher's "
                 "test MAE, so the teacher's MAE over the plain student's is the distilled / plain of a student that "
                 "took all of its teacher's edge; below it, distillation would have to make the student better than "
                 "its teacher.\n\n"
                 + "\n".join(room) + "\n\n" if room else "")

    def listed(which: str, found: list[tuple[str, float]]) -> str:  # the comparisons of one sign, or that there are none
        return (f"Where distillation is established {which} than the same student alone ({len(found)} comparisons of "
                "the page):\n\n" + "\n".join(f"- {g}" for g, _ in found) if found else
                f"No comparison on the page establishes distillation {which} than the same student alone.")

    return (f"### The distillation targets against the measured values\n\nCommand: `{result['command']}` (it "
            f"reads {', '.join(f'`{s}.json`' for s in result['sources'])}, as they are when the page is rendered)\n\n"
            + "\n".join(table) + f"\n\n{summary}\n\n{room_text}{listed('better', gains)}\n\n{listed('worse', losses)}\n")


def headline(result: dict) -> str:
    """The README line: how many targets are met, the largest established gain on the page and how many
    comparisons establish a loss."""
    lines, compared = assess(result)
    gains, losses = gains_and_losses(compared)
    best = max(gains, key=lambda g: g[1], default=None)
    return (f"- **Distillation targets** (the issue's: a student clearly better than itself alone): {met_count(lines)}"
            f"; distillation is established better than the student alone in {len(gains)} paired comparisons"
            + (f", the largest {best[0]}" if best else "") + f", and worse in {len(losses)}"
            " ([benchmarks](docs/benchmarks.md#where-distillation-stands)).\n")


def main() -> None:
    save_result("targets", "targets", {"sources": list(SOURCES)})
    print(render(load("targets") or {}))


if __name__ == "__main__":
    main()
