"""The sentences that compare one row of an evidence result file (``benchmarks/evidence.py``) with a related row.

Each ``*_gap`` function takes a row's records (one per seed) and the file's rows by label
(``evidence_compare.rows_by_student``); where the row differs from another by one setting (less data, the teacher's scope,
lags or epochs, augmented inputs, copies of a teacher, alpha, the loss, the students' start, schedule, early-stop
floor, learning rate, lags, calendar, size or dropout; the same row on the years the settings were chosen on) it
finds that row by the mark the setting leaves in the label (:mod:`evidence_rows`) and says what the change did, on
the seeds both rows have; it returns "" where there is nothing to compare. :func:`splits_disagree` says where one
row's gain on validation and on test disagree. ``evidence.render`` appends these sentences to each row's verdict.
The helpers only these comparisons use are here too, and two choices that ``evidence_compare.row_comparisons`` (the rows as
the targets block and the headroom benchmark count them) reads as well: each student's best learning rate
(:func:`lr_choice`) and a row's twin with or without dropout (:func:`dropout_twin`).

Why apart from ``evidence.py``: that script trains rows, summarises them and renders the page; this is the part that
interprets finished records, grown with every setting the evidence measured (it was half of the script). It trains
nothing and reads no file. It takes row names and usual settings from :mod:`evidence_rows` and nothing from
``evidence`` (which imports it), so there is no import cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from evidence_rows import (
    DISTILL,
    INIT_LABEL,
    LR_MARK,
    NO_DROPOUT,
    SCOPE_LABEL,
    STUDENTS,
    TRAIN_LOSS,
    USUAL_TEACHER_EPOCHS,
    augment_label,
    extra_epochs_label,
    lags_label,
    loss_label,
    min_epochs_mark,
    scarcity,
    student_rate,
    teacher_epochs_label,
    teacher_lags_label,
    usual_rate,
)


def seeds_mean(rows: list[dict], key: str, fallback: str | None = None, seeds: set[int] | None = None) -> float:
    """The mean of ``key`` over a row's records (only those of ``seeds`` when given, so that two rows compare on
    the seeds both have); ``fallback`` where a record lacks ``key`` (``ensemble_mae``, else ``teacher_mae``: the
    ensemble's own score where one was recorded, the single teacher's otherwise)."""
    return float(np.mean([r.get(key, r[fallback]) if fallback else r[key] for r in rows
                          if seeds is None or r["seed"] in seeds]))


def teacher_val_mean(rows: list[dict], seeds: set[int] | None = None) -> float | None:
    """The teacher's mean validation MAE over a row's records (those of ``seeds`` when given): the ensemble's own
    (``ensemble_val``) where recorded, the single teacher's (``teacher_val``) otherwise; None where a record has
    neither (written before validation MAEs were kept), so that no row is judged on part of its seeds."""
    vals = [r.get("ensemble_val", r.get("teacher_val")) for r in rows if seeds is None or r["seed"] in seeds]
    return None if not vals or any(v is None for v in vals) else float(np.mean(vals))


def shared_seeds(rows: list[dict], other: list[dict] | None) -> set[int]:
    """The seeds both rows have (none where the other row was not measured): two rows compare on those only."""
    return {r["seed"] for r in rows} & {r["seed"] for r in other} if other else set()


def history_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For rows trained on less data (a shorter history, or outages): how much worse the plain student is than
    the same student (same teachers) trained on all of it, and how much of that gap distillation closes."""
    lack = scarcity(rows[0])
    # the same student with all the data (its teacher's scope makes no difference where nothing is missing)
    full = by_student.get(rows[0]["student"].removesuffix(lack[0]).removesuffix(SCOPE_LABEL)) if lack else None
    if not full or not lack:
        return ""
    plain_h, kd_h, plain_full = seeds_mean(rows, "plain_mae"), seeds_mean(rows, "kd_mae"), seeds_mean(full, "plain_mae")
    teacher_h, teacher_full = seeds_mean(rows, "ensemble_mae", "teacher_mae"), seeds_mean(full, "ensemble_mae", "teacher_mae")
    teacher_val = seeds_mean(rows, "ensemble_val", "teacher_val")  # what the student learns from, as the table's column
    gap = plain_h - plain_full
    text = (f" With {lack[1]} the plain student's test MAE is {plain_h:.3f}, against {plain_full:.3f} "
            f"{lack[2]} ({100 * gap / plain_full:+.1f} %), and the teacher's {teacher_h:.3f} "
            f"against {teacher_full:.3f} ({100 * (teacher_h - teacher_full) / teacher_full:+.1f} %); on validation "
            f"the teacher's MAE is {teacher_val:.3f} against the plain student's {seeds_mean(rows, 'plain_val'):.3f}")
    if gap <= 0:
        return text + "."
    closed = 100 * (plain_h - kd_h) / gap
    return text + (f"; distillation closes {closed:.0f} % of the student's gap." if closed >= 0 else
                   f"; the distilled student is {-closed:.0f} % of that gap further from the whole period's.")


def kd_gap(rows: list[dict], other: list[dict], this_words: str, other_words: str, who: str = "kd") -> str:
    """The distilled student (``who="plain"``: the plain one) of ``rows`` against that of ``other`` (the same row
    less one change), on validation and test over the seeds both have: `` {this_words}, the distilled student's
    validation MAE is ... against ... {other_words}, ...``."""
    seeds = shared_seeds(rows, other)
    val_key, test_key = f"{who}_val", f"{who}_mae"
    mean = {key: tuple(float(np.mean([r[key] for r in rs if r["seed"] in seeds])) for rs in (rows, other))
            for key in (val_key, test_key)}
    this_by, other_by = ({r["seed"]: r for r in rs} for rs in (rows, other))
    lower = {key: sum(this_by[s][key] < other_by[s][key] for s in seeds) for key in (val_key, test_key)}
    (val, val_o), (test, test_o) = mean[val_key], mean[test_key]
    student = "distilled" if who == "kd" else "plain"
    return (f" {this_words}, the {student} student's validation MAE is {val:.3f} against {val_o:.3f} {other_words} "
            f"(lower on {lower[val_key]} of {len(seeds)} seeds), and its test MAE {test:.3f} against {test_o:.3f} "
            f"({100 * (test - test_o) / test_o:+.1f} %, lower on {lower[test_key]} of {len(seeds)}; the "
            f"{len(seeds)} seeds both rows have{machines_apart([*rows, *other], seeds)}).")


def machines_apart(records: list[dict], seeds: set) -> str:
    """``; ...`` where the records that two rows compare were not all measured on one recorded machine: other
    CPU kernels round differently, so part of a small difference between rows may be the machine's
    (``benchmarks/kernels.py``); empty where one machine measured them all."""
    machines = {r.get("machine") for r in records if r["seed"] in seeds}
    if len(machines) == 1 and None not in machines:
        return ""
    if None in machines:
        return "; not all on one recorded machine, and other CPU kernels round differently: `benchmarks/kernels.py`"
    return (f"; measured on {len(machines)} machines, {' and '.join(sorted(machines))}, whose CPU kernels round "
            "differently: `benchmarks/kernels.py`")


def row_without(rows: list[dict], by_student: dict[str, list[dict]], mark: str) -> list[dict] | None:
    """The records of the row named as ``rows``'s less ``mark`` (its first occurrence): the same row without the
    one change the mark names, which a row's sentence sets it against; None where the label lacks the mark or that
    row was not measured."""
    label = rows[0]["student"]
    if not mark or mark not in label:
        return None
    other = by_student.get(label.replace(mark, "", 1))
    return other if other and other is not rows else None


def scope_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose students counted the teacher only where inputs were observed (``SCOPE_LABEL``): its
    distilled student against the row that counted it everywhere, on validation and test (same seeds)."""
    other = row_without(rows, by_student, SCOPE_LABEL)
    if not other:
        return ""
    return kd_gap(rows, other, "Counting the teacher only where the inputs were observed", "counting it everywhere")


def augment_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose distilled students also learned the teacher's forecasts of augmented inputs: its
    distilled student against the same row without them (same teachers, schedule and seeds)."""
    first = rows[0]
    if not first.get("augment"):
        return ""
    augment = {k: first[k] for k in ("augment", "augment_labels", "augment_weight")}
    other = row_without(rows, by_student, f", {augment_label(augment)}")  # lags may follow it
    if not other:
        return ""
    return kd_gap(rows, other, f"With the teacher's forecasts of {augment_label(augment)} inputs", "without them")


COPIES_MARK = re.compile(r"^([^,]*), teachers (\d+) ([\w.-]+),")  # a row taught by copies of one teacher alone


def copies_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row taught by several copies of one teacher, seeds apart (``teachers 4 stid-64``): its distilled student
    against the same row taught by the first of them alone (``teachers stid-64``), same schedule and seeds: what
    the copies' averaged forecasts add to one teacher's."""
    found = COPIES_MARK.match(rows[0]["student"])
    other = by_student.get(COPIES_MARK.sub(r"\1, teachers \3,", rows[0]["student"], count=1)) if found else None
    if not other:  # the label without the count always differs from the row's own
        return ""
    return kd_gap(rows, other, f"Taught by {found[2]} copies of {found[3]} (seeds apart)", "by the first alone")


def alpha_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose distilled students weighed the ground truth otherwise (``--alpha``): its distilled student
    against the same row with the usual weight (:data:`DISTILL`), same teachers, schedule and seeds."""
    alpha = rows[0].get("alpha")
    other = row_without(rows, by_student, f", alpha {alpha:g}" if alpha is not None else "")
    if not other:
        return ""
    return kd_gap(rows, other, f"With alpha {alpha:g}", f"with alpha {DISTILL['alpha']:g}")


def loss_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose students trained under another loss (``--loss``): both students against the same row
    under the data set's loss (same teachers, schedule and seeds): the loss is both arms' choice, so each moves."""
    other = row_without(rows, by_student, loss_label(rows[0].get("loss")))
    if not other:
        return ""
    usual = other[0].get("loss") or TRAIN_LOSS
    this_words, other_words = f"With the {rows[0]['loss']} loss", f"with {usual}"
    return (kd_gap(rows, other, this_words, other_words, who="plain")
            + kd_gap(rows, other, this_words, other_words))


def lr_family(rows: list[dict], by_student: dict[str, list[dict]], dataset: str) -> dict[float, list[dict]]:
    """The rows that differ from ``rows`` by the students' learning rate alone (``--student-lr``), ``rows``
    among them: learning rate -> records, lowest first (a record without ``student_lr`` trained at the data
    set's). Empty where no other learning rate was measured."""
    base = LR_MARK.sub("", rows[0]["student"], count=1)
    family = {student_rate(rs[0], dataset): rs for label, rs in by_student.items()
              if LR_MARK.sub("", label, count=1) == base}
    return dict(sorted(family.items())) if len(family) > 1 else {}


def same_plain(a: list[dict], b: list[dict]) -> bool:
    """Whether two rows hold the same plain student: the same test MAE on every seed both have (the plain
    student learns from no teacher, so rows that differ in their teachers or objective alone share it)."""
    seeds = shared_seeds(a, b)
    plain_a, plain_b = ({r["seed"]: r["plain_mae"] for r in rs} for rs in (a, b))
    return bool(seeds) and all(plain_a[s] == plain_b[s] for s in seeds)


def lr_anchor(family: dict[float, list[dict]], dataset: str) -> float | None:
    """The rate of the row that speaks for a family of learning rates (:func:`lr_family`): the data set's rate
    where the family was measured at it, else the family's lowest (a student measured at other rates only, e.g.
    one added after the data set's students moved to their own rate); None for no family."""
    if not family:
        return None
    usual = usual_rate(dataset)
    return usual if usual in family else min(family)


def speaks_for_rates(rows: list[dict], family: dict[float, list[dict]], dataset: str) -> bool:
    """Whether ``rows`` is the row that speaks for its family of learning rates (``family``: :func:`lr_family` of
    it), at :func:`lr_anchor`'s rate, the data set's own unmarked; a row without a family speaks for itself where
    it trained at the data set's rate, unmarked. The sentence (:func:`lr_choice`) and the count
    (:func:`row_comparisons`) both ask this."""
    usual = usual_rate(dataset)
    anchor = lr_anchor(family, dataset) or usual
    return student_rate(rows[0], dataset) == anchor and not (anchor == usual and LR_MARK.search(rows[0]["student"]))


def lr_choice(rows: list[dict], by_student: dict[str, list[dict]], dataset: str) -> dict | None:
    """For the row that speaks for a family of learning rates (:func:`lr_anchor`): its own rows at other rates
    (:func:`lr_family`); for a row at the data set's rate measured at that rate alone, for its plain student,
    those of another row holding the same plain student (:func:`same_plain`: rows that differ in their teacher
    or objective alone). Returns each student's mean validation MAE at each rate it was measured at (``val``:
    arm -> rate -> MAE, over the ``seeds`` every rate has), the rate where it is lowest (``best``: arm -> rate),
    and the two students at those
    rates (``plain_mae``, ``kd_mae``: test MAE per seed, ``plain_val``, ``kd_val``: validation MAE per seed,
    ``teacher``, ``teacher_val``: the teacher's mean test and validation MAE); None for a row
    at another rate, or without other rates or shared seeds. Why: the two students share one rate in a row, and a
    rate that suits one more than the other moves the gain; the fair comparison pits each student at its own best
    rate, chosen on validation as a user would."""
    usual, family = usual_rate(dataset), lr_family(rows, by_student, dataset)
    if not speaks_for_rates(rows, family, dataset):
        return None  # another row speaks for the family, or a row at another rate measured at that one alone
    anchor = lr_anchor(family, dataset) or usual
    kd_family = family or {usual: rows}
    plain_family = kd_family
    if len(kd_family) == 1:  # the plain student may have been measured at other rates in another row
        plain_family = next((fam for rs in by_student.values()
                             if (fam := lr_family(rs, by_student, dataset)) and usual in fam
                             and same_plain(fam[usual], rows)), kd_family)
    families = {"plain": plain_family, "kd": kd_family}
    every = [rs for fam in families.values() for rs in fam.values()]
    seeds = sorted(set.intersection(*({r["seed"] for r in rs} for rs in every)))
    if len(plain_family) == 1 or not seeds:
        return None
    val = {arm: {lr: seeds_mean(rs, f"{arm}_val", seeds=set(seeds)) for lr, rs in fam.items()}
           for arm, fam in families.items()}
    best = {arm: min(v, key=v.__getitem__) for arm, v in val.items()}
    pick = {arm: {r["seed"]: r for r in families[arm][best[arm]]} for arm in best}
    return {"seeds": seeds, "val": val, "best": best, "shared": plain_family is kd_family,
            "plain_row": plain_family[usual if plain_family is not kd_family else anchor][0]["student"],
            "plain_mae": [pick["plain"][s]["plain_mae"] for s in seeds],
            "kd_mae": [pick["kd"][s]["kd_mae"] for s in seeds],
            "plain_val": [pick["plain"][s]["plain_val"] for s in seeds],
            "kd_val": [pick["kd"][s]["kd_val"] for s in seeds],
            "teacher": seeds_mean(kd_family[best["kd"]], "ensemble_mae", "teacher_mae", seeds=set(seeds)),
            "teacher_val": teacher_val_mean(kd_family[best["kd"]], seeds=set(seeds))}


def lr_gap(rows: list[dict], by_student: dict[str, list[dict]], dataset: str) -> str:
    """For the row that speaks for a family of learning rates (:func:`lr_choice`): each student's mean validation
    MAE at each rate, and distillation's gain with each student at its own best rate."""
    from stkd.paired import describe_gain, paired_gain

    choice = lr_choice(rows, by_student, dataset)
    if choice is None:
        return ""
    val, best = choice["val"], choice["best"]
    g = paired_gain(choice["plain_mae"], choice["kd_mae"])
    n = len(choice["seeds"])
    if choice["shared"]:
        rates = "; ".join(f"{lr:g}: plain {val['plain'][lr]:.3f}, distilled {val['kd'][lr]:.3f}" for lr in val["plain"])
        head = (f" The students' learning rate (mean validation MAE over the {n} seeds every rate has; {rates}): the "
                f"plain student does best at {best['plain']:g}, the distilled one at {best['kd']:g}.")
    else:
        rates = "; ".join(f"{lr:g}: {v:.3f}" for lr, v in val["plain"].items())
        head = (f" Its plain student is the row `{choice['plain_row']}`'s, measured there at other learning rates "
                f"too (mean validation MAE over the {n} seeds every rate has; {rates}): it does best at "
                f"{best['plain']:g}; the distilled student here was measured at {best['kd']:g} only.")
    return head + " Each at its own best rate, " + describe_gain(g, "distillation")


def init_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose distilled students started from the first teacher's weights cut to their size
    (``--student-init teacher``): its distilled student against the same row's started from the seed's weights
    (same teachers, schedule and seeds; the plain students are the same in both)."""
    other = row_without(rows, by_student, INIT_LABEL) if rows[0].get("student_init") == "teacher" else None
    if not other:
        return ""
    return kd_gap(rows, other, "Started from the teacher's weights", "from the seed's")


def schedule_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For rows whose students trained on their own schedule (``--student-schedule``): both students against
    the same ones on the data set's schedule (the row without the mark), else on the shortest other schedule of
    their own, so a longer schedule's effect and distillation's stand apart; then the student trained alone on
    this schedule against the one distilled on that (:func:`alone_against_distilled`)."""
    epochs = rows[0].get("student_epochs")
    mark = f", {epochs} epochs"
    if not epochs or mark not in rows[0]["student"]:
        return ""
    # the same row's name less its schedule (other marks, e.g. ", alpha 0", may follow it), or with another
    # schedule of its own in its place
    label = rows[0]["student"]
    unmarked = label.replace(mark, "", 1)
    others = [rs for s, rs in by_student.items() if rs is not rows and rs[0].get("student_epochs") != epochs
              and s in (unmarked, label.replace(mark, f", {rs[0].get('student_epochs')} epochs", 1))]
    if not others:
        return ""
    # the row on the data set's schedule (no mark) where there is one, else the shortest other schedule
    base = min(others, key=lambda rs: (rs[0]["student"] != unmarked, rs[0].get("student_epochs") or 0))
    mean = {key: (float(np.mean([r[key] for r in rows])), float(np.mean([r[key] for r in base])))
            for key in ("plain_mae", "kd_mae")}
    (plain, plain_base), (kd, kd_base) = mean["plain_mae"], mean["kd_mae"]
    base_epochs = base[0].get("student_epochs", "?")
    return (f" With {epochs} epochs (patience {rows[0]['student_patience']}) the plain student's test MAE is "
            f"{plain:.3f}, against {plain_base:.3f} with the {base_epochs} epochs of the row "
            f"`{base[0]['student']}` ({100 * (plain - plain_base) / plain_base:+.1f} %), and the distilled student's {kd:.3f} against "
            f"{kd_base:.3f} ({100 * (kd - kd_base) / kd_base:+.1f} %)"
            f"{machines_apart([*rows, *base], {r['seed'] for r in [*rows, *base]})}." + alone_against_distilled(rows, base))


def min_epochs_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose students could not stop early before an epoch (``--student-min-epochs``): both students
    against the same row without it, and how many students of that row early stopping ended before that epoch
    (where its records say; only those can differ, the rest trained the same epochs)."""
    n = rows[0].get("student_min_epochs")
    other = row_without(rows, by_student, min_epochs_mark(n))
    if not other:
        return ""
    stops = [r[f"{who}_stop"]["epochs_run"] for r in other for who in ("kd", "plain") if f"{who}_stop" in r]
    told = "" if not stops else (f" In the row without it, early stopping ended {sum(e < n for e in stops)} of "
                                 f"its {len(stops)} students before epoch {n}.")
    words = f"With no early stop before epoch {n}"
    return kd_gap(rows, other, words, "without that floor") + kd_gap(rows, other, words, "without it", "plain") + told


def alone_against_distilled(rows: list[dict], base: list[dict]) -> str:
    """The plain student of ``rows`` against the distilled one of ``base`` (another schedule), on the seeds both
    have: whether training the student alone on the one schedule does what distilling it does on the other."""
    seeds = shared_seeds(rows, base)
    if not seeds or any("plain_val" not in r for r in rows) or any("kd_val" not in r for r in base):
        return ""
    plain = {r["seed"]: r for r in rows if r["seed"] in seeds}
    kd = {r["seed"]: r for r in base if r["seed"] in seeds}
    lower = sum(plain[s]["plain_val"] < kd[s]["kd_val"] for s in seeds)
    return (f" Trained alone for {rows[0]['student_epochs']} epochs, the student's validation MAE is "
            f"{seeds_mean(rows, 'plain_val', seeds=seeds):.3f} against {seeds_mean(base, 'kd_val', seeds=seeds):.3f} "
            f"distilled for {base[0].get('student_epochs', '?')} (lower on {lower} of {len(seeds)} seeds), its test MAE "
            f"{seeds_mean(rows, 'plain_mae', seeds=seeds):.3f} against {seeds_mean(base, 'kd_mae', seeds=seeds):.3f}"
            f"{machines_apart([*rows, *base], seeds)}.")


CALENDAR_SUFFIX = "-cal"  # a student label's mark for the same student reading the calendar (``params.calendar``)


def calendar_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose student reads the calendar (a label ending in :data:`CALENDAR_SUFFIX`, e.g.
    ``mlp-nb-id-cal``): both its students against the same row's without it (same teachers, schedule and seeds),
    so what the time of day gives the student stands apart from what distillation gives it."""
    name, _, rest = rows[0]["student"].partition(",")
    if not name.endswith(CALENDAR_SUFFIX):
        return ""
    base = by_student.get(name.removesuffix(CALENDAR_SUFFIX) + ("," + rest if rest else ""))
    seeds = shared_seeds(rows, base)
    if not base or not seeds:
        return ""
    (plain, plain_base), (kd, kd_base) = ((seeds_mean(rows, k, seeds=seeds), seeds_mean(base, k, seeds=seeds))
                                          for k in ("plain_mae", "kd_mae"))
    return (f" With the calendar the plain student's test MAE is {plain:.3f}, against {plain_base:.3f} in the row "
            f"`{base[0]['student']}` ({100 * (plain - plain_base) / plain_base:+.1f} %), and the distilled student's "
            f"{kd:.3f} against {kd_base:.3f} ({100 * (kd - kd_base) / kd_base:+.1f} %; the {len(seeds)} seeds both "
            f"rows have).")


def sized_base(label: str) -> str | None:
    """The label of the same student at its usual size for a sized one (``stid-8`` -> ``stid``, ``mlp-id-cal-256``
    -> ``mlp-id-cal``: a student label whose part after the last dash is a width and whose rest is a student label
    too); None for any other."""
    base, _, width = label.rpartition("-")
    return base if label in STUDENTS and width.isdigit() and base in STUDENTS else None


def edge_kept(plain: float, kd: float, teacher: float) -> float:
    """The share (%) of the teacher's edge over the plain student (test MAE) that the distilled student keeps;
    NaN where the teacher is not ahead."""
    edge = plain - teacher
    return 100 * (plain - kd) / edge if edge > 0 else float("nan")


def size_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose student is a sized variant (:func:`sized_base`, e.g. ``stid-8``) or the same student without
    dropout (``stid-nodrop``): its size, both its students and the share of the teacher's edge the distilled one
    keeps, against the same row with the data set's own student (same teachers, schedule and seeds), so how
    distillation pays as the student shrinks, grows or loses its regulariser reads off one sentence. Nothing where
    a sized variant has as many parameters as the student it varies."""
    from stkd.paired import paired_gain

    name, _, rest = rows[0]["student"].partition(",")
    twin = dropout_twin(rows[0]["student"], by_student, with_dropout=True)  # the same row with dropout
    nodrop = twin is not None
    if nodrop:
        base = by_student[twin]
    else:
        base_name = sized_base(name)
        base = by_student.get(base_name + ("," + rest if rest else "")) if base_name else None
    seeds = shared_seeds(rows, base)
    if not base or not seeds or (not nodrop and rows[0]["params"]["student"] == base[0]["params"]["student"]):
        return ""

    def numbers(rs: list[dict]) -> tuple[float, float, float, float]:
        mine = sorted((r for r in rs if r["seed"] in seeds), key=lambda r: r["seed"])
        plain, kd = seeds_mean(mine, "plain_mae"), seeds_mean(mine, "kd_mae")
        gain = paired_gain([r["plain_mae"] for r in mine], [r["kd_mae"] for r in mine])["mean"]  # the table's gain
        return plain, kd, gain, edge_kept(plain, kd, seeds_mean(mine, "ensemble_mae", "teacher_mae"))

    (plain, kd, gain, kept), (plain_b, kd_b, gain_b, kept_b) = numbers(rows), numbers(base)
    n, n_b = rows[0]["params"]["student"], base[0]["params"]["student"]
    kept_words = (f"keeps {kept:.0f} % of the teacher's edge against {kept_b:.0f} %"
                  if not (np.isnan(kept) or np.isnan(kept_b)) else "has no edge of the teacher to keep in one of the two")
    what = (f"Without dropout, against the row `{base[0]['student']}` with it (the same {n:,} parameters)" if nodrop
            else f"This student has {n:,} parameters against {n_b:,} in the row `{base[0]['student']}` ({n / n_b:.2f}x)")
    return (f" {what}: plain {plain:.3f} against {plain_b:.3f} ({100 * (plain - plain_b) / plain_b:+.1f} %), "
            f"distilled {kd:.3f} against {kd_b:.3f} ({100 * (kd - kd_b) / kd_b:+.1f} %); distillation's gain is "
            f"{gain:+.1f} % against {gain_b:+.1f} %, and the distilled student {kept_words} (the {len(seeds)} seeds "
            f"both rows have{machines_apart([*rows, *base], seeds)}).")


def lags_gap(rows: list[dict], by_student: dict[str, list[dict]]) -> str:
    """For a row whose students read lagged channels (``--student-lags``): the plain student against the same
    row without them (where none was measured, the same row reading the fewest lags, fewer than these) and against
    the teacher, so what the lags give stands apart from what distillation gives."""
    lags = rows[0].get("student_lags")
    if not lags:
        return ""
    fewer = [rs for rs in rows_differing_in(rows, by_student, lags_label(lags),
                                            lambda r: lags_label(r["student_lags"]) if r.get("student_lags") else "")
             if len(rs[0].get("student_lags") or []) < len(lags)]
    base = min(fewer, key=lambda rs: len(rs[0].get("student_lags") or []), default=None)  # the window only first
    if not base:
        return ""
    seeds = shared_seeds(rows, base)
    if not seeds:
        return ""
    plain, plain_base = (seeds_mean(rs, "plain_mae", seeds=seeds) for rs in (rows, base))
    teacher = seeds_mean(rows, "ensemble_mae", "teacher_mae", seeds)
    return (f" Reading the lags {', '.join(lags)} the plain student's test MAE is {plain:.3f}, against {plain_base:.3f} "
            f"in the row `{base[0]['student']}` ({100 * (plain - plain_base) / plain_base:+.1f} %) and {teacher:.3f} "
            f"for the teacher ({100 * (plain - teacher) / teacher:+.1f} %).")


def privileged_gap(rows: list[dict], by_student: dict[str, list[dict]], dataset: str) -> str:
    """For a row whose teacher reads other lags than the data set's usual teacher (:func:`teacher_lags_label`):
    that teacher against the usual one of the same row otherwise, so what the teacher's extra inputs give it
    stands apart from what the student takes of it. Where no such row exists, against the same row with the
    teacher reading other lags, the one sharing most of this teacher's (:func:`nearest_teacher_row`)."""
    words = teacher_lags_label(dataset, rows[0].get("teacher_lags"))
    usual = teacher_gap(rows, by_student, words, "the usual teacher")
    if usual or not words:
        return usual
    other = nearest_teacher_row(rows, by_student, dataset)
    if other is None:
        return ""
    lags = ", ".join(other[0].get("teacher_lags") or []) or "none"
    return teacher_gap(rows, by_student, words, f"the teacher reading lags {lags}", other=other)


def nearest_teacher_row(rows: list[dict], by_student: dict[str, list[dict]], dataset: str) -> list[dict] | None:
    """The row that differs from ``rows`` in its teacher's lags alone, the one whose teacher shares most of
    ``rows``' teacher's lags (then the fewest lags of its own); None where there is none."""
    lags = set(rows[0].get("teacher_lags") or [])
    others = rows_differing_in(rows, by_student, teacher_lags_label(dataset, rows[0].get("teacher_lags")),
                               lambda r: teacher_lags_label(dataset, r.get("teacher_lags")))

    def nearness(rs: list[dict]) -> tuple[int, int]:
        theirs = set(rs[0].get("teacher_lags") or [])
        return -len(theirs & lags), len(theirs)

    return min(others, key=nearness, default=None)


def rows_differing_in(rows: list[dict], by_student: dict[str, list[dict]], words: str,
                      words_of: Callable[[dict], str]) -> list[list[dict]]:
    """The other rows whose label is ``rows``' with its ``words`` (one setting's words, e.g. its teacher's lags) in
    place of their own ``words_of(record)``: the rows that differ from it in that setting alone."""
    label = rows[0]["student"]
    return [rs for s, rs in by_student.items() if s != label and s == label.replace(words, words_of(rs[0]), 1)]


def teacher_epochs_gap(rows: list[dict], by_student: dict[str, list[dict]], dataset: str) -> str:
    """For a row whose teacher trained for other epochs than the data set's usual teacher
    (:func:`teacher_epochs_label`), or whose extra teachers trained for epochs of their own
    (:func:`extra_epochs_label`, ``--extra-teacher-epochs``): that teacher against the one of the same row on the
    usual schedule."""
    words = teacher_epochs_label(dataset, rows[0].get("teacher_epochs"))
    if words:
        return teacher_gap(rows, by_student, words, f"the teacher of {USUAL_TEACHER_EPOCHS.get(dataset)} epochs")
    return teacher_gap(rows, by_student, extra_epochs_label(rows[0].get("extra_teacher_epochs")),
                       "the teacher of the data set's schedule")


def teacher_gap(rows: list[dict], by_student: dict[str, list[dict]], words: str, other_teacher: str,
                other: list[dict] | None = None) -> str:
    """The teacher of a row marked ``words`` against ``other_teacher``, the one of the row without the mark (or of
    the row ``other``), on validation and test (the seeds both rows have), with the plain students of both rows:
    they train alike, so a change of the teacher's MAE is the teacher's own; then what it changes for the
    distilled student (:func:`student_change`)."""
    if other is None:
        other = by_student.get(rows[0]["student"].replace(words, "", 1)) if words else None
    seeds = shared_seeds(rows, other)
    if not other or not seeds:
        return ""
    val, val_o = (seeds_mean(rs, "ensemble_val", "teacher_val", seeds) for rs in (rows, other))
    test, test_o = (seeds_mean(rs, "ensemble_mae", "teacher_mae", seeds) for rs in (rows, other))
    plain, plain_o = (seeds_mean(rs, "plain_mae", seeds=seeds) for rs in (rows, other))
    return (f" This teacher's validation MAE is {val:.3f} against {val_o:.3f} for {other_teacher} of the row "
            f"`{other[0]['student']}` ({100 * (val - val_o) / val_o:+.1f} %), its test MAE {test:.3f} against "
            f"{test_o:.3f} ({100 * (test - test_o) / test_o:+.1f} %); the plain students, trained alike in both rows, "
            f"score {plain:.3f} and {plain_o:.3f} ({len(seeds)} seeds both rows have)." + student_change(rows, other, seeds))


def student_change(rows: list[dict], other: list[dict], seeds: set[int]) -> str:
    """What another teacher did to the distilled student: its validation and test MAE in ``rows`` against the
    row ``other``, paired by seed on ``seeds`` and judged by the rule of the gains (:func:`stkd.paired.paired_gain`,
    a positive gain: lower with this teacher). Empty where a record lacks a validation score."""
    from stkd.paired import gain_cell, paired_gain, verdict

    if any(r.get("kd_val") is None for r in rows + other if r["seed"] in seeds):
        return ""
    parts = []
    for split, key in (("validation", "kd_val"), ("test", "kd_mae")):
        mine, theirs = ([r[key] for r in sorted(rs, key=lambda r: r["seed"]) if r["seed"] in seeds]
                        for rs in (rows, other))
        g = paired_gain(theirs, mine)
        parts.append(f"{split} {np.mean(mine):.3f} against {np.mean(theirs):.3f}, {gain_cell(g)}, lower on "
                     f"{g['wins']} of {g['n']} seeds: {verdict(g)}")
    return " Its distilled student, against that row's: " + "; ".join(parts) + "."


def dropout_twin(label: str, rows_by: dict[str, list[dict]], with_dropout: bool) -> str | None:
    """The row that differs from ``label`` by the students' dropout alone, where it was measured on seeds ``label``
    has too: for a row of a no-dropout student (``stid-nodrop, ...``) its twin with dropout (``with_dropout``), for
    any other its twin without (``not with_dropout``); None where there is none."""
    name, sep, rest = label.partition(",")
    if name.endswith(NO_DROPOUT) != with_dropout:
        return None
    twin = (name.removesuffix(NO_DROPOUT) if with_dropout else name + NO_DROPOUT) + sep + rest
    return twin if twin in rows_by and shared_seeds(rows_by.get(label, []), rows_by[twin]) else None


def held_out_gap(source: tuple[str, list[dict]] | None, rows: list[dict], gain: dict) -> str:
    """For a row of a held-out data set (``source``: :func:`held_out_source`): the same row's gain on the data the
    settings were chosen on, and whether the two agree (both established with one sign, or not); "" without a
    source, for a row of an earlier rule, or where that data set has no such row."""
    from stkd.paired import gain_cell, paired_gain, verdict

    if source is None or rows[0].get("earlier_rule"):
        return ""
    tuned, records = source
    there = [r for r in records if r["student"] == rows[0]["student"]]
    if not there:
        return ""
    g = paired_gain([r["plain_mae"] for r in there], [r["kd_mae"] for r in there])
    here_v, there_v = verdict(gain), verdict(g)
    agree = (f"established {here_v} on both" if here_v == there_v and gain["established"] else
             "the two periods disagree" if gain["established"] and g["established"] else
             f"{here_v} here, {there_v} there")
    return (f" On {tuned}, the years its settings were chosen on, the same row gave {gain_cell(g)} "
            f"({g['wins']}/{g['n']} seeds): {agree}.")


def splits_disagree(test: dict, val: dict) -> str:
    """A sentence where the gain is established on one split and not on the other (or established with
    opposite signs), computed from both :func:`stkd.paired.paired_gain` results; "" where they agree."""
    from stkd.paired import signed

    def state(g: dict) -> str:
        return "not established" if not g["established"] else "established better" if g["mean"] > 0 else "a loss"

    if state(test) == state(val):
        return ""
    return (f" On validation the gain is {signed(val['mean'])} % ({val['wins']} of {val['n']} seeds: "
            f"{state(val)}), on test {signed(test['mean'])} % ({state(test)}): the two splits disagree.")
